"""Load a dataset's splits by name, the way every command and the benchmark runner do it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from .base import DatasetSplits
from .benchmarks import BENCHMARKS
from .registry import create_dataset, list_datasets


def needs_data_dir(dataset: str) -> bool:
    """Whether ``dataset`` is read from a user's directory (the real benchmarks) or built in."""
    return dataset in BENCHMARKS


def check_dataset(dataset: str, data_dir: Optional[str] = None) -> None:
    """Raise ``ValueError`` for an unknown dataset or a benchmark without ``data_dir``; loads nothing."""
    if dataset not in list_datasets():
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(list_datasets())}")
    if needs_data_dir(dataset) and not data_dir:
        raise ValueError(
            f"dataset {dataset!r} is read from disk; pass --data-dir DIR (the folder holding its list "
            "files: database.txt/train.txt/test.txt or *_img.txt + *_label.txt)"
        )


def load_splits(dataset: str, seed: int = 0, data_dir: Optional[str] = None) -> DatasetSplits:
    """The train / query / database splits of ``dataset`` drawn with ``seed``.

    Built-in datasets ignore ``data_dir``; the benchmarks (FLICKR-25K, NUS-WIDE, MS-COCO, CIFAR-10,
    ImageNet-100) read their list files from it. For a benchmark the directory may be the dataset's
    own folder or a parent holding one folder per dataset name (``DIR/flickr25k/...``).
    """
    check_dataset(dataset, data_dir)
    kwargs: Dict[str, Any] = {"seed": int(seed)}
    if needs_data_dir(dataset):
        own = Path(data_dir) / dataset
        kwargs["root"] = str(own) if own.is_dir() else data_dir
    return create_dataset(dataset, **kwargs)


__all__ = ["check_dataset", "load_splits", "needs_data_dir"]
