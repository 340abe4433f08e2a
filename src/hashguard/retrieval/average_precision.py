"""Mean average precision (mAP, mAP@k, t-MAP) of Hamming ranking, with the field's conventions explicit."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._inputs import check_choice, check_topk
from .ranking import EMPTY, TIES, prepare, ranked_stats

__all__ = ["mean_average_precision"]


def mean_average_precision(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    topk: int | None = None,
    empty: str = "zero",
    ties: str = "index",
    *,
    relevance: str = "share",
    backend: str | None = None,
) -> float:
    """Mean average precision of Hamming ranking (mAP, or mAP@k with ``topk``).

    For each query the database is ranked by Hamming distance to the query code, ties at equal
    distance in database index order (stable). With ``T`` relevant items among the first ``topk``
    ranks at 1-based ranks ``pos_1 < ... < pos_T``, the query's

        AP@k = (1/T) * sum_{t=1..T} t / pos_t,

    normalised by the relevant items retrieved in the top k (the DPSH / DeepHash-pytorch
    ``CalcTopMap`` convention), not by ``min(k, #relevant)``. mAP is the mean over queries.

    t-MAP (targeted attacks) is the same call with the *target* labels as ``query_labels`` and the
    adversarial codes as ``query_codes``:
    ``mean_average_precision(codes_adv, db_codes, target_labels, db_labels, topk)``.

    Args:
        query_codes: ``(Q, K)`` ±1 codes (torch tensor on any device, or numpy array, int or float).
        db_codes: ``(N, K)`` ±1 database codes.
        query_labels: ``(Q, C)`` multi-hot 0/1 labels.
        db_labels: ``(N, C)`` multi-hot 0/1 labels.
        topk: only the first ``topk`` ranks count; None (default) means the whole database, and a
            value above ``N`` is the same as None.
        empty: a query with no relevant item in its top k: ``"zero"`` (default) counts it as AP 0
            and the mean divides by all queries (DeepHash-pytorch, SAAT); ``"skip"`` leaves it out
            of the mean (thulab DeepHash, DHTA), and returns 0.0 if every query is left out.
        ties: ``"index"`` (default): ties in database index order. ``"average"``: the tie-aware
            AP of McSherry & Najork (ECIR 2008): the expected value, over uniformly random
            orderings within every group of equal distance, of ``sum_k rel_k * P@k``, divided by
            the expected number of relevant items in the top k. This is exactly the expected AP
            whenever that number is fixed (``topk`` None, or no tied group straddles rank
            ``topk``); otherwise it is the ratio of the two expectations. With ``ties="average"``
            a query counts as empty when no group reaching into the top k holds a relevant item.
        relevance: ``"share"`` (default): relevant when the two label rows share at least one
            label (inner product > 0). ``"exact"``: relevant when the label rows are identical
            (two all-zero rows are identical, hence relevant, under this option only).
        backend: ``"numba"``, ``"numpy"`` or ``"auto"``; None reads the environment variable
            ``HASHGUARD_RETRIEVAL_BACKEND`` (default auto: numba when importable). Both give the
            same values up to floating-point summation order.

    Returns:
        mAP as a Python float in [0, 1].

    Raises:
        ValueError: codes not ±1 (e.g. tanh outputs: apply ``torch.sign`` or use
            ``model.encode``), code widths or label widths that differ, row counts that do not
            match, ``topk`` not a positive int or None, or an unknown ``empty`` / ``ties`` /
            ``relevance`` value.

    Cost: O(Q (N W + topk)) time with ``W = ceil(K / 64)`` (a counting sort per query, no
    comparison sort), O(N) extra memory per thread; the ``Q x N`` distance matrix is never built.

    Example:
        >>> codes_db, codes_q = model.encode(x_db), model.encode(x_q)
        >>> mean_average_precision(codes_q, codes_db, y_q, y_db, topk=5000)          # mAP@5000
        >>> mean_average_precision(result.codes_adv, codes_db, y_target, y_db)       # t-MAP
    """
    topk = check_topk(topk)
    check_choice(empty, "empty", EMPTY)
    check_choice(ties, "ties", TIES)
    p = prepare(query_codes, db_codes, query_labels, db_labels, relevance)
    ap, n_relevant, _ = ranked_stats(p, topk, ties=ties, backend=backend)
    if empty == "zero":
        return float(np.mean(ap))
    kept = n_relevant > 0
    return float(np.mean(ap[kept])) if kept.any() else 0.0
