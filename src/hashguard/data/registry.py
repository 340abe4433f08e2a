"""Dataset registry: ``register_dataset`` / ``list_datasets`` / ``create_dataset`` (timm style).

A dataset factory takes keyword arguments (``seed``, ``root`` for datasets read from disk, sizes
for the generated ones) and returns a :class:`~hashguard.data.base.DatasetSplits`.
"""

from __future__ import annotations

from typing import Any, List

from .._registry import Registry
from .base import DatasetSplits

DATASETS = Registry("dataset")
register_dataset = DATASETS.register


def list_datasets() -> List[str]:
    return DATASETS.names()


def create_dataset(name: str, **kwargs: Any) -> DatasetSplits:
    return DATASETS.create(name, **kwargs)
