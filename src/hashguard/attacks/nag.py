"""NAG, noise-augmented targeted black-box transfer attack (Xiao & Wang, CVPR 2021, "You see what
I want you to see: exploring targeted black-box transferability attack for hash-based image
retrieval systems"), Sec. 4 and the public code (docs/methods.md#nag).

Threat model: black-box transfer, L-inf, targeted. The perturbation is optimised on a surrogate
model F (the ``model`` given here) and evaluated on a different victim (``hashguard attack
--surrogate``). The paper's own setting (Sec. 1) is *database injection*: the attacker's images,
perturbed toward a target category, are added to the victim's database so that benign queries of
that category retrieve them; :func:`hashguard.injection.evaluate_injection` (``hashguard attack
--threat injection``) runs that protocol, with the paper's vulnerable-pair mining and
random-noise proxy (Sec. 3) as options, for this attack and its PGD baselines.

The target t is the code of one reference image carrying the target label. NAG looks for a
perturbation that is adversarial *and* robust to random noise, which the paper shows transfers
better:

    L = l1(F(x'), t) + lambda * l1(F(clip(x' + n)), t),   n ~ U(-32/255, 32/255) per step,

(l1 = mean absolute difference over the bits, lambda = 1), minimised by iterative FGSM: 32 sign
steps of 1/255, alpha = 1. The public code has no explicit budget (32 steps of 1/255 bound it at
32/255); we project to eps (8/255 by default, the protocol's budget) like every other attack.
The noise of query i at step s depends only on ``(seed, i, s)``.

Example:
    >>> attack = create_attack("nag", surrogate, targeted=True)
    >>> result = attack(x, y, target_labels=y_t, knowledge=Knowledge.from_model(surrogate, splits.train))
    >>> victim.encode(result.x_adv)   # evaluate on the victim
"""

from __future__ import annotations

from typing import List, Tuple

import torch

from .._random import per_sample_rand, sample_generators
from .anchors import checked_anchor_codes
from .base import CodeAttack
from .context import AttackContext
from .knowledge import Knowledge
from .registry import register_attack


@register_attack("nag")
class NoiseAugmentedAttack(CodeAttack):
    """NAG: iFGSM on the l1 loss of the adversarial and of the noise-augmented adversarial code."""

    supports_untargeted = False

    def __init__(self, model, *, targeted=True, eps=8 / 255, step=1 / 255, steps=32, alpha="none",
                 noise=32 / 255, noise_weight=1.0, **engine):
        super().__init__(model, targeted=targeted, eps=eps, step=step, steps=steps, alpha=alpha, **engine)
        if not float(noise) >= 0:
            raise ValueError(f"noise must be >= 0 (half-width of the uniform noise), got {noise}")
        self.noise = float(noise)
        self.noise_weight = float(noise_weight)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return checked_anchor_codes(target_labels, knowledge, n_anchors=1, seed=self.seed, ids=ids)

    def objective(self, x_adv: torch.Tensor, ctx: AttackContext, *, t: int, alpha: float) -> Tuple[torch.Tensor, torch.Tensor]:
        goal = ctx.required("goal")
        h = self.model(x_adv, alpha)
        loss = (h - goal).abs().mean(1)
        if self.noise_weight and self.noise > 0:
            gens = sample_generators(self.seed * 7919 + t, ctx.id_list, x_adv.device)
            n = (per_sample_rand(gens, x_adv.shape[1:], device=x_adv.device) * 2 - 1) * self.noise
            h_noisy = self.model((x_adv + n).clamp(0, 1), alpha)
            loss = loss + self.noise_weight * (h_noisy - goal).abs().mean(1)
        return loss, h
