"""Pure numpy fallback of :mod:`._kernels_numba`, with the same signatures and the same values.

Used when numba cannot be imported, or on request (``backend="numpy"`` or the environment variable
``HASHGUARD_RETRIEVAL_BACKEND=numpy``). Queries are processed in chunks whose ``chunk x N`` working
arrays stay around ``2**22`` elements (tens of MB), so memory is bounded for any ``Q``. Ranking is
a stable ``np.argsort`` of small unsigned distances (a radix sort in numpy), which orders ties by
database index exactly like the counting sort of the numba kernels. Values agree with the numba
backend up to floating-point summation order (about 1e-15).
"""

from __future__ import annotations

import numpy as np

_CHUNK_ELEMENTS = 1 << 22


def _chunks(nq: int, n: int, words: int = 1, bins: int = 0):
    """Query ranges whose temporaries (``n x words`` per query, plus ``bins``) fit in the budget."""
    step = max(1, _CHUNK_ELEMENTS // max(1, n * words + bins))
    for lo in range(0, nq, step):
        yield lo, min(nq, lo + step)


if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _popcount(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x)

else:  # pragma: no cover - numpy < 2.0
    _BYTE_COUNTS = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)

    def _popcount(x: np.ndarray) -> np.ndarray:
        b = _BYTE_COUNTS[x.view(np.uint8)].reshape(*x.shape, 8)
        return b.sum(axis=-1, dtype=np.uint8)


def _distance_block(qw: np.ndarray, dw: np.ndarray) -> np.ndarray:
    """Hamming distances of a block of queries against the database, the smallest unsigned dtype."""
    n_bits_max = qw.shape[1] * 64
    dtype = np.uint8 if n_bits_max <= 255 else (np.uint16 if n_bits_max <= 65535 else np.uint32)
    if qw.shape[1] == 1:
        return _popcount(qw[:, None, 0] ^ dw[None, :, 0]).astype(dtype, copy=False)
    counts = _popcount(qw[:, None, :] ^ dw[None, :, :])
    return counts.sum(axis=-1, dtype=dtype)


def _relevance_block(ql: np.ndarray, dl: np.ndarray, exact: bool) -> np.ndarray:
    """``(q, N)`` bool: shared label (any common bit), or identical label rows when ``exact``."""
    if exact:
        return (ql[:, None, :] == dl[None, :, :]).all(axis=-1)
    return ((ql[:, None, :] & dl[None, :, :]) != 0).any(axis=-1)


def ranked_stats(qw, dw, ql, dl, topk, exact, average, cutoffs):
    """numpy version of :func:`._kernels_numba.ranked_stats` (same arguments and results)."""
    nq, n = qw.shape[0], dw.shape[0]
    n_bins = qw.shape[1] * 64 + 1
    cutoffs = np.asarray(cutoffs, dtype=np.int64)
    ap = np.zeros(nq)
    n_relevant = np.zeros(nq)
    hits = np.zeros((nq, cutoffs.shape[0]))
    ranks = np.arange(1, topk + 1, dtype=np.float64)
    for lo, hi in _chunks(nq, n, dw.shape[1] + dl.shape[1], n_bins):
        dist = _distance_block(qw[lo:hi], dw)
        rel = _relevance_block(ql[lo:hi], dl, exact)
        if not average:
            order = np.argsort(dist, axis=1, kind="stable")[:, :topk]
            flags = np.take_along_axis(rel, order, axis=1).astype(np.float64)
            cum = np.cumsum(flags, axis=1)
            t = cum[:, -1]
            total = (flags * cum / ranks).sum(axis=1)
            ap[lo:hi] = np.divide(total, t, out=np.zeros_like(total), where=t > 0)
            n_relevant[lo:hi] = t
            if cutoffs.shape[0]:
                hits[lo:hi] = cum[:, cutoffs - 1]
            continue
        rows = np.arange(hi - lo)[:, None] * n_bins
        items = np.bincount((rows + dist).ravel(), minlength=(hi - lo) * n_bins).reshape(hi - lo, n_bins)
        relh = np.bincount((rows + dist).ravel(), weights=rel.ravel().astype(np.float64),
                           minlength=(hi - lo) * n_bins).reshape(hi - lo, n_bins)
        for q in range(hi - lo):
            ap[lo + q], n_relevant[lo + q], hits[lo + q] = _tie_average(items[q], relh[q], topk, cutoffs)
    return ap, n_relevant, hits


def _tie_average(items: np.ndarray, rel: np.ndarray, topk: int, cutoffs: np.ndarray):
    """Tie-aware AP and expected hits for one query from its per-distance item / relevant counts."""
    starts = np.concatenate(([0], np.cumsum(items)))
    before = 0.0
    num = 0.0
    expected_t = 0.0
    hits = np.zeros(cutoffs.shape[0])
    c = 0
    for b in range(items.shape[0]):
        s0 = int(starts[b])
        if s0 >= topk:
            break
        size = int(items[b])
        if size == 0:
            continue
        r = float(rel[b])
        m = min(size, topk - s0)
        frac = r / size
        if r > 0:
            pair = r * (r - 1.0) / (size * (size - 1.0)) if size > 1 else 0.0
            u = np.arange(m, dtype=np.float64)
            num += float(np.sum((frac * (before + 1.0) + u * pair) / (s0 + u + 1.0)))
        while c < cutoffs.shape[0] and cutoffs[c] <= s0 + m:
            hits[c] = before + frac * (cutoffs[c] - s0)
            c += 1
        expected_t += frac * m
        before += r
    ap = num / expected_t if expected_t > 0 else 0.0
    return ap, expected_t, hits


def rank_curve_sums(qw, dw, ql, dl, length, exact, n_chunks=1):
    """numpy version of :func:`._kernels_numba.rank_curve_sums` (``n_chunks`` is ignored)."""
    nq, n = qw.shape[0], dw.shape[0]
    psum = np.zeros(length)
    rsum = np.zeros(length)
    without = 0
    ranks = np.arange(1, length + 1, dtype=np.float64)
    for lo, hi in _chunks(nq, n, dw.shape[1] + dl.shape[1]):
        dist = _distance_block(qw[lo:hi], dw)
        rel = _relevance_block(ql[lo:hi], dl, exact)
        total = rel.sum(axis=1)
        order = np.argsort(dist, axis=1, kind="stable")[:, :length]
        cum = np.cumsum(np.take_along_axis(rel, order, axis=1), axis=1, dtype=np.float64)
        has = total > 0
        psum += (cum[has] / ranks).sum(axis=0)
        rsum += (cum[has] / total[has, None]).sum(axis=0)
        without += int((~has).sum())
    return psum, rsum, without


def distance_histograms(qw, dw, ql, dl, exact):
    """numpy version of :func:`._kernels_numba.distance_histograms`."""
    nq, n = qw.shape[0], dw.shape[0]
    n_bins = qw.shape[1] * 64 + 1
    items = np.zeros((nq, n_bins), np.int64)
    relevant = np.zeros((nq, n_bins), np.int64)
    for lo, hi in _chunks(nq, n, dw.shape[1] + dl.shape[1], 2 * n_bins):
        dist = _distance_block(qw[lo:hi], dw).astype(np.int64)
        rel = _relevance_block(ql[lo:hi], dl, exact)
        idx = (np.arange(hi - lo)[:, None] * n_bins + dist).ravel()
        size = (hi - lo) * n_bins
        items[lo:hi] = np.bincount(idx, minlength=size).reshape(hi - lo, n_bins)
        relevant[lo:hi] = np.bincount(idx[rel.ravel()], minlength=size).reshape(hi - lo, n_bins)
    return items, relevant


def hamming_matrix(qw, dw, out):
    """numpy version of :func:`._kernels_numba.hamming_matrix`."""
    for lo, hi in _chunks(qw.shape[0], dw.shape[0], dw.shape[1]):
        out[lo:hi] = _distance_block(qw[lo:hi], dw)
