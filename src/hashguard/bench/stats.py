"""Bootstrap confidence intervals of mAP from per-query APs.

Every attack record keeps each query's AP (``per_query.ap``), so the uncertainty of an mAP due to
the choice of queries is estimated by the percentile bootstrap: resample the queries with
replacement ``resamples`` times, take the mean of each resample, and report the 2.5th and 97.5th
percentiles of those means (a 95 % interval). The resampling is drawn from a fixed seed, so a report
is byte-for-byte reproducible, and it is vectorised (one ``(resamples, n)`` index matrix, in chunks
for large query sets).

A difference of two mAPs over the *same* queries (robustness a defense gained, clean mAP it cost)
is bootstrapped on the per-query differences (a paired bootstrap), which is what makes such an
interval narrower than the two separate intervals suggest (docs/design.md#confidence-intervals).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
_CHUNK = 4_000_000  # index entries per block (resamples x queries), about 32 MB of int64


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Optional[Tuple[float, float]]:
    """The percentile-bootstrap interval of the mean of ``values`` (per-query APs, or their
    per-query differences for a paired interval).

    Args:
        values: 1-D numbers, one per query.
        resamples: bootstrap resamples (1000 by default).
        seed: the seed of the resampling; the same seed and length give the same resamples.
        level: the coverage (0.95: the 2.5th and 97.5th percentiles).

    Returns:
        ``(low, high)``, or None for an empty input. A single value gives ``(v, v)``.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return None
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples!r}")
    rng = np.random.default_rng(seed)
    n = x.size
    per_block = max(1, _CHUNK // n)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, per_block):
        stop = min(resamples, start + per_block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


__all__ = ["bootstrap_ci", "RESAMPLES", "SEED", "LEVEL"]
