"""Model domain: projected grid, CF grid description, region masks."""
