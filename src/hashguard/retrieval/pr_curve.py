"""Precision-recall curves of Hamming retrieval, by Hamming radius or by rank."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._inputs import check_choice, check_topk
from .ranking import EMPTY, distance_histograms, prepare, rank_curve_sums

__all__ = ["pr_curve"]

BY = ("radius", "rank")


def pr_curve(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    *,
    by: str = "radius",
    topk: int | None = None,
    empty: str = "zero",
    relevance: str = "share",
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of Hamming retrieval, averaged over queries, in the field's two styles.

    ``by="radius"`` (default; the "PR curve @ Hamming radius" of DPSH / HashNet-style papers):
    point ``r`` (``r = 0..K``) retrieves every database item within Hamming distance ``<= r``.
    The last point (``r = K``) retrieves the whole database. ``topk`` is not used.

    ``by="rank"`` (the "PR curve by ranking" of DeepHash-pytorch ``CalcTopMapWithPR``): point
    ``i`` (``i = 0..L-1``) retrieves the first ``i + 1`` items of the Hamming ranking, ties in
    database index order; ``L = topk`` (default, and at most, the database size ``N``).

    For each query and point: precision = relevant retrieved / retrieved, recall = relevant
    retrieved / relevant items in the *whole* database. Each curve is the mean over queries.
    Values that are undefined for a query (precision when nothing is retrieved, which happens
    only ``by="radius"``; recall when the database holds no item relevant to the query) follow
    ``empty``: ``"zero"`` (default) counts them as 0 in a mean over all queries; ``"skip"``
    leaves that query out of the mean at that point (a point where every query is left out is 0).
    No value is ever NaN.

    Args:
        query_codes, db_codes: ``(Q, K)`` and ``(N, K)`` ±1 codes (torch on any device, or numpy).
        query_labels, db_labels: ``(Q, C)`` and ``(N, C)`` multi-hot 0/1 labels.
        by: ``"radius"`` or ``"rank"``.
        topk: length of the ``by="rank"`` curve (positive int, or None for ``N``).
        empty: ``"zero"`` or ``"skip"``, see above.
        relevance: ``"share"`` (default, at least one common label) or ``"exact"`` (identical rows).
        backend: ``"numba"``, ``"numpy"``, ``"auto"`` or None (environment variable, then auto).

    Returns:
        ``(precision, recall)``: two float64 numpy arrays of length ``K + 1`` (``by="radius"``,
        index = radius) or ``min(topk, N)`` (``by="rank"``, index = rank - 1). Plot recall on
        the x axis and precision on the y axis.

    Memory: O(Q K) for ``by="radius"``; O(N) per thread plus O(L) for ``by="rank"``.

    Example:
        >>> precision, recall = pr_curve(codes_q, codes_db, y_q, y_db)              # by radius
        >>> plt.plot(recall, precision)
    """
    check_choice(by, "by", BY)
    topk = check_topk(topk)
    check_choice(empty, "empty", EMPTY)
    p = prepare(query_codes, db_codes, query_labels, db_labels, relevance)
    if by == "radius":
        items, relevant = distance_histograms(p, backend=backend)
        retrieved = np.cumsum(items, axis=1)
        hits = np.cumsum(relevant, axis=1).astype(np.float64)
        total = hits[:, -1:]
        has_ret = retrieved > 0
        has_rel = np.broadcast_to(total > 0, hits.shape)
        precision = np.divide(hits, retrieved, out=np.zeros_like(hits), where=has_ret)
        recall = np.divide(hits, total, out=np.zeros_like(hits), where=has_rel)
        if empty == "zero":
            return precision.mean(axis=0), recall.mean(axis=0)
        return _masked_mean(precision, has_ret), _masked_mean(recall, has_rel)

    length = p.n_db if topk is None else min(topk, p.n_db)
    psum, rsum, n_without = rank_curve_sums(p, length, backend=backend)
    n_with = p.n_query - int(n_without)
    precision = psum / p.n_query  # precision is defined at every rank for every query
    if empty == "zero":
        recall = rsum / p.n_query
    else:
        recall = rsum / n_with if n_with > 0 else np.zeros(length)
    return precision, recall


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Column means of ``values`` over the rows where ``mask`` is True (0 for an all-False column)."""
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.zeros(values.shape[1]), where=count > 0)
