"""Speed of hashguard's mAP@k against the straightforward implementation, on the same codes.

    python benchmarks/bench_retrieval.py                       # 1000 x 59000, 32 and 64 bits, mAP@5000
    python benchmarks/bench_retrieval.py --bits 16 32 --db 20000 --topk 0   # 0 = whole database

The data imitate trained hash codes on a multi-label dataset (NUS-WIDE-like, 21 classes): every
class has a random ±1 prototype; an item with labels L gets the sign of the sum of its classes'
prototypes (ties to +1), then every bit is flipped independently with probability ``--flip``. The
ranking is therefore meaningful (same-label items are near) and full of distance ties.

"Straightforward" is the per-query loop of the research code (DeepHash-pytorch ``CalcTopMap``
style), re-typed here with a *stable* argsort so that both follow the same tie rule: Hamming
distances by a ±1 float matmul, ``np.argsort(kind="stable")``, relevance by a label inner product,
AP from the ranks of the relevant items in the top k, zero-hit queries counted as 0.

Timings exclude the numba compile (a warm-up call runs first; its time is printed separately, and
is mostly the load from the on-disk cache after the first run). Memory: the increase of the
process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) during each
method's timed runs, and Python-level peak allocations via ``tracemalloc`` (numpy buffers are
traced, numba's internal per-thread buffers are not).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

# BLAS threads for the straightforward loop's matrix-vector products. One by default: on a shared
# 2-core machine a 2-thread OpenBLAS gemv (59000 x 32) was measured 20x slower than a 1-thread one,
# which would flatter our speed-up. Set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS to override.
# (Our kernels use no BLAS; their threads are numba's.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from hashguard.retrieval import mean_average_precision  # noqa: E402
from hashguard.retrieval.ranking import prepare, ranked_stats  # noqa: E402  (per-query check)


def make_data(n_query: int, n_db: int, bits: int, n_classes: int, flip: float, seed: int):
    """Multi-label labels (1-3 classes per item) and prototype-plus-noise ±1 codes (int8)."""
    rng = np.random.default_rng(seed)
    n = n_query + n_db
    labels = np.zeros((n, n_classes), dtype=np.int8)
    n_labels = rng.integers(1, 4, size=n)
    for i in range(n):
        labels[i, rng.choice(n_classes, size=n_labels[i], replace=False)] = 1
    prototypes = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_classes, bits))
    score = labels.astype(np.int32) @ prototypes.astype(np.int32)
    codes = np.where(score >= 0, 1, -1).astype(np.int8)
    codes[rng.random(codes.shape) < flip] *= -1
    return codes[:n_query], codes[n_query:], labels[:n_query], labels[n_query:]


def straightforward_map(query_codes, db_codes, query_labels, db_labels, topk, kind="stable"):
    """Per-query Python loop: ±1 matmul distances, argsort (stable by default), cumulative-count AP."""
    qb = query_codes.astype(np.float32)
    rb = db_codes.astype(np.float32)
    ql = query_labels.astype(np.float32)
    rl = db_labels.astype(np.float32)
    n_bits = qb.shape[1]
    k = rb.shape[0] if topk is None else topk
    total = 0.0
    per_query = np.zeros(qb.shape[0])
    for i in range(qb.shape[0]):
        relevant = (rl @ ql[i]) > 0
        hamming = 0.5 * (n_bits - rb @ qb[i])
        order = np.argsort(hamming, kind=kind)[:k]
        hits = relevant[order]
        t = int(hits.sum())
        if t == 0:
            continue
        positions = np.flatnonzero(hits) + 1.0
        per_query[i] = np.mean(np.arange(1, t + 1) / positions)
        total += float(per_query[i])
    return total / qb.shape[0], per_query


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(fn, repeats: int):
    """(best seconds, value, peak-RSS increase MB, tracemalloc peak MB) over ``repeats`` runs."""
    rss0 = peak_rss_mb()
    tracemalloc.start()
    times = []
    value = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(times), value, peak_rss_mb() - rss0, traced_peak / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--db", type=int, default=59000)
    ap.add_argument("--bits", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--topk", type=int, default=5000, help="k of mAP@k; 0 means the whole database")
    ap.add_argument("--flip", type=float, default=0.2, help="bit-flip probability around the prototypes")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of ours (best is reported)")
    ap.add_argument("--backend", default="auto", choices=["auto", "numba", "numpy"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-unstable", action="store_true",
                    help="skip the extra timing of the loop with numpy's default (unstable) argsort")
    args = ap.parse_args(argv)
    topk = None if args.topk == 0 else args.topk

    try:
        import numba

        threads = numba.get_num_threads()
    except ImportError:
        threads = "n/a (no numba)"
    print(f"hashguard retrieval benchmark: {args.queries} queries x {args.db} database codes, "
          f"{args.classes} classes, mAP@{'all' if topk is None else topk}, backend={args.backend}, "
          f"numba threads={threads}, CPU cores visible={os.cpu_count()}, "
          f"BLAS threads for the loop={os.environ['OPENBLAS_NUM_THREADS']}")

    all_ok = True
    for bits in args.bits:
        qc, dc, ql, dl = make_data(args.queries, args.db, bits, args.classes, args.flip, args.seed)

        def ours():
            return mean_average_precision(qc, dc, ql, dl, topk=topk, backend=args.backend)

        t0 = time.perf_counter()
        mean_average_precision(qc[:2], dc[:10], ql[:2], dl[:10], topk=5, backend=args.backend)
        compile_s = time.perf_counter() - t0

        t_ours, v_ours, rss_ours, tm_ours = measure(ours, args.repeats)
        t_ref, (v_ref, ap_ref), rss_ref, tm_ref = measure(
            lambda: straightforward_map(qc, dc, ql, dl, topk), 1
        )
        # per-query check (untimed): same AP for every query means the same ranking of relevant items
        ap_ours = ranked_stats(prepare(qc, dc, ql, dl), topk, backend=args.backend)[0]
        per_query_diff = float(np.abs(ap_ours - ap_ref).max())
        if not args.no_unstable:
            t_uns, (v_uns, _), _, _ = measure(lambda: straightforward_map(qc, dc, ql, dl, topk, kind=None), 1)
        diff = abs(v_ours - v_ref)
        identical = v_ours == v_ref
        all_ok &= diff <= 1e-12 and per_query_diff <= 1e-12
        print(f"\n{bits} bits")
        print(f"  warm-up (numba compile or cache load): {compile_s:8.3f} s")
        print(f"  ours (hashguard):      {t_ours:8.3f} s  (best of {args.repeats})  mAP = {v_ours:.10f}")
        print(f"  straightforward loop:  {t_ref:8.3f} s                 mAP = {v_ref:.10f}")
        print(f"  speed-up: {t_ref / t_ours:6.1f}x")
        print(f"  values equal to 1e-12: {diff <= 1e-12 and per_query_diff <= 1e-12}  (mAP |difference| = "
              f"{diff:.1e}, bit-identical: {identical}; largest per-query AP |difference| = {per_query_diff:.1e}; "
              f"last-digit differences come from the order of floating-point summation)")
        if not args.no_unstable:
            print(f"  for context, the same loop with numpy's default unstable argsort (DeepHash-pytorch "
                  f"CalcTopMap; other tie order, so another value): {t_uns:.3f} s, mAP = {v_uns:.10f}, "
                  f"{t_uns / t_ours:.1f}x slower than ours")
        print(f"  peak-RSS increase (ru_maxrss): ours {rss_ours:7.1f} MB, straightforward {rss_ref:7.1f} MB")
        print(f"  tracemalloc peak:              ours {tm_ours:7.1f} MB, straightforward {tm_ref:7.1f} MB")
    print(f"\nprocess peak RSS (ru_maxrss, includes interpreter, numpy, numba and the data): {peak_rss_mb():.0f} MB")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
