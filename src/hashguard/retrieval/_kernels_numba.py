"""numba kernels for Hamming ranking: popcount distances and O(N) counting-sort ranking per query.

Inputs are the packed words of :mod:`hashguard.retrieval.packing`: codes as ``(N, W)`` uint64
(``W = ceil(K / 64)``) and label bitmasks as ``(N, Wc)`` uint64 (``Wc = ceil(C / 64)``).

Why a counting sort: a Hamming distance takes one of only ``K + 1`` values, so the stable order of
the database for one query (ties broken by database index) follows from a histogram of the
distances. Per query (``ranked_stats``),

1. the ``N`` distances (XOR + popcount, a vectorised loop) go into a small uint16 buffer, and the
   relevance flags (label-mask AND, also vectorised) into a uint8 buffer;
2. the histogram of the distances, turned into exclusive prefix sums, gives for every distance
   the rank of its first item;
3. when ``topk < N``, the items whose distance can still reach the top k (distance <= that of
   rank ``topk``) are compacted, branch-free and in index order, into a short candidate list;
4. each candidate ``j`` is placed at rank ``start[d_j]++`` (so ties keep index order), ranks at or
   beyond ``topk`` are dropped, and its relevance flag is written at that rank;
5. one scan of the ``topk`` flags gives AP and the hit counts.

That is O(N W + topk) per query with no comparison sort, and memory O(N) per thread: the ``Q x N``
distance matrix is never built. Queries run in parallel (``prange``). Kernels compile on first use
(about 15 s for all four on a small CPU) and are cached on disk (``cache=True``, in the package's
``__pycache__``), so later processes load them in a fraction of a second.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, x):
    """LLVM ``ctpop`` on a uint64 word (a single POPCNT / VPOPCNTQ instruction on x86-64)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen


@njit(cache=True)
def _distances(qw, i, dw, dist):
    """Fill ``dist[j]`` with the Hamming distance between query ``i`` and database item ``j``."""
    n = dw.shape[0]
    n_words = dw.shape[1]
    if n_words == 1:  # up to 64 bits: one word, a loop LLVM vectorises
        q0 = qw[i, 0]
        for j in range(n):
            dist[j] = _popcount(q0 ^ dw[j, 0])
    elif n_words == 2:
        q0 = qw[i, 0]
        q1 = qw[i, 1]
        for j in range(n):
            dist[j] = _popcount(q0 ^ dw[j, 0]) + _popcount(q1 ^ dw[j, 1])
    else:
        for j in range(n):
            d = 0
            for w in range(n_words):
                d += _popcount(qw[i, w] ^ dw[j, w])
            dist[j] = d


@njit(cache=True)
def _relevant(ql, i, dl, j, exact):
    """Relevance of database item ``j`` to query ``i``: shared label, or identical rows if ``exact``."""
    if exact:
        for w in range(ql.shape[1]):
            if ql[i, w] != dl[j, w]:
                return False
        return True
    for w in range(ql.shape[1]):
        if (ql[i, w] & dl[j, w]) != 0:
            return True
    return False


@njit(cache=True)
def _relevance_vector(ql, i, dl, exact, out):
    """``out[j] = 1`` if database item ``j`` is relevant to query ``i`` (vectorised when C <= 64)."""
    n = dl.shape[0]
    if ql.shape[1] == 1:
        q0 = ql[i, 0]
        if exact:
            for j in range(n):
                out[j] = q0 == dl[j, 0]
        else:
            for j in range(n):
                out[j] = (q0 & dl[j, 0]) != 0
    else:
        for j in range(n):
            out[j] = _relevant(ql, i, dl, j, exact)


@njit(cache=True)
def _histogram_starts(dist, start):
    """Histogram ``dist`` into ``start`` (zeroed here), then turn it into exclusive prefix sums."""
    start[:] = 0
    for j in range(dist.shape[0]):
        start[dist[j]] += 1
    acc = 0
    for b in range(start.shape[0]):
        c = start[b]
        start[b] = acc
        acc += c


@njit(cache=True)
def _last_bin_before(start, topk):
    """The largest distance whose first rank is below ``topk``: items farther away never make the top k."""
    cut = 0
    for b in range(start.shape[0]):
        if start[b] < topk:
            cut = b
    return cut


@njit(cache=True)
def _candidates(dist, cut, idx, cand_dist):
    """Compact (index, distance) of the items with distance <= ``cut``, in index order; return count.

    Branch-free: every item is written, the write position only advances for candidates.
    """
    m = 0
    for j in range(dist.shape[0]):
        d = dist[j]
        idx[m] = j
        cand_dist[m] = d
        m += d <= cut
    return m


@njit(parallel=True, cache=True)
def ranked_stats(qw, dw, ql, dl, topk, exact, average, cutoffs):
    """AP over the first ``topk`` ranks and hit counts at the ranks in ``cutoffs``, per query.

    Args:
        qw, dw: query / database code words, uint64 ``(Q, W)`` and ``(N, W)``; K <= 65535 bits.
        ql, dl: query / database label bitmasks, uint64 ``(Q, Wc)`` and ``(N, Wc)``.
        topk: number of ranks evaluated, ``1 <= topk <= N``.
        exact: relevance is "identical label rows" instead of "share a label".
        average: tie-aware (McSherry & Najork 2008) expectations instead of index order for ties.
        cutoffs: strictly increasing int64 ranks, each ``<= topk``, at which hits are reported.

    Returns:
        ``(ap, n_relevant, hits)``: float64 ``(Q,)``, ``(Q,)`` and ``(Q, len(cutoffs))``;
        ``n_relevant`` is the number (expected number when ``average``) of relevant items in the
        top ``topk``; ``ap`` is 0 where ``n_relevant`` is 0.
    """
    nq = qw.shape[0]
    n = dw.shape[0]
    n_bins = qw.shape[1] * 64 + 1
    n_cut = cutoffs.shape[0]
    ap = np.zeros(nq)
    n_relevant = np.zeros(nq)
    hits = np.zeros((nq, n_cut))
    for i in prange(nq):
        dist = np.empty(n, np.uint16)
        start = np.empty(n_bins + 1, np.int64)
        relv = np.empty(n, np.uint8)
        _distances(qw, i, dw, dist)
        _relevance_vector(ql, i, dl, exact, relv)
        _histogram_starts(dist, start[:n_bins])
        start[n_bins] = n
        # with topk < N only the items up to the distance of rank topk can make the top k:
        # compact their (index, distance) pairs, in index order, and work on those alone
        partial = topk < n
        m = n
        if partial:
            idx = np.empty(n, np.int32)
            cand_dist = np.empty(n, np.uint16)
            m = _candidates(dist, _last_bin_before(start[:n_bins], topk), idx, cand_dist)
        if not average:
            # counting-sort placement: item j goes to rank start[d_j]++, so ties keep index order
            flags = np.zeros(topk, np.uint8)
            if partial:
                for u in range(m):
                    d = cand_dist[u]
                    p = start[d]
                    if p < topk:
                        start[d] = p + 1
                        flags[p] = relv[idx[u]]
            else:
                for j in range(n):
                    d = dist[j]
                    p = start[d]
                    start[d] = p + 1
                    flags[p] = relv[j]
            # 0-based ranks of the relevant items, collected without branches
            pos = np.empty(topk, np.int32)
            t = 0
            for p in range(topk):
                pos[t] = p
                t += flags[p]
            s = 0.0
            for u in range(t):
                s += (u + 1.0) / (pos[u] + 1.0)
            n_relevant[i] = t
            if t > 0:
                ap[i] = s / t
            u = 0
            for c in range(n_cut):
                while u < t and pos[u] < cutoffs[c]:
                    u += 1
                hits[i, c] = u
        else:
            # relevant items per distance group (only groups reaching into the top k are candidates)
            rel = np.zeros(n_bins, np.int64)
            if partial:
                for u in range(m):
                    rel[cand_dist[u]] += relv[idx[u]]
            else:
                for j in range(n):
                    rel[dist[j]] += relv[j]
            before = 0.0  # relevant items ranked before the current group
            num = 0.0  # expected sum over ranks k of rel_k * (hits in the top k) / k
            expected_t = 0.0  # expected number of relevant items in the top k
            c = 0
            for b in range(n_bins):
                s0 = start[b]
                if s0 >= topk:
                    break
                size = start[b + 1] - s0
                if size == 0:
                    continue
                r = rel[b]
                m_b = min(size, topk - s0)
                frac = r / size
                if r > 0:
                    # rank s0 + u + 1 (u = 0..m_b-1) of a uniformly shuffled group:
                    # E[rel * hits] = frac * (before + 1) + u * r (r - 1) / (size (size - 1))
                    a = frac * (before + 1.0)
                    pair = 0.0
                    if size > 1:
                        pair = r * (r - 1.0) / (size * (size - 1.0))
                    for u in range(m_b):
                        num += (a + u * pair) / (s0 + u + 1.0)
                while c < n_cut and cutoffs[c] <= s0 + m_b:
                    hits[i, c] = before + frac * (cutoffs[c] - s0)
                    c += 1
                expected_t += frac * m_b
                before += r
            n_relevant[i] = expected_t
            if expected_t > 0:
                ap[i] = num / expected_t
    return ap, n_relevant, hits


@njit(parallel=True, cache=True)
def rank_curve_sums(qw, dw, ql, dl, length, exact, n_chunks):
    """Sums over queries of precision@r and recall@r for r = 1..length (stable tie order).

    Queries are split into ``n_chunks`` contiguous blocks, one accumulator row per block, so the
    parallel loop has no shared writes. Recall uses all relevant items of the database; queries
    without any add nothing to the recall sum and are counted in ``n_without``.

    Returns:
        ``(precision_sum, recall_sum, n_without)``: float64 ``(length,)`` twice and an int.
    """
    nq = qw.shape[0]
    n = dw.shape[0]
    n_bins = qw.shape[1] * 64 + 1
    psum = np.zeros((n_chunks, length))
    rsum = np.zeros((n_chunks, length))
    without = np.zeros(n_chunks, np.int64)
    for ch in prange(n_chunks):
        lo = ch * nq // n_chunks
        hi = (ch + 1) * nq // n_chunks
        dist = np.empty(n, np.uint16)
        relv = np.empty(n, np.uint8)
        start = np.empty(n_bins, np.int64)
        flags = np.empty(length, np.uint8)
        for i in range(lo, hi):
            _distances(qw, i, dw, dist)
            _relevance_vector(ql, i, dl, exact, relv)
            _histogram_starts(dist, start)
            flags[:] = 0
            total = 0
            for j in range(n):
                total += relv[j]
                d = dist[j]
                p = start[d]
                if p < length:
                    start[d] = p + 1
                    flags[p] = relv[j]
            t = 0
            if total > 0:
                inv_total = 1.0 / total
                for p in range(length):
                    t += flags[p]
                    psum[ch, p] += t / (p + 1.0)
                    rsum[ch, p] += t * inv_total
            else:
                without[ch] += 1
    return psum.sum(axis=0), rsum.sum(axis=0), without.sum()


@njit(parallel=True, cache=True)
def distance_histograms(qw, dw, ql, dl, exact):
    """Per query, the number of database items and of relevant items at each Hamming distance.

    Returns:
        ``(items, relevant)``: int64 ``(Q, 64 W + 1)`` each; column ``d`` counts distance ``d``.
    """
    nq = qw.shape[0]
    n = dw.shape[0]
    n_bins = qw.shape[1] * 64 + 1
    items = np.zeros((nq, n_bins), np.int64)
    relevant = np.zeros((nq, n_bins), np.int64)
    for i in prange(nq):
        dist = np.empty(n, np.uint16)
        relv = np.empty(n, np.uint8)
        _distances(qw, i, dw, dist)
        _relevance_vector(ql, i, dl, exact, relv)
        for j in range(n):
            d = dist[j]
            items[i, d] += 1
            relevant[i, d] += relv[j]
    return items, relevant


@njit(parallel=True, cache=True)
def hamming_matrix(qw, dw, out):
    """Write the ``(Q, N)`` Hamming distances between query and database words into ``out``."""
    nq = qw.shape[0]
    n = dw.shape[0]
    for i in prange(nq):
        dist = np.empty(n, np.uint16)
        _distances(qw, i, dw, dist)
        for j in range(n):
            out[i, j] = dist[j]
