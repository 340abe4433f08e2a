"""Robust mAP: per query, the worst case over every untargeted attack that ran (AutoAttack style).

AutoAttack reports, per input, whether *any* attack of its suite broke it, running each attack only
on the inputs the earlier ones left standing. Here every untargeted attack of the grid has already
run on every query (each record keeps each query's AP), so the worst case is exact rather than a
cascade's upper bound: a query's robust AP is the minimum of its APs over the attacks, the robust
mAP their mean, and a query counts as unbroken only when no attack succeeded on it (success: P@10
with the query label below 0.5). Because every attack's result on a query is independent of the
other queries in its batch (tested: batch equals one-at-a-time), the set of broken queries is the
same one an AutoAttack cascade over these attacks would find, in any order.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np


def worst_case(records: Sequence[Dict]) -> Dict[str, Any]:
    """The robust (worst-case) numbers of untargeted attack records of one model on one query set.

    Args:
        records: the metrics of each attack (``run_attack`` records, with ``per_query`` and
            ``query_indices``), all on the same queries.

    Returns:
        ``{"map": robust mAP, "unbroken": fraction of queries no attack broke, "n_attacks": ...,
        "strongest": per query the method that reached the minimum, "per_query": the minima}``.

    Raises:
        ValueError: no records, or records over different queries.
    """
    records = list(records)
    if not records:
        raise ValueError("worst_case needs at least one untargeted attack record")
    ids = records[0]["query_indices"]
    for r in records[1:]:
        if r["query_indices"] != ids:
            raise ValueError(
                f"attack records {records[0]['method']!r} and {r['method']!r} were run on different queries; "
                "the worst case needs every attack on the same query set (same seed and query count)"
            )
    aps = np.array([r["per_query"]["ap"] for r in records], dtype=np.float64)  # (attacks, queries)
    broken = np.array([r["per_query"]["success"] for r in records], dtype=bool)
    arg = aps.argmin(axis=0)
    names: List[str] = [r["method"] for r in records]
    return {
        "map": float(aps.min(axis=0).mean()),
        "unbroken": float((~broken.any(axis=0)).mean()),
        "n_attacks": len(records),
        "strongest": [names[i] for i in arg],
        "per_query": aps.min(axis=0).tolist(),
    }


__all__ = ["worst_case"]
