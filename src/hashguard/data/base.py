"""Dataset containers shared by the built-in and the real benchmark datasets.

Every dataset yields ``(image, label, index)``: a float32 CHW image in [0, 1] (normalisation lives
inside ``HashModel``, never here), a float32 multi-hot label vector and the item's index in its
split (the pairwise hashing objectives keep a buffer of training codes indexed by it). The label
matrix of a whole split is available as ``dataset.labels`` without loading any image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """Base class: subclasses set ``self.labels`` (N, C) float32 and implement ``load_image``."""

    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def load_image(self, index: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
        return self.load_image(index), self.labels[index], index

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageDataset":
        return SubsetImageDataset(self, torch.as_tensor(indices, dtype=torch.long))


class TensorImageDataset(ImageDataset):
    """Images held in memory as uint8 NCHW (4x smaller than float), converted per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 NCHW tensor, got {images.dtype} {tuple(images.shape)}")
        if labels.dim() != 2 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be an (N, C) matrix with N = {images.shape[0]} rows, got {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels.to(torch.float32)

    def load_image(self, index: int) -> torch.Tensor:
        return self.images[index].to(torch.float32).div_(255.0)

    def batch(self, indices: torch.Tensor | slice) -> torch.Tensor:
        """Several images at once as float32 in [0, 1] (faster than a DataLoader in memory)."""
        return self.images[indices].to(torch.float32).div_(255.0)


class SubsetImageDataset(ImageDataset):
    """A view on some items of another dataset, re-indexed from 0."""

    def __init__(self, parent: ImageDataset, indices: torch.Tensor) -> None:
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(parent)):
            raise ValueError(f"subset indices must lie in [0, {len(parent)})")
        self.parent = parent
        self.indices = indices
        self.labels = parent.labels[indices]

    def load_image(self, index: int) -> torch.Tensor:
        return self.parent.load_image(int(self.indices[index]))


@dataclass
class DatasetSplits:
    """The three splits of the retrieval protocol plus what evaluation needs to know about them.

    ``train`` is what the hashing model (and, by default, the attacker's knowledge) sees;
    ``query`` is attacked and evaluated; ``database`` is what retrieval ranks. ``validation`` is an
    optional held-out query set for model monitoring (never the query set), ranked against
    ``train``. ``default_topk`` is the paper convention for the dataset (None = whole database).
    """

    name: str
    train: ImageDataset
    query: ImageDataset
    database: ImageDataset
    num_classes: int
    multi_label: bool
    default_topk: Optional[int] = None
    validation: Optional[ImageDataset] = None
    image_size: Optional[Tuple[int, int]] = None
    info: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def inside_database(
        cls,
        name: str,
        query: Tuple[torch.Tensor, torch.Tensor],
        database: Tuple[torch.Tensor, torch.Tensor],
        *,
        n_train: int,
        n_validation: int,
        generator: torch.Generator,
        **fields: Any,
    ) -> "DatasetSplits":
        """In-memory splits whose train and validation sets are disjoint random parts of the database.

        ``query`` and ``database`` are ``(uint8 images, labels)`` pairs; the FLICKR / NUS-WIDE
        protocol, where the training images are database images.
        """
        images, labels = database
        if n_train + n_validation > images.shape[0]:
            raise ValueError(
                f"n_train + n_validation ({n_train} + {n_validation}) must not exceed n_database ({images.shape[0]})"
            )
        order = torch.randperm(images.shape[0], generator=generator)
        train_idx = order[:n_train].sort().values
        validation_idx = order[n_train : n_train + n_validation].sort().values
        return cls(
            name=name,
            train=TensorImageDataset(images[train_idx], labels[train_idx]),
            query=TensorImageDataset(*query),
            database=TensorImageDataset(images, labels),
            validation=TensorImageDataset(images[validation_idx], labels[validation_idx]),
            **fields,
        )

    def summary(self) -> str:
        parts = [f"train {len(self.train)}", f"query {len(self.query)}", f"database {len(self.database)}"]
        if self.validation is not None:
            parts.append(f"validation {len(self.validation)}")
        kind = "multi-label" if self.multi_label else "single-label"
        return f"{self.name}: {self.num_classes} classes, {kind}, " + ", ".join(parts)
