"""Model validation against field experiments (Prairie Grass) with the standard performance statistics."""
