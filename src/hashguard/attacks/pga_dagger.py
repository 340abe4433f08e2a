"""PgA† (Wang et al., PgA paper Eq. 10): the pharos-guided attack with the plain linear loss.

Threat model: white-box, L-inf, untargeted or targeted. Maximises L_a = -(1/K) b*^T h (Eq. 10),
i.e. pushes the code away from the pharos code b* (Eq. 7-8) with every bit weighted equally;
PGD-100 from a random start, step 1/255, eps 8/255, without a tanh-scale schedule (``alpha="none"``,
as PgA: the paper has none; ``alpha="relative"`` is an option). The paper reports it slightly weaker than
PgA's margin-weighted Eq. 13, which is the comparison this attack exists for.

Example:
    >>> result = create_attack("pga-dagger", model)(x, y, knowledge=knowledge)
"""

from __future__ import annotations

from typing import List

import torch

from ..codes import pharos_codes
from .base import CodeAttack
from .knowledge import Knowledge
from .registry import register_attack


@register_attack("pga-dagger")
class PharosGuidedAttackLinear(CodeAttack):
    """PgA† (Eq. 10): pharos codes, linear loss, PGD-100 from a random start."""

    def __init__(self, model, *, eps=8 / 255, step=1 / 255, steps=100, random_start=True, alpha="none", **engine):
        super().__init__(model, eps=eps, step=step, steps=steps, random_start=random_start, alpha=alpha, **engine)

    def reference_codes(self, x: torch.Tensor, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return pharos_codes(labels, knowledge.codes, knowledge.labels)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return pharos_codes(target_labels, knowledge.codes, knowledge.labels)
