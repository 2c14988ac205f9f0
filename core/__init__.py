"""rgflow core: Ising Monte Carlo, RG block spins, RBMs, sessions. numpy + numba only.

Importing `core` compiles nothing and imports no numba kernels; each module compiles its
kernels lazily on first call (and caches them on disk).
"""

__version__ = "0.1.0"
