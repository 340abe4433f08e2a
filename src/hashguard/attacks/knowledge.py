"""What the attacker knows, and the retrieval system an early stop may query.

``Knowledge`` is the attacker's reference set: the sign codes and labels of a set of images,
by default the training split encoded by the attacked (or surrogate) model. Every code builder
(anchor, centre, mainstay, pharos, prototype) and SDHA's positives come from it.

``Database`` is the victim's retrieval database (codes, labels, top-k). Only the AP early stop
of the engine (SDHA's "stop once AP = 0 / 1", checked every n iterations) looks at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..models.contract import check_hash_model
from ..models.hash_model import HashModel, encode_dataset


def _check_pair(codes: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if codes.dim() != 2 or labels.dim() != 2 or codes.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{what} needs (N, K) codes and (N, C) labels with the same N, "
            f"got {tuple(codes.shape)} and {tuple(labels.shape)}"
        )
    if codes.numel() and not bool(((codes == 1) | (codes == -1)).all()):
        raise ValueError(f"{what} codes must be ±1 sign codes (use model.encode, not the tanh outputs)")


@dataclass
class Knowledge:
    """The attacker's reference set: ``codes`` (N, K) ±1 and ``labels`` (N, C) multi-hot."""

    codes: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        self.codes = torch.as_tensor(self.codes).float()
        self.labels = torch.as_tensor(self.labels).float()
        _check_pair(self.codes, self.labels, "Knowledge")

    @classmethod
    def from_model(cls, model: HashModel, dataset, *, batch_size: int = 256, progress: bool = False) -> Knowledge:
        """Encode ``dataset`` (an ImageDataset, e.g. ``splits.train``) with ``model``."""
        check_hash_model(model, where="Knowledge.from_model")
        codes = encode_dataset(model, dataset, batch_size=batch_size, progress=progress, desc="encoding reference set")
        return cls(codes, torch.as_tensor(dataset.labels).float())

    def to(self, device: torch.device | str) -> Knowledge:
        return Knowledge(self.codes.to(device), self.labels.to(device))

    @property
    def bits(self) -> int:
        return int(self.codes.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])


@dataclass
class Database:
    """The victim's database for AP early stops: codes (N, K) ±1, labels (N, C), ``topk``."""

    codes: torch.Tensor
    labels: torch.Tensor
    topk: Optional[int] = None

    def __post_init__(self) -> None:
        self.codes = torch.as_tensor(self.codes).float().cpu()
        self.labels = torch.as_tensor(self.labels).float().cpu()
        _check_pair(self.codes, self.labels, "Database")
