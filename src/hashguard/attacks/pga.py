"""PgA, the pharos-guided attack (Wang et al., "Reliable and efficient evaluation of adversarial
robustness for deep hashing-based retrieval"), Eq. 11-15.

Threat model: white-box, L-inf, untargeted (push the code away from the query's pharos code
b* = pharos(y), PgA Eq. 7-8) or targeted (pull it toward the pharos code of the target label).
With u = b* ∘ h the per-bit agreement with the pharos code and t the margin (default -0.8):

    m_k = 1[u_k > t],   omega_k = u_k - 2t on those bits,                      (Eq. 12, 14)
    L_a = -(1/pi) sum_k m_k omega_k u_k,   pi = sum_k m_k                       (Eq. 13)

maximised by PGD from a uniform random start (Eq. 15; T = 100, step 1/255, eps 8/255) on the
model's own tanh outputs: the paper has no tanh-scale schedule, so ``alpha="none"`` by default.
``alpha="relative"`` (SAAT's / HAG's schedule) stays an option; under it alpha = 0.1 for the first
half of the run, where u_k = tanh(0.1 z_k) passes the margin t = -0.8 only for a logit z_k below
-11, so nearly every bit stays in the loss and PgA acts much like PgA-dagger (Eq. 10) for half
its iterations (issue 14 item 5). Bits whose
agreement is already below the margin t drop out of the loss ("focus on different signs",
following HAG); the weight u_k - 2t grows with the agreement, so the most stubborn bits get the
largest push. In our minimised form the loss is ``(1/pi) sum_k m_k (u_k - 2t) u_k`` with
u = -goal ∘ h, goal = -b* (untargeted) or the target pharos code (targeted).

Example:
    >>> attack = create_attack("pga", model)
    >>> result = attack(x, y, knowledge=Knowledge.from_model(model, splits.train))
    >>> mean_average_precision(result.codes_adv, db_codes, y, db_labels, topk=1000)
"""

from __future__ import annotations

from typing import List

import torch

from ..codes import pharos_codes
from .base import CodeAttack
from .context import AttackContext
from .knowledge import Knowledge
from .registry import register_attack


def pharos_margin_loss(h: torch.Tensor, goal: torch.Tensor, margin: float = -0.8) -> torch.Tensor:
    """Per-query PgA loss (Eq. 13, minimised form); ``goal`` is the code to agree with."""
    u = -goal * h  # agreement with the code pushed away from
    mask = (u > margin).to(h.dtype)
    count = mask.sum(1).clamp_min(1.0)
    return (mask * (u - 2 * margin) * u).sum(1) / count


@register_attack("pga")
class PharosGuidedAttack(CodeAttack):
    """PgA (Eq. 13): pharos codes (Eq. 7-8), margin-weighted loss, PGD-100 from a random start.

    Args: as :class:`~hashguard.attacks.base.Attack`; ``margin`` is t of Eq. 12 (-1 < t < 0).
    """

    def __init__(self, model, *, eps=8 / 255, step=1 / 255, steps=100, random_start=True, alpha="none", margin=-0.8,
                 **engine):
        super().__init__(model, eps=eps, step=step, steps=steps, random_start=random_start, alpha=alpha, **engine)
        if not -1.0 < float(margin) < 0.0:
            raise ValueError(f"margin t must lie in (-1, 0) (PgA Eq. 12), got {margin}")
        self.margin = float(margin)

    def reference_codes(self, x: torch.Tensor, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return pharos_codes(labels, knowledge.codes, knowledge.labels)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return pharos_codes(target_labels, knowledge.codes, knowledge.labels)

    def code_loss(self, h: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        return pharos_margin_loss(h, ctx.required("goal"), self.margin)
