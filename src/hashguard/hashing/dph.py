"""DPH: deep pairwise hashing with a squared inner-product loss (the victim of ProS-GAN / SAAT).

L = mean_ij ( <u_i, U_j> / K - S_ij )^2 with S_ij in {-1, +1} (shared label or not), between the
batch and the buffer U of the whole training set (docs/methods.md#objectives; SAAT ``dph.py``).
"""

from __future__ import annotations

import torch

from .base import HashingObjective, register_hashing, similarity


@register_hashing("dph")
class DPH(HashingObjective):
    name = "dph"

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        s = 2.0 * similarity(y, self.Y) - 1.0
        return (u @ self.U.t() / self.bits - s).pow(2).mean()
