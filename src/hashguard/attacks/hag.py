"""HAG, Hamming-space adversarial generation (Yang et al., IEEE TCSVT 2020, "Adversarial examples
for Hamming space search"), as re-implemented in SAAT's public code (docs/methods.md#hag).

Threat model: white-box, L-inf, untargeted; pushes the code away from the query's own clean code
h (no knowledge of other images is used). With the mask of bits not yet past the margin t = 0.5,

    mask_k = 1[ |h'_k - sign(h_k)| < 1 + t ],  m = sum_k mask_k,
    L = ( sum_k (mask_k h'_k)(mask_k h_k) / m + 1 )^2 + beta (mean_k h'_k)^2,

(beta = 1: a bit-balance term), minimised by SGD with momentum 0.9 on the image itself, learning
rate 100, 2000 iterations with the relative alpha schedule, each iterate projected to the
eps-ball (8/255) and [0, 1]. The loss is per query and summed over the batch, so a query's
result does not depend on the batch it is in (SAAT's code averages over the batch, which divides
its learning rate by the batch size).

Example:
    >>> result = create_attack("hag", model)(x, y)            # no reference set needed
"""

from __future__ import annotations

import torch

from ..models.hash_model import sign_codes
from .base import CodeAttack
from .context import AttackContext
from .registry import register_attack


@register_attack("hag")
class HammingAttack(CodeAttack):
    """HAG (SAAT's version): masked inner-product loss, SGD with momentum on the image."""

    supports_targeted = False
    needs_knowledge = False

    def __init__(self, model, *, eps=8 / 255, steps=2000, optimizer="sgd", lr=100.0, momentum=0.9,
                 margin=0.5, balance=1.0, **engine):
        super().__init__(model, eps=eps, steps=steps, optimizer=optimizer, lr=lr, momentum=momentum, **engine)
        self.margin = float(margin)
        self.balance = float(balance)

    def prepare(self, ctx: AttackContext) -> None:
        clean = self.model(ctx.x)
        ctx.reference = sign_codes(clean)
        ctx.goal = -ctx.reference
        ctx.per_query["clean"] = clean

    def code_loss(self, h: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        clean, ref = ctx.per_query["clean"], ctx.required("reference")
        mask = ((h.detach() - ref).abs() < 1 + self.margin).to(h.dtype)
        count = mask.sum(1)
        inner = (mask * h * clean).sum(1) / (count + 1e-8)
        return (inner + 1) ** 2 + self.balance * h.mean(1) ** 2
