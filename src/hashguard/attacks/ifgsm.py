"""I-FGSM baseline (Kurakin et al., ICLR 2017 workshop) on a hashing code: iterated sign steps of
1/255 on the linear code loss -(1/K) <goal, h>, projected to eps = 8/255, 100 iterations (the
"DHTA + I-FGSM" baseline of ProS-GAN Table 2), alpha = 1, no random start.

Threat model: white-box, L-inf, untargeted or targeted; ``code=`` as for :mod:`.fgsm`.

Example:
    >>> result = create_attack("ifgsm", model, targeted=True)(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

from .code_choice import ChosenCodeAttack
from .registry import register_attack


@register_attack("ifgsm")
class IFGSM(ChosenCodeAttack):
    """Iterative FGSM: sign steps of 1/255 on the linear code loss, projected to eps."""

    def __init__(self, model, *, eps=8 / 255, step=1 / 255, steps=100, alpha="none", **engine):
        super().__init__(model, eps=eps, step=step, steps=steps, alpha=alpha, **engine)
