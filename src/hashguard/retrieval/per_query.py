"""Per-query retrieval scores: the AP and P@N of each query, not only their means.

Attacks use them for early stopping (SDHA stops a query once its AP reaches 0, or 1 when
targeted) and for success rates; the ranking is the one of :func:`mean_average_precision`
(Hamming distance, ties in database index order, AP@k normalised by the relevant items retrieved
in the top k, a query with no relevant item scores 0).
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._inputs import check_choice, check_topk
from .ranking import TIES, prepare, ranked_stats

__all__ = ["per_query_scores"]


def per_query_scores(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    topk: int | None = None,
    n: int = 10,
    *,
    ties: str = "index",
    relevance: str = "share",
    backend: str | None = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """AP@topk and P@n of every query.

    Args: as :func:`mean_average_precision`; ``n`` is the cut-off of the precision (P@n counts
        the relevant items among the first ``min(n, N)`` ranks, divided by that number).

    Returns:
        ``(ap, precision)``: float64 arrays of shape ``(Q,)``. ``ap.mean()`` equals
        ``mean_average_precision(..., empty="zero")``.
    """
    topk = check_topk(topk)
    check_choice(ties, "ties", TIES)
    if int(n) < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    p = prepare(query_codes, db_codes, query_labels, db_labels, relevance)
    ap, _, _ = ranked_stats(p, topk, ties=ties, backend=backend)
    cut = min(int(n), p.n_db)
    _, _, hits = ranked_stats(p, cut, ties=ties, cutoffs=[cut], backend=backend)
    return ap, hits[:, 0] / max(cut, 1)
