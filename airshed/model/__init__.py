"""Numba kernels (plume, particles, apportionment) over plain arrays; no files, no configs, no Dask."""
