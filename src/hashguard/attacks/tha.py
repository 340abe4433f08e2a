"""THA, targeted hashing attack with a prototype code (Wang et al., SIGIR 2021, "Targeted attack
and defense for deep hashing"), with the circle-loss PrototypeNet (``codes.prototype``).

Threat model: white-box, L-inf, targeted only. ``fit`` trains a PrototypeNet on the attacker's
reference set (label -> code, circle loss against the reference codes, 100 epochs x 300 steps,
Adam 1e-4); the target code is p = sign(PrototypeNet(y_t)), and the attack minimises
-(1/K) <p, h> by sign-PGD: T = 100, step 1/255, eps 8/255, no random start, with the relative
alpha schedule (SAAT's re-implementation; the THA code runs alpha = 1). A saved PrototypeNet can be
reused with ``prototype_path=``; a net that was not fitted is trained on first use.

Example:
    >>> attack = create_attack("tha", model, targeted=True).fit(knowledge)
    >>> result = attack(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

from .prototype_attack import PrototypeCodeAttack
from .registry import register_attack


@register_attack("tha")
class TargetedHashingAttack(PrototypeCodeAttack):
    """THA: PGD-100 toward the circle-loss prototype code of the target label."""

    def __init__(self, model, *, targeted=True, eps=8 / 255, step=1 / 255, steps=100, **kwargs):
        super().__init__(model, targeted=targeted, eps=eps, step=step, steps=steps, **kwargs)
