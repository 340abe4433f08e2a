"""Anchor codes as attack targets: the checked form shared by P2P, DHTA and NAG.

``codes.anchor_codes`` returns the component-wise majority of ``n_anchors`` reference codes
carrying the target label (DHTA Eq. 4; one sample for P2P and NAG). When no reference sample
carries any class of a target label, the vote is empty and the code would be all +1; an attack
must refuse such a target instead of silently aiming at that code.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..codes import anchor_codes
from .knowledge import Knowledge


def checked_anchor_codes(target_labels: torch.Tensor, knowledge: Knowledge, *, n_anchors: int, seed: int,
                         ids: Sequence[int]) -> torch.Tensor:
    """Anchor codes (B, K) of ``target_labels`` (sampled per query from ``(seed, ids[i])``), or a
    ``ValueError`` naming the first target label no reference sample shares."""
    codes, used = anchor_codes(target_labels, knowledge.codes, knowledge.labels,
                               n_anchors=n_anchors, seed=seed, ids=ids, return_indices=True)
    missing = (used < 0).all(1).nonzero().flatten()
    if missing.numel():
        i = int(missing[0])
        raise ValueError(
            f"no reference sample carries any class of target label {target_labels[i].nonzero().flatten().tolist()} "
            f"(query {ids[i]}); draw targets from labels the attacker's reference set has (draw_target_labels with "
            "pool_labels=knowledge.labels) or pass a larger reference set"
        )
    return codes


__all__ = ["checked_anchor_codes"]
