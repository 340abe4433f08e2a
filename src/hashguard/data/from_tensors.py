"""``from_tensors``: bring your own dataset as in-memory arrays (torch tensors or numpy arrays).

Each split is an ``(images, labels)`` pair:

- ``images``: NCHW, either uint8 in [0, 255] (kept as uint8, divided by 255 on read) or floating
  point in [0, 1] (kept as float32, never quantised). No mean/std normalisation: ``HashModel``
  normalises inside.
- ``labels``: an (N, C) multi-hot matrix of 0/1 (any numeric or bool dtype), or an (N,) vector of
  integer class indices, one-hot encoded with C = the largest index over all splits + 1 (or the
  width of the multi-hot splits when splits mix both forms).

Every mistake the field commonly makes with such arrays (NHWC layout, 0..255 floats, normalised
images, labels that are not 0/1, splits of different sizes or widths) raises a ``ValueError`` that
says what was found and how to fix it. uint8 and float32 inputs on the CPU are shared, not copied:
do not modify them afterwards.

Example::

    from hashguard.data import from_tensors
    splits = from_tensors(
        train=(x_train, y_train),            # (5000, 3, 32, 32) uint8, (5000,) int64 classes
        query=(x_query, y_query),
        database=(x_db, y_db),
    )
    splits.summary()    # 'tensors: 10 classes, single-label, train 5000, query 1000, database 54000'
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from .._validation import unit_range_problem
from .base import DatasetSplits, TensorImageDataset

Pair = Tuple[Any, Any]

_LAYOUT_FIX = "use x.permute(0, 3, 1, 2) for a torch tensor, np.transpose(x, (0, 3, 1, 2)) for a numpy array"


def _as_tensor(split: str, what: str, value: Any) -> torch.Tensor:
    """A CPU tensor view of a torch tensor or numpy array (``ValueError`` for anything else)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(
                f"{split} {what} have numpy dtype {value.dtype}; expected numbers (uint8 / float images, "
                "0/1 or integer labels)"
            )
        if value.dtype.kind == "u" and value.dtype != np.uint8:
            value = value.astype(np.int64)  # torch has no uint16 / uint32 arithmetic everywhere
        return torch.from_numpy(np.ascontiguousarray(value))
    if what == "labels" and isinstance(value, (list, tuple)):
        return _as_tensor(split, what, np.asarray(value))
    raise ValueError(f"{split} {what} must be a torch tensor or a numpy array, got {type(value).__name__}")


def _check_images(split: str, x: Any) -> torch.Tensor:
    """``x`` as uint8 or float32 NCHW, checked."""
    images = _as_tensor(split, "images", x)
    shape = tuple(images.shape)
    if images.dim() != 4:
        hint = (
            "; a batch of grey (N, H, W) images needs a channel axis: x[:, None]"
            if images.dim() == 3
            else ""
        )
        raise ValueError(f"{split} images must be a 4-D NCHW batch (N, C, H, W), got shape {shape}{hint}")
    if shape[-1] in (1, 3) and shape[1] not in (1, 3):
        raise ValueError(
            f"{split} images of shape {shape} look like NHWC (channels last); hashguard expects NCHW "
            f"(N, C, H, W): {_LAYOUT_FIX}"
        )
    if min(shape[1:]) == 0:
        raise ValueError(f"{split} images of shape {shape} have no pixels; expected (N, C, H, W) with C, H, W > 0")
    if images.dtype == torch.uint8:
        return images.contiguous()
    if not images.is_floating_point():
        raise ValueError(
            f"{split} images have dtype {images.dtype}; images must be uint8 in [0, 255] or floating point "
            "in [0, 1]: convert 0..255 pixels with x.to(torch.uint8) (numpy: x.astype(np.uint8)), or "
            "pass x.float() / 255"
        )
    images = images.to(torch.float32).contiguous()
    problem = unit_range_problem(images)
    if problem:
        raise ValueError(
            f"{split} images must be in [0, 1], but they {problem}: divide 0..255 pixels by 255, and do not "
            "normalise with a mean and std (HashModel normalises inside; attacks work in pixel units)"
        )
    return images


def _check_labels(split: str, y: Any) -> Tuple[torch.Tensor, bool]:
    """``(labels, is_index)``: an (N,) int64 class-index vector or an (N, C) float32 0/1 matrix."""
    labels = _as_tensor(split, "labels", y)
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(
                f"{split} labels of shape {tuple(labels.shape)} must be integer class indices, got dtype "
                f"{labels.dtype}; convert with y.long() (numpy: y.astype(np.int64)), or pass an (N, C) "
                "0/1 multi-hot matrix"
            )
        labels = labels.to(torch.int64)
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError(
                f"{split} class indices must be >= 0, found {int(labels.min())}; classes are numbered 0 .. C-1"
            )
        return labels, True
    if labels.dim() != 2:
        raise ValueError(
            f"{split} labels must be an (N, C) 0/1 multi-hot matrix or an (N,) vector of class indices, "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.shape[1] == 0:
        raise ValueError(f"{split} labels of shape {tuple(labels.shape)} have no class column")
    if labels.is_complex():
        raise ValueError(f"{split} labels have complex dtype {labels.dtype}; expected 0/1 values")
    binary = (labels == 0) | (labels == 1)
    if not bool(binary.all()):
        row, column = (int(v) for v in (~binary).nonzero()[0])
        value = labels[row, column].item()
        if labels.shape[1] == 1:
            fix = "this looks like class indices of shape (N, 1): pass y.flatten() (an (N,) vector)"
        else:
            fix = (
                "labels must be multi-hot rows of 0/1 (one column per class, one-hot for single-label "
                "data), or an (N,) vector of class indices"
            )
        raise ValueError(f"{split} labels must be 0 or 1, found {value!r} at row {row}, column {column}; {fix}")
    return labels.to(torch.float32), False


def from_tensors(
    train: Pair,
    query: Pair,
    database: Pair,
    *,
    validation: Optional[Pair] = None,
    name: str = "tensors",
    default_topk: Optional[int] = None,
) -> DatasetSplits:
    """Splits of a dataset held in memory: each split an ``(images, labels)`` pair.

    Args:
        train: what the hashing model (and, by default, the attacker's knowledge) sees; at least 2 items.
        query: the images attacked and evaluated.
        database: the images retrieval ranks.
        validation: optional held-out queries for model monitoring, ranked against ``train``.
        name: the dataset name in records and reports.
        default_topk: the top-k of evaluation (None: the whole database).

    Images: torch tensors or numpy arrays, NCHW, uint8 in [0, 255] or floating in [0, 1]; every
    split must have the same channel count and size. Labels: (N, C) 0/1 multi-hot (any numeric or
    bool dtype; every split the same C) or (N,) integer class indices (one-hot encoded with C = the
    largest index over all splits + 1, so a class present in no split is not counted: pass one-hot
    rows to fix C).

    Returns:
        :class:`DatasetSplits` of :class:`TensorImageDataset`; ``multi_label`` is True when any row
        of any split has more than one label; ``image_size`` is ``(H, W)``.

    Raises:
        ValueError: naming the split, what was found and the fix (wrong rank, NHWC layout, values
        outside [0, 1] or NaN, images and labels of different lengths, labels not 0/1, widths,
        channel counts or sizes differing across splits, fewer than 2 training items).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if default_topk is not None and (
        isinstance(default_topk, bool) or not isinstance(default_topk, numbers.Integral) or default_topk <= 0
    ):
        raise ValueError(f"default_topk must be None (whole database) or a positive integer, got {default_topk!r}")
    given = {"train": train, "query": query, "database": database}
    if validation is not None:
        given["validation"] = validation

    images: Dict[str, torch.Tensor] = {}
    raw: Dict[str, Tuple[torch.Tensor, bool]] = {}
    for split, pair in given.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{split} must be an (images, labels) pair, got {type(pair).__name__}")
        images[split] = _check_images(split, pair[0])
        raw[split] = _check_labels(split, pair[1])
        n_images, n_labels = images[split].shape[0], raw[split][0].shape[0]
        if n_images != n_labels:
            raise ValueError(
                f"{split} has {n_images} images but {n_labels} labels; they must have one label row per image"
            )
        least = 2 if split == "train" else 1
        if n_images < least:
            raise ValueError(
                f"{split} holds {n_images} item(s); it needs at least {least}"
                + (" (batch norm and the pairwise hashing objectives need two)" if split == "train" else "")
            )

    first = "train"
    for split in given:
        if images[split].shape[1:] == images[first].shape[1:]:
            continue
        (c0, h0, w0), (c, h, w) = tuple(images[first].shape[1:]), tuple(images[split].shape[1:])
        if c != c0:
            what = f"{c0} channels but {split} images have {c}"
        else:
            what = f"size {h0}x{w0} (height x width) but {split} images are {h}x{w}"
        raise ValueError(
            f"{first} images have {what}; every split must have the same channel count and size: resize or "
            "convert the images before calling from_tensors"
        )

    widths = {split: int(y.shape[1]) for split, (y, is_index) in raw.items() if not is_index}
    if len(set(widths.values())) > 1:
        described = ", ".join(f"{split} {width}" for split, width in widths.items())
        raise ValueError(
            f"label matrices have different widths across splits ({described}); every split needs one "
            "column per class of the same class list"
        )
    indexed = {split: y for split, (y, is_index) in raw.items() if is_index}
    top = max(int(y.max()) for y in indexed.values()) + 1 if indexed else 0
    if widths:
        num_classes = next(iter(widths.values()))
        if top > num_classes:
            split = next(s for s, y in indexed.items() if int(y.max()) >= num_classes)
            raise ValueError(
                f"{split} class index {int(indexed[split].max())} is out of range for the {num_classes} "
                "classes of the multi-hot splits; use the same class list in every split"
            )
    else:
        num_classes = top
    labels: Dict[str, torch.Tensor] = {}
    for split, (y, is_index) in raw.items():
        labels[split] = torch.nn.functional.one_hot(y, num_classes).to(torch.float32) if is_index else y

    datasets = {split: TensorImageDataset(images[split], labels[split]) for split in given}
    multi_label = any(bool((y.sum(1) > 1).any()) for y in labels.values())
    _, height, width = images["train"].shape[1:]
    info = {
        "source": "tensors",
        "num_classes": num_classes,
        "dtype": {split: str(images[split].dtype).replace("torch.", "") for split in given},
        "label_format": {split: "class indices" if raw[split][1] else "multi-hot" for split in given},
        "all_zero_labels": {split: int((labels[split].sum(1) == 0).sum()) for split in given},
    }
    return DatasetSplits(
        name=name,
        train=datasets["train"],
        query=datasets["query"],
        database=datasets["database"],
        validation=datasets.get("validation"),
        num_classes=num_classes,
        multi_label=multi_label,
        default_topk=None if default_topk is None else int(default_topk),
        image_size=(int(height), int(width)),
        info=info,
    )


__all__ = ["from_tensors"]
