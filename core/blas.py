"""BLAS thread control for the RBM's GEMMs (threadpoolctl, when installed)."""

from contextlib import nullcontext

_blas_libs = None  # threadpoolctl's BLAS controllers, found on first use; () if unavailable


class _BlasThreads:
    """Sets every BLAS library's thread count for a with-block and restores it after: a
    lighter threadpoolctl.limit (that one rescans the libraries, ~25 µs a time; a training
    step enters this once)."""

    def __init__(self, libs, n: int):
        self._libs, self._n, self._restore = libs, n, []

    def __enter__(self):
        for lib in self._libs:
            previous = lib.num_threads
            if previous != self._n:
                lib.set_num_threads(self._n)
                self._restore.append((lib, previous))
        return self

    def __exit__(self, *exc_info):
        for lib, previous in reversed(self._restore):
            lib.set_num_threads(previous)
        self._restore = []


def blas_threads(n: int | None):
    """Context manager limiting BLAS (numpy's GEMMs) to n threads; n=None leaves it alone.
    A no-op when threadpoolctl is not installed."""
    global _blas_libs
    if n is None:
        return nullcontext()
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover
            _blas_libs = ()
        else:
            _blas_libs = tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _BlasThreads(_blas_libs, int(n))
