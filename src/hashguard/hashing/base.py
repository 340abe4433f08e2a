"""Base class of the hashing objectives (the L_ori term of adversarial training, too).

An objective sees a batch of continuous codes ``u = tanh(alpha * logits)``, their multi-hot labels
``y`` and their indices ``idx`` in the training split. Pairwise objectives (DPH, DPSH, HashNet)
compare the batch with the whole training set through a buffer ``U`` of the latest continuous
code of every training item (updated without gradient, as in the public code, docs/methods.md#objectives);
``Y`` holds the training labels. ``alpha(step)`` is the tanh scale the trainer should use at a
training step (HashNet's continuation; 1 for the others). ``end_epoch()`` runs after every
training epoch (DSDH's discrete W and B steps; nothing for the others).
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch
from torch import nn

from .._registry import Registry
from .._validation import check_labels

OBJECTIVES = Registry("hashing objective")
register_hashing = OBJECTIVES.register


def list_hashing() -> List[str]:
    return OBJECTIVES.names()


def create_hashing(name: str, *, bits: int, train_labels: torch.Tensor, **params: Any) -> HashingObjective:
    """Build the objective ``name`` for ``bits``-bit codes of a training set with ``train_labels``."""
    return OBJECTIVES.create(name, bits=bits, train_labels=train_labels, **params)


def similarity(y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
    """S_ij = 1 when the label rows share at least one label, else 0 (float)."""
    return (y1 @ y2.t() > 0).to(y1.dtype)


class HashingObjective(nn.Module):
    """Common state of a hashing objective: code length, training labels and the U buffer."""

    name = "base"
    Y: torch.Tensor  # buffers (register_buffer)
    U: torch.Tensor

    def __init__(self, *, bits: int, train_labels: torch.Tensor) -> None:
        super().__init__()
        if train_labels.dim() != 2:
            raise ValueError(f"train_labels must be an (N, C) multi-hot matrix, got shape {tuple(train_labels.shape)}")
        self.bits = int(bits)
        self.register_buffer("Y", train_labels.detach().float().clone())
        self.register_buffer("U", torch.zeros(train_labels.shape[0], self.bits))

    @property
    def num_train(self) -> int:
        return int(self.Y.shape[0])

    def hparams(self) -> Dict[str, Any]:
        """The objective's hyper-parameters, recorded in checkpoint configs."""
        return {}

    def alpha(self, step: int) -> float:
        return 1.0

    def end_epoch(self) -> None:
        """Called by the trainer and the defenses after every epoch (DSDH updates its discrete codes)."""

    def update_buffer(self, u: torch.Tensor, idx: torch.Tensor) -> None:
        self.U[idx] = u.detach().to(self.U.dtype)

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if u.dim() != 2 or u.shape[1] != self.bits:
            raise ValueError(f"codes must have shape (N, {self.bits}), got {tuple(u.shape)}")
        check_labels(y, self.Y.shape[1])
        idx = torch.as_tensor(idx)
        if not (y.shape[0] == u.shape[0] == idx.numel()):
            raise ValueError(
                f"codes, labels and indices must have one row per item, got {u.shape[0]}, {y.shape[0]} and {idx.numel()}"
            )
        return self.loss(u, y.to(u.dtype), idx.to(u.device))
