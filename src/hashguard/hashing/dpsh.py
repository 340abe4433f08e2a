"""DPSH: deep pairwise-supervised hashing (Li, Wang, Kang, IJCAI 2016, Eq. 4-6).

Negative log-likelihood of the pairwise labels under p(S_ij = 1) = sigmoid(theta_ij), with
theta_ij = 1/2 <u_i, U_j>, plus a quantisation term pulling u towards sign(u):

    L = mean_ij( log(1 + e^theta_ij) - S_ij theta_ij ) + eta * sum_i ||sign(u_i) - u_i||^2 / (N * B)

with eta = 50 and N the training-set size, B the batch size (the normalisation of the ProS-GAN,
THA and SAAT code, docs/methods.md#objectives). softplus keeps log(1 + e^theta) stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.hash_model import sign_codes
from .base import HashingObjective, register_hashing, similarity


@register_hashing("dpsh")
class DPSH(HashingObjective):
    name = "dpsh"

    def __init__(self, *, bits: int, train_labels: torch.Tensor, eta: float = 50.0) -> None:
        super().__init__(bits=bits, train_labels=train_labels)
        self.eta = float(eta)

    def hparams(self):
        return {"eta": self.eta}

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        s = similarity(y, self.Y)
        theta = 0.5 * (u @ self.U.t())
        likelihood = (F.softplus(theta) - s * theta).mean()
        quantisation = (sign_codes(u.detach()) - u).pow(2).sum() / (self.num_train * u.shape[0])
        return likelihood + self.eta * quantisation
