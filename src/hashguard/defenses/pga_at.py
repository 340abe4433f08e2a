"""PgA-AT, adversarial training with pharos codes (PgA paper, Appendix A.3, Eq. 16).

    min_theta  L_ori - (1/N) sum_i (1/K) b*_i^T f(x'_i),

b*_i the pharos code of x_i's label (Eq. 7-8) over the current training sign codes, x'_i the PgA
adversarial example (Eq. 13 margin loss, t = -0.8) found by PGD with eps 8/255, step 2/255,
7 iterations, random start. The paper gives no optimiser settings for this experiment; we use
SAAT's (SGD lr 0.05, weight decay 1e-5, 20 epochs), the same authors' adversarial training.
"""

from __future__ import annotations

from ..codes import pharos_codes
from .registry import register_defense
from .saat import CodeGuidedDefense


@register_defense("pga-at")
class PharosGuidedAdversarialTraining(CodeGuidedDefense):
    """PgA-AT (Eq. 16): PgA inside, L_ori - mean(h_adv * b*) outside."""

    code_builder = staticmethod(pharos_codes)
    inner_attack = "pga"
    defaults = {"epochs": 20, "lr": 0.05, "momentum": 0.0, "weight_decay": 1e-5}

    def outer_loss(self, h_ben, h_adv, y, idx, ref):
        return self.objective(h_ben, y, idx) - (h_adv * self.reference(y, idx)).mean()
