"""Writers of CF NetCDF, maps and reports (no kernels here)."""
