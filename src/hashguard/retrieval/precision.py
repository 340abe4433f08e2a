"""Precision of Hamming retrieval: in the top N ranks (P@N) and within a Hamming radius (P@H<=r)."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from ._inputs import check_choice, check_nonnegative_int, check_positive_ints
from .ranking import EMPTY, TIES, distance_histograms, prepare, ranked_stats

__all__ = ["precision_at_n", "precision_within_radius"]

DEFAULT_N = tuple(range(100, 1001, 100))


def precision_at_n(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    n: int | Sequence[int] = DEFAULT_N,
    *,
    ties: str = "index",
    relevance: str = "share",
    backend: str | None = None,
) -> float | np.ndarray:
    """Mean precision in the top N ranks of Hamming ranking (the "P@N" curve of hashing papers).

    P@N of a query is the number of relevant items among its first ``N`` ranks divided by ``N``
    (by ``min(N, database size)`` if the database is smaller), under the same ranking as
    :func:`mean_average_precision` (ties in database index order). Every query counts, including
    queries with no relevant item (precision 0).

    Args:
        query_codes, db_codes: ``(Q, K)`` and ``(N_db, K)`` ±1 codes (torch or numpy).
        query_labels, db_labels: ``(Q, C)`` and ``(N_db, C)`` multi-hot 0/1 labels.
        n: one positive int, or a sequence of them; default ``(100, 200, ..., 1000)``.
        ties: ``"index"`` (default) or ``"average"`` (expected hits over random orderings within
            groups of equal distance).
        relevance: ``"share"`` (default, at least one common label) or ``"exact"`` (identical rows).
        backend: ``"numba"``, ``"numpy"``, ``"auto"`` or None (environment variable, then auto).

    Returns:
        A float for an int ``n``; a float64 numpy array of the same length as ``n`` otherwise.

    Raises:
        ValueError: on invalid codes or labels (see :func:`mean_average_precision`) or a value of
            ``n`` that is not a positive int.
    """
    if getattr(n, "ndim", None) == 0:  # a 0-d numpy array or torch tensor
        n = n.item()  # type: ignore[union-attr]  # a 0-d numpy array or tensor, not in the annotation
    scalar = isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_))
    if scalar:
        ns = check_positive_ints([n], "n")
    elif isinstance(n, (str, bytes)) or not hasattr(n, "__iter__"):
        raise ValueError(f"n must be a positive int or a sequence of positive ints; got {n!r}")
    else:
        ns = check_positive_ints(list(n), "n")
    check_choice(ties, "ties", TIES)
    p = prepare(query_codes, db_codes, query_labels, db_labels, relevance)
    _, _, hits = ranked_stats(p, max(ns), ties=ties, cutoffs=ns, backend=backend)
    denom = np.minimum(np.asarray(ns, dtype=np.float64), p.n_db)
    values = (hits / denom).mean(axis=0)
    return float(values[0]) if scalar else values


def precision_within_radius(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    radius: int = 2,
    *,
    empty: str = "zero",
    relevance: str = "share",
    backend: str | None = None,
) -> float:
    """Mean precision of the items within Hamming distance ``radius`` of each query ("P@H<=r").

    For each query the retrieved set is every database item at Hamming distance ``<= radius``
    (no ranking, so no tie rule); its precision is (relevant retrieved) / (retrieved).

    Args:
        query_codes, db_codes: ``(Q, K)`` and ``(N, K)`` ±1 codes (torch or numpy).
        query_labels, db_labels: ``(Q, C)`` and ``(N, C)`` multi-hot 0/1 labels.
        radius: Hamming radius, an int >= 0 (default 2, the usual "P@H<=2").
        empty: a query that retrieves nothing within the radius: ``"zero"`` (default) counts it
            as precision 0 and the mean divides by all queries; ``"skip"`` leaves it out of the
            mean (0.0 if every query is left out).
        relevance: ``"share"`` (default) or ``"exact"``.
        backend: ``"numba"``, ``"numpy"``, ``"auto"`` or None (environment variable, then auto).

    Returns:
        The mean precision as a Python float in [0, 1].
    """
    radius = check_nonnegative_int(radius, "radius")
    check_choice(empty, "empty", EMPTY)
    p = prepare(query_codes, db_codes, query_labels, db_labels, relevance)
    items, relevant = distance_histograms(p, backend=backend)
    retrieved = items[:, : radius + 1].sum(axis=1)
    hit = relevant[:, : radius + 1].sum(axis=1)
    has = retrieved > 0
    prec = np.divide(hit, retrieved, out=np.zeros(p.n_query), where=has)
    if empty == "zero":
        return float(prec.mean())
    return float(prec[has].mean()) if has.any() else 0.0
