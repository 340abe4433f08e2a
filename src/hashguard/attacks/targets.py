"""Target labels of targeted attacks: one per query, drawn once per seed, shared by every method.

Rule (docs/design.md#target-labels; SAAT's ``select_target_label``): for each query, uniformly among the
distinct label rows of the pool (the database labels) that have **zero overlap** with the query
label and are not all-zero. Every targeted method of a run reads the same targets, saved next to
the results, so the t-MAP of P2P, DHTA, THA, ... are measured on identical (query, target) pairs.
The draw for query i depends only on ``(seed, ids[i])``, not on which other queries are drawn.

``rule="any"`` drops the overlap constraint: any distinct non-zero database label row, possibly
the query's own (ProS-GAN's and THA's code; the ``prosgan`` protocol, ``bench/protocols.py``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .._random import default_ids, per_sample_rand, sample_generators

RULES = ("zero-overlap", "any")


def unique_labels(labels: torch.Tensor) -> torch.Tensor:
    """The distinct non-zero label rows of ``labels`` (M, C), in sorted order."""
    rows = torch.unique(torch.as_tensor(labels).float(), dim=0)
    return rows[rows.sum(1) > 0]


def draw_target_labels(
    query_labels: torch.Tensor,
    pool_labels: torch.Tensor,
    *,
    seed: int = 0,
    ids: Optional[Sequence[int]] = None,
    rule: str = "zero-overlap",
) -> torch.Tensor:
    """One target label per query: a pool label row with no label in common with the query's
    (``rule="zero-overlap"``), or any pool label row (``rule="any"``).

    Args:
        query_labels: ``(Q, C)`` multi-hot labels of the queries.
        pool_labels: ``(N, C)`` labels to draw from (the database labels).
        seed, ids: query i's draw depends only on ``(seed, ids[i])`` (default ids ``0..Q-1``).
        rule: ``"zero-overlap"`` (default) or ``"any"`` (uniform over the distinct non-zero rows).

    Returns:
        ``(Q, C)`` float target labels.

    Raises:
        ValueError: label widths differ, or a query overlaps every pool label (e.g. a query
            carrying all classes), which leaves no valid target.
    """
    if rule not in RULES:
        raise ValueError(f"target rule must be one of {', '.join(RULES)}, got {rule!r}")
    q = torch.as_tensor(query_labels).float().cpu()
    pool = unique_labels(torch.as_tensor(pool_labels).cpu())
    if q.dim() != 2 or pool.dim() != 2 or q.shape[1] != pool.shape[1]:
        raise ValueError(
            f"query labels {tuple(q.shape)} and pool labels {tuple(torch.as_tensor(pool_labels).shape)} "
            "must be (Q, C) and (N, C) with the same C"
        )
    if pool.shape[0] == 0:
        raise ValueError("the database has no non-zero label row to draw a target label from")
    valid = (q @ pool.t()) == 0 if rule == "zero-overlap" else torch.ones(q.shape[0], pool.shape[0], dtype=torch.bool)
    empty = (~valid.any(1)).nonzero().flatten()
    if empty.numel():
        i = int(empty[0])
        raise ValueError(
            f"query {i} (label {q[i].nonzero().flatten().tolist()}) shares a label with every label "
            "of the database, so it has no valid target; drop such queries or pass target labels yourself"
        )
    keys = per_sample_rand(sample_generators(seed, default_ids(q.shape[0], ids)), (pool.shape[0],))
    keys = torch.where(valid, keys, torch.full_like(keys, -1.0))
    return pool[keys.argmax(1)]
