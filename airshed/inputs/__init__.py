"""Readers that turn meteorology and emission files into arrays on the model grid (no kernels here)."""
