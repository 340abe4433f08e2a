"""Reading images of an ``ImageDataset`` in batches: one helper for training, attacks and defenses.

Every dataset reads a batch with ``dataset.batch(indices)``: in-memory datasets
(``TensorImageDataset`` and subsets of it) slice their tensor; datasets read from disk decode item
by item, or through a ``DataLoader`` with decoding workers when ``num_workers > 0``, in the same
order.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, List, Tuple

import torch
from torch.utils.data import DataLoader

from .base import ImageDataset


def load_images(dataset: Any, idx: torch.Tensor) -> torch.Tensor:
    """The images at ``idx`` as one float batch in [0, 1] (``dataset.batch``, or stacked items)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    if hasattr(dataset, "batch"):
        return dataset.batch(idx)
    return torch.stack([dataset.load_image(int(i)) for i in idx])  # a duck-typed dataset


def _in_memory(dataset: Any) -> bool:
    """Whether slicing beats a ``DataLoader``: ``in_memory``, or (duck-typed) a ``batch`` method."""
    if isinstance(dataset, ImageDataset):
        return bool(dataset.in_memory)
    return bool(getattr(dataset, "in_memory", hasattr(dataset, "batch")))


def iterate_batches(dataset: Any, order: torch.Tensor, batch_size: int,
                    num_workers: int = 0) -> Iterator[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches ``(images, labels, indices)`` of ``dataset`` in the given ``order``.

    A trailing batch of one item joins the batch before it (batch norm and pairwise terms need at
    least two items). With ``num_workers > 0`` a dataset read from disk (``in_memory`` False) is
    decoded by that many ``DataLoader`` worker processes; in-memory datasets are always sliced.
    """
    return iterate_chunks(dataset, split_order(order, batch_size), num_workers)


def split_order(order: torch.Tensor, batch_size: int) -> List[torch.Tensor]:
    """``order`` cut into batches of ``batch_size`` indices, a trailing batch of one joined to the
    one before it: the batches :func:`iterate_batches` yields."""
    chunks = list(torch.as_tensor(order).split(batch_size))
    if len(chunks) > 1 and chunks[-1].numel() == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def iterate_chunks(dataset: Any, chunks: List[torch.Tensor],
                   num_workers: int = 0) -> Iterator[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches ``(images, labels, indices)`` of ``dataset``, one per index tensor of ``chunks``
    (each rank's slices of the global batches under torchrun, :mod:`hashguard.data_parallel`)."""
    if num_workers == 0 or _in_memory(dataset):
        for idx in chunks:
            yield load_images(dataset, idx), dataset.labels[idx], idx
        return
    loader = DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks], num_workers=num_workers)
    yield from loader


def count_batches(n: int, batch_size: int) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` items."""
    count = math.ceil(n / batch_size)
    return count - 1 if count > 1 and n % batch_size == 1 else count
