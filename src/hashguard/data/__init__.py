"""Datasets: splits (train / query / database), built-in datasets, list-file readers, your own data.

Bring your own dataset either as list files on disk (``from_lists(DIR)``, the same as
``create_dataset("lists", root=DIR)``; ``--dataset lists --data-dir DIR``) or as arrays in memory
(:func:`from_tensors`).
"""

from . import benchmarks, list_dataset, mnist, mnist_mosaic, synthetic  # noqa: F401  (register the datasets)
from .base import DatasetSplits, ImageDataset, SubsetImageDataset, TensorImageDataset
from .from_tensors import from_tensors
from .image_list import ImageListDataset, ImageReadError
from .list_dataset import load_list_dataset
from .list_files import DataRootNotFoundError, ImageNotFoundError, ListFileError, ListFileNotFoundError
from .loading import check_dataset, load_splits, needs_data_dir
from .registry import create_dataset, list_datasets, register_dataset
from .transforms import ImageSizeError

from_lists = load_list_dataset  # the splits of your own list files in one call: from_lists("data/mine")

__all__ = [
    "DataRootNotFoundError",
    "DatasetSplits",
    "ImageListDataset",
    "ImageNotFoundError",
    "ImageReadError",
    "ImageSizeError",
    "ListFileError",
    "ListFileNotFoundError",
    "ImageDataset",
    "SubsetImageDataset",
    "TensorImageDataset",
    "check_dataset",
    "create_dataset",
    "from_lists",
    "from_tensors",
    "load_list_dataset",
    "load_splits",
    "needs_data_dir",
    "list_datasets",
    "register_dataset",
]
