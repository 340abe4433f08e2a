"""The mainstay-code attack of SAAT (Xu et al., TIFS 2023, "Semantic-aware adversarial training
for reliable deep hashing retrieval"), Eq. 12-15.

Threat model: white-box, L-inf. Untargeted (Eq. 12-13): maximise the Hamming distance between
the adversarial code and the mainstay code b_m(y) of the query label (Eq. 10-11), relaxed as
``max -(1/K) b_m^T tanh(alpha f(x'))``. Targeted (Eq. 14): ``max (1/K) b_t^T tanh(alpha f(x'))``
with b_t the mainstay code of the target label. PGD (Eq. 15) with T = 100, step 1/255, eps 8/255,
starting from the clean image (x'_0 = x), and the relative alpha schedule of Sec. IV-A.

``loss="margin"`` switches to the variant of SAAT's public code (docs/methods.md#mainstay-attack): with
s = h ∘ c, untargeted keeps the bits with s > -0.5 and minimises mean (s + 2) s over them;
targeted keeps s < 0.5 and minimises -mean (s + 2) s. The default is the paper's Eq. 13-14.

``weighting="code"`` builds the mainstay codes with the positive weights of SAAT's public code
(cosine similarities divided by their sum) instead of Eq. 11's 1/|P| (``codes.mainstay``); the
default ``"paper"`` is Eq. 11. The two agree on single-label data.

Example:
    >>> result = create_attack("mainstay", model, targeted=True)(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

from typing import List

import torch

from ..codes import mainstay_codes
from ..codes.mainstay import check_weighting
from .base import CodeAttack
from .context import AttackContext
from .knowledge import Knowledge
from .registry import register_attack

LOSSES = ("linear", "margin")


def saat_margin_loss(h: torch.Tensor, goal: torch.Tensor, targeted: bool) -> torch.Tensor:
    """The margin loss of SAAT's code, per query; ``goal`` = target code or negated mainstay code."""
    if targeted:
        s = goal * h
        mask = (s < 0.5).to(h.dtype)
        value = -(s + 2) * s
    else:
        s = -goal * h  # agreement with the mainstay code
        mask = (s > -0.5).to(h.dtype)
        value = (s + 2) * s
    return (mask * value).sum(1) / mask.sum(1).clamp_min(1.0)


@register_attack("mainstay")
class MainstayAttack(CodeAttack):
    """SAAT's mainstay attack (Eq. 13 untargeted, Eq. 14 targeted), PGD-100 from the clean image.

    Args: as :class:`~hashguard.attacks.base.Attack`; ``loss`` is ``"linear"`` (paper, default)
    or ``"margin"`` (SAAT's public code); ``weighting`` is ``"paper"`` (Eq. 11, default) or
    ``"code"`` (SAAT's public code: positives weighted by cosine / sum of cosines).
    """

    def __init__(self, model, *, eps=8 / 255, step=1 / 255, steps=100, random_start=False, loss="linear",
                 weighting="paper", **engine):
        super().__init__(model, eps=eps, step=step, steps=steps, random_start=random_start, **engine)
        if loss not in LOSSES:
            raise ValueError(f"unknown mainstay loss {loss!r}; valid choices: {', '.join(LOSSES)}")
        self.loss = loss
        self.weighting = check_weighting(weighting)

    def reference_codes(self, x: torch.Tensor, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return mainstay_codes(labels, knowledge.codes, knowledge.labels, weighting=self.weighting)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return mainstay_codes(target_labels, knowledge.codes, knowledge.labels, weighting=self.weighting)

    def code_loss(self, h: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        if self.loss == "margin":
            return saat_margin_loss(h, ctx.required("goal"), self.targeted)
        return super().code_loss(h, ctx)
