"""HashNet: deep learning to hash by continuation (Cao et al., ICCV 2017, Eq. 4-6).

Weighted pairwise cross-entropy with the inner product scaled by ``scale`` (10 / K by default, the
SAAT choice; the THA / CgAT code uses 0.1):

    l_ij = log(1 + e^{dp_ij}) - S_ij dp_ij,   dp_ij = scale * <u_i, U_j>

Similar pairs are weighted by S_all / S_1 and dissimilar ones by S_all / S_0 (the class-balance
weights of Eq. 5), and the sum is divided by S_all. Continuation (Sec. 3.3): the network's tanh
scale grows as (1 + 0.005 * iteration) ** 0.5, updated every 200 iterations (``alpha(step)``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .base import HashingObjective, register_hashing, similarity


@register_hashing("hashnet")
class HashNet(HashingObjective):
    name = "hashnet"

    def __init__(
        self,
        *,
        bits: int,
        train_labels: torch.Tensor,
        scale: Optional[float] = None,
        continuation_gamma: float = 0.005,
        continuation_power: float = 0.5,
        continuation_step: int = 200,
    ) -> None:
        super().__init__(bits=bits, train_labels=train_labels)
        self.scale = 10.0 / self.bits if scale is None else float(scale)
        self.continuation_gamma = continuation_gamma
        self.continuation_power = continuation_power
        self.continuation_step = continuation_step

    def hparams(self):
        return {
            "scale": self.scale,
            "continuation_gamma": self.continuation_gamma,
            "continuation_power": self.continuation_power,
            "continuation_step": self.continuation_step,
        }

    def alpha(self, step: int) -> float:
        step = (step // self.continuation_step) * self.continuation_step
        return float((1.0 + self.continuation_gamma * step) ** self.continuation_power)

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        s = similarity(y, self.Y)
        dp = self.scale * (u @ self.U.t())
        pair = F.softplus(dp) - s * dp
        n_all = float(s.numel())
        n_pos = s.sum().clamp_min(1.0)
        n_neg = (n_all - s.sum()).clamp_min(1.0)
        weights = s * (n_all / n_pos) + (1.0 - s) * (n_all / n_neg)
        return (weights * pair).sum() / n_all
