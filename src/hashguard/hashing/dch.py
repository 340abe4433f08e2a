"""DCH: deep Cauchy hashing (Cao et al., CVPR 2018, Eq. 3-9).

Within-batch pairs only. The Hamming distance is relaxed as d_ij = K/2 (1 - cos(u_i, u_j)) (cosine
clipped at 0.99), the Cauchy probability of similarity is gamma / (gamma + d), and the weighted
cross-entropy plus the Cauchy quantisation loss is

    L = mean_ij w_ij (S_ij log(d_ij / gamma) + log(1 + gamma / d_ij))
        + lambda * mean_i log(1 + d(|u_i|, 1) / gamma)

with gamma = 20, lambda = 0.1, and w balancing similar and dissimilar pairs (docs/methods.md#objectives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import HashingObjective, register_hashing, similarity


@register_hashing("dch")
class DCH(HashingObjective):
    name = "dch"

    def __init__(self, *, bits: int, train_labels: torch.Tensor, gamma: float = 20.0, quantisation: float = 0.1) -> None:
        super().__init__(bits=bits, train_labels=train_labels)
        self.gamma = float(gamma)
        self.quantisation = float(quantisation)

    def hparams(self):
        return {"gamma": self.gamma, "quantisation": self.quantisation}

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(a, dim=1, eps=1e-8) @ F.normalize(b, dim=1, eps=1e-8).t()
        return (1.0 - cos.clamp(max=0.99)) * (self.bits / 2.0)

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        s = similarity(y, y)
        d = self._distance(u, u)
        n_all = float(s.numel())
        w = s * (n_all / s.sum().clamp_min(1.0)) + (1.0 - s) * (n_all / (n_all - s.sum()).clamp_min(1.0))
        cauchy = (w * (s * torch.log(d / self.gamma) + torch.log1p(self.gamma / d))).mean()
        ones = torch.ones_like(u)
        d_q = (1.0 - F.cosine_similarity(u.abs(), ones, dim=1, eps=1e-8).clamp(max=0.99)) * (self.bits / 2.0)
        return cauchy + self.quantisation * torch.log1p(d_q / self.gamma).mean()
