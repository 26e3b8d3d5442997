"""numba compilation of the engines' inner loops (:mod:`mlcourse.interpret.ism_kernel`,
:mod:`mlcourse.interpret.sis_kernel`).

The loops are plain Python functions, readable and testable without numba;
:func:`compile_loop` turns one into machine code on first use. numba is imported
there, not at ``import mlcourse``, which stays cheap.
"""

from __future__ import annotations


def compile_loop(function):
    """``function`` compiled by numba (``nogil``, one thread), kept in numba's on-disk cache.

    A later process loads the cached machine code in milliseconds instead of
    compiling for a second or more. numba looks for a cache folder next to the
    source file, then in the user's cache folder (or ``NUMBA_CACHE_DIR``); where
    none is writable (a read-only course, such as the grading sandbox) it refuses
    ``cache=True``, and the function is compiled for this process alone.
    """
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available": nowhere to write
        return numba.njit(nogil=True)(function)
