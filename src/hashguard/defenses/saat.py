"""SAAT, semantic-aware adversarial training (Xu et al., TIFS 2023), Eq. 16-20 and Algorithm 1.

For a batch with labels y, the mainstay codes c = mainstay(y) (Eq. 10-11) come from the current
sign codes B of the training set, refreshed with every batch's benign codes as training proceeds.
Inner maximisation (Eq. 17-18): PGD away from c, i.e. minimise (1/K) <c, h(x')>, eps 8/255,
step 2/255, 7 iterations, random start. Outer minimisation (Eq. 20):

    L = lambda * L_adv + mu * L_qua + L_ori,
    L_adv = -(1/K) <c, h(x')> (mean over the batch),  L_qua = mean (h(x') - sign h(x'))^2,

lambda = 1, mu = 1e-4, L_ori the checkpoint's hashing objective on the benign codes; c is
recomputed after the batch's codes refresh B (SAAT's code). SGD lr 0.05, weight decay 1e-5, no
momentum, x0.1 at T/2 and 3T/4, 20 epochs, batch 32.

``weighting="code"`` builds c with the positive weights of SAAT's public code (cosine similarities
divided by their sum) instead of Eq. 11's 1/|P| (``codes.mainstay``); the default is ``"paper"``.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..codes import mainstay_codes
from .base import Defense
from .registry import register_defense


class CodeGuidedDefense(Defense):
    """A defense whose reference code is a closed-form code of the batch labels (SAAT, CgAT, PgA-AT)."""

    code_builder: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = staticmethod(mainstay_codes)

    def reference(self, y, idx, target_labels=None):
        """The closed-form code of the batch labels from the current training codes B."""
        return self.code_builder(y, self.B, self.objective.Y)


@register_defense("saat")
class SemanticAwareAdversarialTraining(CodeGuidedDefense):
    """SAAT (Eq. 20): mainstay-guided PGD inside, lambda L_adv + mu L_qua + L_ori outside."""

    defaults = {"epochs": 20, "lr": 0.05, "momentum": 0.0, "weight_decay": 1e-5}

    @classmethod
    def method_defaults(cls):
        return {"lam": 1.0, "mu": 1e-4, "weighting": "paper"}

    def reference(self, y, idx, target_labels=None):
        """The mainstay codes of the batch labels from the current B, with ``params["weighting"]``."""
        return mainstay_codes(y, self.B, self.objective.Y, weighting=self.params["weighting"])

    def outer_loss(self, h_ben, h_adv, y, idx, ref):
        c = self.reference(y, idx)  # recomputed from the refreshed B
        l_adv = -(h_adv * c).mean()
        l_qua = (h_adv - h_adv.detach().sign()).pow(2).mean()
        return self.params["lam"] * l_adv + self.params["mu"] * l_qua + self.objective(h_ben, y, idx)
