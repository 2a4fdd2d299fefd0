"""One BLAS thread for the live engine.

The live loop already spreads its work over the cores itself (a staging worker per lane, one process
per ``--workers``). A BLAS library left to its default also starts one thread per core for every
matrix product, however small: the loop's products (the phase predictors' 1000 x 100 x 22 at every
step) are far too small to gain from it, and the BLAS threads spin while they wait, taking the cores
from the staging worker and from the other processes. Measured on the 2-core CI machine under load:
one update of the CLAS phase estimator for 100 beds took 27 ms with OpenBLAS's default threads and
6 ms with one thread. :func:`single_blas_thread` limits every BLAS library loaded in the process to
one thread (``threadpoolctl``), once; later calls do nothing.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_limiter: object | None = None


def single_blas_thread() -> None:
    """Limit the BLAS libraries of this process (OpenBLAS, MKL, BLIS) to one thread each, for good."""
    global _limiter
    with _lock:
        if _limiter is not None:
            return
        from threadpoolctl import threadpool_limits

        _limiter = threadpool_limits(limits=1, user_api="blas")  # kept: the limit holds while it lives
