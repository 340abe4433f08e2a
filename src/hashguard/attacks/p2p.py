"""P2P, point-to-point targeted attack (Bai et al., ECCV 2020, "Targeted attack for deep hashing
based retrieval", Sec. 3.2 with n_t = 1).

Threat model: white-box, L-inf, targeted only. The target code is the code of one reference
sample carrying exactly the target label (``codes.anchor_codes`` with n_anchors = 1, drawn from
the seed per query); the loss is -(1/K) <a, h> (DHTA Eq. 5), minimised by sign-PGD with
T = 2000, step 1/255, eps 8/255 (the public code's 0.032 is in normalised units, docs/methods.md#p2p-and-dhta),
no random start, and the relative alpha schedule (SAAT's re-implementation).

Example:
    >>> result = create_attack("p2p", model, targeted=True)(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

from typing import List

import torch

from .anchors import checked_anchor_codes
from .base import CodeAttack
from .knowledge import Knowledge
from .registry import register_attack


@register_attack("p2p")
class PointToPointAttack(CodeAttack):
    """P2P: PGD toward the code of one sample of the target label (DHTA with n_t = 1)."""

    supports_untargeted = False
    n_anchors = 1

    def __init__(self, model, *, eps=8 / 255, step=1 / 255, steps=2000, **engine):
        super().__init__(model, eps=eps, step=step, steps=steps, **engine)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return checked_anchor_codes(target_labels, knowledge, n_anchors=self.n_anchors, seed=self.seed, ids=ids)
