"""Hamming distances between two sets of ±1 codes (popcount of XOR on packed 64-bit words)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import run_kernel
from ._inputs import as_codes, check_pair_codes
from .packing import _bits_to_words

__all__ = ["hamming_distances"]


def hamming_distances(query_codes: Any, db_codes: Any, *, backend: str | None = None) -> np.ndarray:
    """Full matrix of Hamming distances between query and database codes.

    The distance is the number of differing bits, ``(K - q . d) / 2`` for ±1 codes, computed
    exactly with XOR and popcount on packed 64-bit words (never in floating point).

    Args:
        query_codes: ``(Q, K)`` ±1 codes (torch tensor on any device, or numpy array).
        db_codes: ``(N, K)`` ±1 codes with the same ``K``.
        backend: ``"numba"``, ``"numpy"`` or ``"auto"``; None reads ``HASHGUARD_RETRIEVAL_BACKEND``
            (default auto: numba when available).

    Returns:
        ``(Q, N)`` int32 numpy array with values in ``0..K``. This materialises ``4 Q N`` bytes;
        the metric functions never build it (they rank one query at a time).

    Raises:
        ValueError: if the codes are not 2-D ±1 matrices of the same width, or are empty.

    Example:
        >>> hamming_distances(torch.tensor([[1, -1, 1]]), np.array([[1, 1, 1], [-1, 1, -1]]))
        array([[1, 3]], dtype=int32)
    """
    qc = as_codes(query_codes, "query_codes")
    dc = as_codes(db_codes, "db_codes")
    check_pair_codes(qc, dc)
    qw = _bits_to_words(qc > 0)
    dw = _bits_to_words(dc > 0)
    out = np.empty((qw.shape[0], dw.shape[0]), dtype=np.int32)
    run_kernel(backend, "hamming_matrix", qw, dw, out)
    return out
