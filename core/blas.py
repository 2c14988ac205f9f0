"""BLAS thread control for the RBM's GEMMs (threadpoolctl, when installed)."""

import os
import sys
from contextlib import nullcontext
from importlib.util import find_spec

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


# what OpenBLAS reads for its thread count when it loads, in its order
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
_deferred_threads: int | None = None  # OpenBLAS's default count, while it runs on one thread


def import_numpy_single_threaded() -> None:
    """Import numpy with OpenBLAS on one thread, unless numpy is loaded already or the user
    set a thread count. Starting its other thread made the import much slower (measured on
    2 shared cores: ~55 ms with one thread, 75-145 ms with two), and nothing before the
    app's first frame needs it: restore_default_threads() gives OpenBLAS its default count
    afterwards."""
    global _deferred_threads
    if "numpy" in sys.modules or any(v in os.environ for v in _THREAD_VARIABLES) \
            or find_spec("threadpoolctl") is None:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]  # child processes start with the default
    from .cpu import available_cores

    # OpenBLAS's default: one thread per core in the process's affinity mask
    _deferred_threads = available_cores()


def restore_default_threads() -> None:
    """After import_numpy_single_threaded: OpenBLAS's default thread count (it starts the
    threads it lacks). A no-op otherwise, and when called again."""
    global _deferred_threads
    n, _deferred_threads = _deferred_threads, None
    if n is None:
        return
    from threadpoolctl import ThreadpoolController

    for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        lib.set_num_threads(n)
