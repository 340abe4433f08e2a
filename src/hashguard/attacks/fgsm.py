"""FGSM baseline (Goodfellow et al., ICLR 2015) on a hashing code: one signed gradient step of
size eps on the linear code loss -(1/K) <goal, h> (as ProS-GAN's "DHTA + FGSM" baseline).

Threat model: white-box, L-inf, untargeted (away from a reference code; default the clean code)
or targeted (toward a target code; default the DHTA anchor). ``code=`` picks any code builder
(``clean``, ``anchor``, ``center``, ``mainstay``, ``pharos``). alpha = 1 (no schedule).

Example:
    >>> result = create_attack("fgsm", model, code="mainstay")(x, y, knowledge=knowledge)
"""

from __future__ import annotations

from .code_choice import ChosenCodeAttack
from .registry import register_attack


@register_attack("fgsm")
class FGSM(ChosenCodeAttack):
    """One sign step of size eps on the linear code loss."""

    def __init__(self, model, *, eps=8 / 255, step=None, steps=1, alpha="none", **engine):
        super().__init__(model, eps=eps, step=eps if step is None else step, steps=steps, alpha=alpha, **engine)
