"""Dataset containers shared by the built-in and the real benchmark datasets.

Every dataset yields ``(image, label, index)``: a float32 CHW image in [0, 1] (normalisation lives
inside ``HashModel``, never here), a float32 multi-hot label vector and the item's index in its
split (the pairwise hashing objectives keep a buffer of training codes indexed by it). The label
matrix of a whole split is available as ``dataset.labels`` without loading any image.

Every dataset also reads several images at once with ``dataset.batch(indices)`` (a slice, a
sequence of ints, a numpy array or a LongTensor): a float32 NCHW batch in [0, 1], the same values
as stacking ``load_image``, that the caller may modify freely. In-memory datasets slice their
tensor; datasets read from disk decode image by image (``data.batching.iterate_batches`` adds
``DataLoader`` workers for those).

Example::

    x = splits.query.batch(slice(0, 100))          # (100, 3, H, W) float32, any dataset
    x = splits.database.subset([4, 2]).batch([1])  # the database's image 2, as a batch of one
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .._validation import unit_range_problem

Indices = Union[slice, Sequence[int], np.ndarray, torch.Tensor]


def as_index(indices: Indices, n: int) -> torch.Tensor:
    """``indices`` into a dataset of ``n`` items as a 1-D LongTensor of positions in ``[0, n)``.

    Accepts a slice, a sequence of ints, an integer (or boolean mask) numpy array or tensor.
    Negative positions count from the end, as in Python. Raises ``IndexError`` for a position out
    of range and ``ValueError`` for a single integer or another type.
    """
    if isinstance(indices, slice):
        positions = range(*indices.indices(n))
        if len(positions) == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.arange(positions.start, positions.stop, positions.step, dtype=torch.long)
    if isinstance(indices, (numbers.Integral, np.integer)) or (
        isinstance(indices, (torch.Tensor, np.ndarray)) and indices.ndim == 0
    ):
        raise ValueError(
            f"batch() takes several indices (a slice, a sequence, a numpy array or a LongTensor), got the "
            f"single index {indices!r}; use [{indices!r}] for a batch of one, or load_image(i) for one image"
        )
    if isinstance(indices, torch.Tensor):
        idx = indices.detach().cpu()
    else:
        try:
            idx = torch.as_tensor(np.asarray(indices))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"indices must be a slice, a sequence of ints, a numpy array or a LongTensor, got "
                f"{type(indices).__name__}: {exc}"
            ) from None
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"a boolean mask must have one entry per item ({n}), got shape {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dim() != 1:
        raise ValueError(
            f"indices must be a 1-D sequence of integers, got {idx.dtype} with shape {tuple(idx.shape)}"
        )
    idx = idx.to(torch.long)
    low, high = int(idx.min()), int(idx.max())
    if low < -n or high >= n:
        bad = low if low < -n else high
        raise IndexError(f"index {bad} is out of range for a dataset of {n} items")
    return torch.where(idx < 0, idx + n, idx) if low < 0 else idx


def _forward_slice(indices: Indices) -> bool:
    """Whether ``indices`` is a slice a tensor accepts as it is (a positive step; a view, no copy)."""
    return isinstance(indices, slice) and (indices.step is None or indices.step > 0)


class ImageDataset(Dataset):
    """Base class: subclasses set ``self.labels`` (N, C) float32 and implement ``load_image``.

    ``batch(indices)`` stacks ``load_image``; in-memory subclasses override it with a slice and set
    ``in_memory = True`` (then a ``DataLoader`` would only add overhead).
    """

    labels: torch.Tensor
    in_memory: bool = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def load_image(self, index: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
        return self.load_image(index), self.labels[index], index

    def batch(self, indices: Indices) -> torch.Tensor:
        """The images at ``indices`` as one float32 NCHW batch in [0, 1] (see :func:`as_index`).

        The batch is new memory: modifying it never changes the dataset.
        """
        idx = as_index(indices, len(self))
        if idx.numel() == 0:
            shape = tuple(self.load_image(0).shape) if len(self) else (3, 0, 0)
            return torch.zeros((0,) + shape, dtype=torch.float32)
        return torch.stack([self.load_image(int(i)) for i in idx])

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageDataset:
        return SubsetImageDataset(self, torch.as_tensor(indices, dtype=torch.long))


class TensorImageDataset(ImageDataset):
    """Images held in memory as NCHW tensors: uint8 in [0, 255] or float32 in [0, 1].

    uint8 images (4x smaller than float) are divided by 255 on read; float images (any floating
    dtype, stored as float32, never quantised) are returned as they are, copied so that a caller
    modifying a batch never changes the stored images.
    """

    in_memory = True

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or not (
            images.dtype == torch.uint8 or images.is_floating_point()
        ):
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(
                f"images must be a uint8 NCHW tensor (0..255) or a float NCHW tensor in [0, 1], got {got}; "
                "hashguard.data.from_tensors converts and checks numpy arrays and other layouts"
            )
        if labels.dim() != 2 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be an (N, C) matrix with N = {images.shape[0]} rows, got {tuple(labels.shape)}"
            )
        if images.is_floating_point():
            images = images.to(torch.float32)
            problem = unit_range_problem(images)
            if problem:
                raise ValueError(
                    f"float images must lie in [0, 1], but they {problem}; divide 0..255 pixels by 255 "
                    "and do not normalise (HashModel normalises inside)"
                )
        self.images = images
        self.labels = labels.to(torch.float32)

    def load_image(self, index: int) -> torch.Tensor:
        if self.images.dtype == torch.uint8:
            return self.images[index].to(torch.float32).div_(255.0)
        return self.images[index].clone()

    def batch(self, indices: Indices) -> torch.Tensor:
        """Several images at once as float32 in [0, 1] (faster than a DataLoader in memory)."""
        if not _forward_slice(indices):
            indices = as_index(indices, len(self))
        if self.images.dtype == torch.uint8:
            return self.images[indices].to(torch.float32).div_(255.0)
        out = self.images[indices]
        if out.numel() and out.untyped_storage().data_ptr() == self.images.untyped_storage().data_ptr():
            out = out.clone()  # a slice is a view: never hand out the stored images
        return out


class SubsetImageDataset(ImageDataset):
    """A view on some items of another dataset, re-indexed from 0."""

    def __init__(self, parent: ImageDataset, indices: torch.Tensor) -> None:
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(parent)):
            raise ValueError(f"subset indices must lie in [0, {len(parent)})")
        self.parent = parent
        self.indices = indices
        self.labels = parent.labels[indices]

    @property
    def in_memory(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.parent, "in_memory", False))

    def load_image(self, index: int) -> torch.Tensor:
        return self.parent.load_image(int(self.indices[index]))

    def batch(self, indices: Indices) -> torch.Tensor:
        """The parent's batch at the mapped indices (a slice of memory when the parent is in memory)."""
        if not _forward_slice(indices):
            indices = as_index(indices, len(self))
        return self.parent.batch(self.indices[indices])


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
    ) -> DatasetSplits:
        """In-memory splits whose train and validation sets are disjoint random parts of the database.

        ``query`` and ``database`` are ``(images, labels)`` pairs (uint8, or float in [0, 1], NCHW
        images; see :class:`TensorImageDataset`); the FLICKR / NUS-WIDE protocol, where the
        training images are database images.
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
