"""The CPU threads one benchmark run computes with, fixed for the run and recorded with it.

torch's CPU reductions (a matrix product, a sum over a batch) split their work by the number of
intra-op threads, and the retrieval kernels split their accumulators by numba's thread count
(``retrieval.ranking``), so float results can differ in the last bits between thread counts. A run
given ``threads`` computes with exactly that many torch and numba threads, whichever process runs
it (the grid's own process or a Dask worker), so two runs of one config at the same thread count
give the same metrics. Each record says the count it ran with (``timings.threads``).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional


def check_threads(threads: Optional[int], what: str = "threads_per_run") -> Optional[int]:
    """``threads`` as an int >= 1 (or None: leave the process's setting); an ``InputError`` otherwise."""
    from ..errors import InputError

    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"{what} must be a whole number >= 1 (the CPU threads of each run), got {threads!r}")
    return threads


@contextlib.contextmanager
def run_threads(threads: Optional[int]) -> Iterator[int]:
    """Compute with ``threads`` torch and numba threads inside the block (None: keep the current
    setting), then restore the previous counts. Yields the torch thread count in force."""
    import torch

    if threads is None:
        yield torch.get_num_threads()
        return
    numba = _numba()
    previous_numba = numba.get_num_threads() if numba is not None else None
    if numba is not None:
        # first: launching numba's OpenMP pool resets the OpenMP thread count torch reads
        numba.set_num_threads(min(threads, int(numba.config.NUMBA_NUM_THREADS)))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if numba is not None and previous_numba is not None:
            numba.set_num_threads(previous_numba)
        torch.set_num_threads(previous)


def _numba():
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; the numpy backend needs none
        return None
    return numba


__all__ = ["check_threads", "run_threads"]
