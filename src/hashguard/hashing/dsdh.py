"""DSDH: deep supervised discrete hashing (Li, Sun, He, Tan, NeurIPS 2017, Sec. 3).

The objective couples the network's continuous codes U with discrete codes B in {-1, +1}^{N x K}
and a linear classifier W (K x C) of the labels Y (N x C) on B:

    J = -sum_ij (S_ij theta_ij - log(1 + e^theta_ij)) + mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2,

theta_ij = 1/2 <u_i, u_j>. It is minimised by alternating three steps:

- **network** (B, W fixed): the pairwise likelihood of the batch against the buffer U of the whole
  training set plus the quantisation term eta ||b_i - u_i||^2, both divided by N * batch size (the
  normalisation of hashguard's DPSH, so eta is on DPSH's scale). The classifier term does not
  depend on the network, so the returned loss leaves it out; :meth:`DSDH.discrete_loss` gives it.
- **W**: the ridge solution W = (B^T B + nu/mu I)^{-1} B^T Y.
- **B**, discrete cyclic coordinate descent (DCC): with P = Y W^T + (eta/mu) U, each bit
  column k in turn is set to sign(p_k - B' W' w_k), B' and W' being B without column k and W
  without row k, w_k row k of W: the exact minimiser of mu ||Y - B W||^2 + eta ||B - U||^2 over
  that column with the others fixed (ties, a zero coefficient, go to +1 as ``sign_codes``).

The W and B steps (``dcc_iter`` rounds of one W step and one sweep over all bits) run once at the
start (B = sign(U) first; lazily, at the first loss, when U holds the whole training set) and after
every epoch (:meth:`end_epoch`, called by the trainer and the defenses): the paper alternates the
network, W and B steps, and CgAT's copy of the recipe updates W and B every epoch
(docs/methods.md#objectives); DeepHash-pytorch's ``DSDH.py`` runs them before every batch instead.

Defaults mu = 1, nu = 1, eta = 55, dcc_iter = 10: DeepHash-pytorch's ``DSDH.py`` (copied into
CgAT's ``model/hashing_loss.py``, docs/methods.md#objectives). No DSDH text is in shared/papers, so
the paper's own values are not checked here.
"""

from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.hash_model import sign_codes
from .base import HashingObjective, register_hashing, similarity


def ridge_classifier(B: torch.Tensor, Y: torch.Tensor, ratio: float) -> torch.Tensor:
    """W = argmin ||Y - B W||^2 + ratio ||W||^2 = (B^T B + ratio I)^{-1} B^T Y (DSDH's W step), in float64."""
    b, y = B.double(), Y.double()
    if ratio <= 0:  # plain least squares; B^T B may be singular (repeated bit columns): the minimum-norm W
        return (torch.linalg.pinv(b) @ y).to(B.dtype)
    gram = b.t() @ b + ratio * torch.eye(b.shape[1], dtype=torch.float64, device=b.device)
    return torch.linalg.solve(gram, b.t() @ y).to(B.dtype)


def dcc_sweep(B: torch.Tensor, W: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """One sweep of discrete cyclic coordinate descent over the bit columns of ``B`` (DSDH's B step).

    Minimises ||B W||^2 - 2 tr(P^T B) (equal, for B in {-1, +1}, to ||Y - B W||^2 + (eta/mu) ||B - U||^2
    up to a constant when P = Y W^T + (eta/mu) U) one column at a time; returns a new matrix.
    """
    B = B.clone()
    gram = W @ W.t()  # (K, K): B' W' w_k = B gram[:, k] - B[:, k] gram[k, k]
    for k in range(B.shape[1]):
        others = B @ gram[:, k] - B[:, k] * gram[k, k]
        B[:, k] = sign_codes(P[:, k] - others)
    return B


@register_hashing("dsdh")
class DSDH(HashingObjective):
    B: torch.Tensor  # buffers (register_buffer)
    W: torch.Tensor
    initialised: torch.Tensor

    name = "dsdh"

    def __init__(
        self,
        *,
        bits: int,
        train_labels: torch.Tensor,
        mu: float = 1.0,
        nu: float = 1.0,
        eta: float = 55.0,
        dcc_iter: int = 10,
    ) -> None:
        super().__init__(bits=bits, train_labels=train_labels)
        for key, value, low in (("mu", mu, "> 0"), ("nu", nu, ">= 0"), ("eta", eta, ">= 0")):
            if not (float(value) > 0 if low == "> 0" else float(value) >= 0):
                raise InputError(f"DSDH {key} must be {low}, got {value!r}; pass e.g. {key}=1.0")
        if isinstance(dcc_iter, bool) or int(dcc_iter) != dcc_iter or int(dcc_iter) < 1:
            raise InputError(f"DSDH dcc_iter (rounds of the W and B steps) must be an integer >= 1, got {dcc_iter!r}")
        self.mu, self.nu, self.eta, self.dcc_iter = float(mu), float(nu), float(eta), int(dcc_iter)
        self.register_buffer("B", torch.ones(self.num_train, self.bits))
        self.register_buffer("W", torch.zeros(self.bits, train_labels.shape[1]))
        self.register_buffer("initialised", torch.tensor(False))

    def hparams(self) -> Dict[str, float]:
        return {"mu": self.mu, "nu": self.nu, "eta": self.eta, "dcc_iter": self.dcc_iter}

    @torch.no_grad()
    def discrete_step(self) -> None:
        """``dcc_iter`` rounds of the W step and one DCC sweep over B, from the current B (stops early once B is unchanged)."""
        if not bool(self.initialised):
            self.B.copy_(sign_codes(self.U))
            self.initialised.fill_(True)
        B = self.B
        for _ in range(self.dcc_iter):
            W = ridge_classifier(B, self.Y, self.nu / self.mu)
            P = self.Y @ W.t() + (self.eta / self.mu) * self.U
            new = dcc_sweep(B, W, P)
            converged = torch.equal(new, B)
            B = new
            if converged:
                break
        self.B.copy_(B)
        self.W.copy_(ridge_classifier(B, self.Y, self.nu / self.mu))

    def end_epoch(self) -> None:
        self.discrete_step()

    @torch.no_grad()
    def discrete_loss(self) -> torch.Tensor:
        """mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2: the part of J the W and B steps minimise."""
        return (
            self.mu * (self.Y - self.B @ self.W).pow(2).sum()
            + self.nu * self.W.pow(2).sum()
            + self.eta * (self.B - self.U).pow(2).sum()
        )

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        if not bool(self.initialised):
            self.discrete_step()
        s = similarity(y, self.Y)
        theta = 0.5 * (u @ self.U.t())
        likelihood = (F.softplus(theta) - s * theta).mean()
        quantisation = (self.B[idx].to(u.dtype) - u).pow(2).sum() / (self.num_train * u.shape[0])
        return likelihood + self.eta * quantisation
