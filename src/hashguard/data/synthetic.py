"""``synthetic``: a tiny procedurally generated multi-label dataset for unit tests (no dependency).

Each class owns a random smooth colour pattern; an image is the mean of the patterns of its 1-2
classes plus pixel noise, so a small network separates the classes in seconds on a CPU. Train is
a subset of the database, validation a disjoint part of it, as in the built-in protocol.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DatasetSplits
from .registry import register_dataset


def _make(n: int, patterns: torch.Tensor, gen: torch.Generator, noise: float):
    c = patterns.shape[0]
    labels = torch.zeros(n, c)
    first = torch.randint(0, c, (n,), generator=gen)
    labels[torch.arange(n), first] = 1.0
    second = torch.randint(0, c, (n,), generator=gen)
    two = torch.rand(n, generator=gen) < 0.5
    labels[torch.arange(n)[two], second[two]] = 1.0
    mix = labels @ patterns.flatten(1) / labels.sum(1, keepdim=True)
    images = mix.view(n, *patterns.shape[1:]) + noise * torch.randn(n, *patterns.shape[1:], generator=gen)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels


@register_dataset("synthetic")
def synthetic(
    *,
    seed: int = 0,
    num_classes: int = 4,
    image_size: int = 16,
    n_query: int = 40,
    n_database: int = 240,
    n_train: int = 120,
    n_validation: int = 40,
    noise: float = 0.08,
) -> DatasetSplits:
    """Tiny multi-label dataset: 40 queries, 240 database, 120 train, 16x16 RGB, 4 classes."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=gen)
    patterns = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=True)
    q_images, q_labels = _make(n_query, patterns, gen, noise)
    db_images, db_labels = _make(n_database, patterns, gen, noise)
    return DatasetSplits.inside_database(
        "synthetic",
        (q_images, q_labels),
        (db_images, db_labels),
        n_train=n_train,
        n_validation=n_validation,
        generator=gen,
        num_classes=num_classes,
        multi_label=True,
        default_topk=None,
        image_size=(image_size, image_size),
        info={"seed": seed},
    )
