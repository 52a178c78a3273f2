"""Every physical formula of airshed, each with its reference.

Leaf package: imports nothing else from airshed except :mod:`airshed.jit`. Both the input side (derived
boundary-layer quantities) and the kernels (``airshed.model``) call these functions, so a formula lives
here exactly once. Functions are Numba-compiled scalar helpers (callable from Python too) or NumPy
functions on arrays; docstrings give units and the reference (author, year, equation).
"""
