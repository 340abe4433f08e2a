"""Slow, obviously-correct reference implementations of the retrieval metrics (tests only).

Each one loops over the queries in Python and ranks the database with
``np.argsort(distances, kind="stable")``, i.e. ties in database index order.
"""

from __future__ import annotations

import itertools

import numpy as np


def as_float(x):
    """Torch tensor or array -> float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def hamming(qc, dc):
    """(Q, N) Hamming distances of ±1 codes via the inner product (exact in float64)."""
    qc, dc = as_float(qc), as_float(dc)
    return np.rint((qc.shape[1] - qc @ dc.T) / 2).astype(np.int64)


def relevance(ql, dl, mode="share"):
    """(Q, N) bool relevance: shared label, or identical label rows."""
    ql, dl = as_float(ql), as_float(dl)
    if mode == "share":
        return (ql @ dl.T) > 0
    return (ql[:, None, :] == dl[None, :, :]).all(axis=-1)


def ref_average_precisions(qc, dc, ql, dl, topk=None, mode="share"):
    """Per-query AP@k (None where no relevant item is in the top k), stable ranking."""
    dist, rel = hamming(qc, dc), relevance(ql, dl, mode)
    k = dist.shape[1] if topk is None else topk
    out = []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        hits = rel[i][order][:k]
        t = int(hits.sum())
        if t == 0:
            out.append(None)
            continue
        positions = np.flatnonzero(hits) + 1.0
        out.append(float(np.mean(np.arange(1, t + 1) / positions)))
    return out


def ref_map(qc, dc, ql, dl, topk=None, empty="zero", mode="share"):
    """mAP from :func:`ref_average_precisions` with the zero / skip rule for empty queries."""
    aps = ref_average_precisions(qc, dc, ql, dl, topk, mode)
    if empty == "zero":
        return float(np.mean([0.0 if a is None else a for a in aps]))
    kept = [a for a in aps if a is not None]
    return float(np.mean(kept)) if kept else 0.0


def ref_precision_at_n(qc, dc, ql, dl, n, mode="share"):
    """Mean over queries of hits in the top n / min(n, N), stable ranking."""
    dist, rel = hamming(qc, dc), relevance(ql, dl, mode)
    vals = []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        vals.append(rel[i][order][:n].sum() / min(n, dist.shape[1]))
    return float(np.mean(vals))


def ref_precision_within_radius(qc, dc, ql, dl, radius, empty="zero", mode="share"):
    """Mean precision of the items within Hamming distance <= radius."""
    dist, rel = hamming(qc, dc), relevance(ql, dl, mode)
    vals = []
    for i in range(dist.shape[0]):
        ret = dist[i] <= radius
        if ret.sum() == 0:
            vals.append(None)
        else:
            vals.append(rel[i][ret].sum() / ret.sum())
    if empty == "zero":
        return float(np.mean([0.0 if v is None else v for v in vals]))
    kept = [v for v in vals if v is not None]
    return float(np.mean(kept)) if kept else 0.0


def _mean_of(rows, empty):
    """Column means of a list of lists holding floats or None (undefined)."""
    cols = list(zip(*rows))
    out = []
    for col in cols:
        if empty == "zero":
            out.append(np.mean([0.0 if v is None else v for v in col]))
        else:
            kept = [v for v in col if v is not None]
            out.append(np.mean(kept) if kept else 0.0)
    return np.array(out)


def ref_pr_radius(qc, dc, ql, dl, empty="zero", mode="share"):
    """Precision / recall by Hamming radius 0..K, per-query values averaged."""
    dist, rel = hamming(qc, dc), relevance(ql, dl, mode)
    n_bits = as_float(qc).shape[1]
    prec_rows, rec_rows = [], []
    for i in range(dist.shape[0]):
        total = rel[i].sum()
        prow, rrow = [], []
        for r in range(n_bits + 1):
            ret = dist[i] <= r
            hits = (rel[i] & ret).sum()
            prow.append(hits / ret.sum() if ret.sum() else None)
            rrow.append(hits / total if total else None)
        prec_rows.append(prow)
        rec_rows.append(rrow)
    return _mean_of(prec_rows, empty), _mean_of(rec_rows, empty)


def ref_pr_rank(qc, dc, ql, dl, topk=None, empty="zero", mode="share"):
    """Precision / recall at ranks 1..L, per-query values averaged."""
    dist, rel = hamming(qc, dc), relevance(ql, dl, mode)
    n = dist.shape[1]
    length = n if topk is None else min(topk, n)
    prec_rows, rec_rows = [], []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        cum = np.cumsum(rel[i][order])[:length]
        total = rel[i].sum()
        prec_rows.append(list(cum / np.arange(1, length + 1)))
        rec_rows.append(list(cum / total) if total else [None] * length)
    return _mean_of(prec_rows, empty), _mean_of(rec_rows, empty)


def tie_average_by_enumeration(dist_row, rel_row, topk):
    """Exact E[sum_k rel_k P@k], E[hits in top k] and E[hits in top n] for every n, over all
    orderings within groups of equal distance (brute force, tiny inputs only).

    Returns (expected_numerator, expected_hits_topk, expected_hits_at[n] for n = 1..N).
    """
    dist_row = np.asarray(dist_row)
    rel_row = np.asarray(rel_row, dtype=np.float64)
    n = dist_row.shape[0]
    groups = [np.flatnonzero(dist_row == d) for d in np.unique(dist_row)]
    num_sum = 0.0
    t_sum = 0.0
    hits_sum = np.zeros(n)
    count = 0
    for perms in itertools.product(*[itertools.permutations(g) for g in groups]):
        order = np.concatenate([np.array(p, dtype=np.int64) for p in perms])
        r = rel_row[order]
        cum = np.cumsum(r)
        k = topk
        num_sum += float(np.sum(r[:k] * cum[:k] / np.arange(1, k + 1)))
        t_sum += float(cum[k - 1])
        hits_sum += cum
        count += 1
    return num_sum / count, t_sum / count, hits_sum / count


def random_problem(seed, n_query=20, n_db=150, bits=8, classes=5, p_label=0.25):
    """Random ±1 codes (few bits, so many distance ties) and sparse multi-hot labels (some rows
    all-zero, so some queries have no relevant item at all)."""
    rng = np.random.default_rng(seed)
    qc = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_query, bits))
    dc = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_db, bits))
    ql = (rng.random((n_query, classes)) < p_label).astype(np.int64)
    dl = (rng.random((n_db, classes)) < p_label).astype(np.int64)
    return qc, dc, ql, dl
