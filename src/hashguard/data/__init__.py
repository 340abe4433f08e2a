"""Datasets: splits (train / query / database), built-in datasets, list-file readers."""

from .base import DatasetSplits, ImageDataset, SubsetImageDataset, TensorImageDataset
from .registry import create_dataset, list_datasets, register_dataset
from . import benchmarks, mnist, mnist_mosaic, synthetic  # noqa: F401  (register the datasets)
from .loading import check_dataset, load_splits, needs_data_dir
from .image_list import ImageListDataset, ImageReadError
from .list_files import DataRootNotFoundError, ImageNotFoundError, ListFileError, ListFileNotFoundError

__all__ = [
    "DataRootNotFoundError",
    "DatasetSplits",
    "ImageListDataset",
    "ImageNotFoundError",
    "ImageReadError",
    "ListFileError",
    "ListFileNotFoundError",
    "ImageDataset",
    "SubsetImageDataset",
    "TensorImageDataset",
    "check_dataset",
    "create_dataset",
    "load_splits",
    "needs_data_dir",
    "list_datasets",
    "register_dataset",
]
