"""Reading images of an ``ImageDataset`` in batches: one helper for training, attacks and defenses.

In-memory datasets (``TensorImageDataset``) are sliced directly; datasets read from disk load item
by item, or through a ``DataLoader`` with decoding workers, in the same order.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Tuple

import torch
from torch.utils.data import DataLoader

from .base import TensorImageDataset


def load_images(dataset: Any, idx: torch.Tensor) -> torch.Tensor:
    """The images at ``idx`` as one float batch in [0, 1]."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    if isinstance(dataset, TensorImageDataset) or hasattr(dataset, "batch"):
        return dataset.batch(idx)
    return torch.stack([dataset.load_image(int(i)) for i in idx])


def iterate_batches(dataset: Any, order: torch.Tensor, batch_size: int,
                    num_workers: int = 0) -> Iterator[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches ``(images, labels, indices)`` of ``dataset`` in the given ``order``.

    A trailing batch of one item joins the batch before it (batch norm and pairwise terms need at
    least two items).
    """
    chunks = list(torch.as_tensor(order).split(batch_size))
    if len(chunks) > 1 and chunks[-1].numel() == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    if isinstance(dataset, TensorImageDataset) or hasattr(dataset, "batch") or num_workers == 0:
        for idx in chunks:
            yield load_images(dataset, idx), dataset.labels[idx], idx
        return
    loader = DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks], num_workers=num_workers)
    yield from loader


def count_batches(n: int, batch_size: int) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` items."""
    count = math.ceil(n / batch_size)
    return count - 1 if count > 1 and n % batch_size == 1 else count
