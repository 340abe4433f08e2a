"""CgAT, center-guided adversarial training (Wang et al., WWW 2023; docs/methods.md#cgat).

The centre code c = sign(mean of positives' codes - mean of negatives' codes) of the batch labels,
over the current training sign codes B. Inner maximisation: PGD away from c (minimise (1/K) <c, h>),
eps 8/255, step 2/255, 7 iterations, random start. Outer: L = L_ori(h) - mean(h(x') * c), with c
recomputed after the batch refreshes B. SGD lr 0.01, momentum 0.9, weight decay 5e-4, x0.1 at T/2
and 3T/4, 30 epochs, batch 32.
"""

from __future__ import annotations

from ..codes import center_codes
from .registry import register_defense
from .saat import CodeGuidedDefense


@register_defense("cgat")
class CenterGuidedAdversarialTraining(CodeGuidedDefense):
    """CgAT: centre-code-guided PGD inside, L_ori - mean(h_adv * c) outside."""

    code_builder = staticmethod(center_codes)
    defaults = {"epochs": 30, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}

    def outer_loss(self, h_ben, h_adv, y, idx, ref):
        c = self.reference(y, idx)
        return self.objective(h_ben, y, idx) - (h_adv * c).mean()
