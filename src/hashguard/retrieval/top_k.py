"""The top-k database items of a few queries, for showing what a query retrieves."""

from __future__ import annotations

from typing import Any

import numpy as np

from .hamming import hamming_distances


def top_k_indices(query_codes: Any, db_codes: Any, k: int = 10) -> np.ndarray:
    """``(Q, min(k, N))`` database indices of each query's first ``k`` Hamming ranks.

    Ties at equal distance are broken by database index (stable sort), the ranking every metric
    here uses. Builds the full ``(Q, N)`` distance matrix: meant for a handful of example queries,
    not for evaluation (use the metric functions for that).
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    dist = hamming_distances(query_codes, db_codes)
    return np.argsort(dist, axis=1, kind="stable")[:, : int(k)]


__all__ = ["top_k_indices"]
