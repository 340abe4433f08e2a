"""Load a dataset's splits by name, the way every command and the benchmark runner do it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .base import DatasetSplits
from .benchmarks import BENCHMARKS
from .list_dataset import NAME as LISTS
from .list_files import holds_list_files
from .registry import create_dataset, list_datasets
from .transforms import check_pixels


def needs_data_dir(dataset: str) -> bool:
    """Whether ``dataset`` is read from a user's directory (the benchmarks, ``lists``) or built in."""
    key = str(dataset).lower()
    return key in BENCHMARKS or key == LISTS


def _builtin_size(dataset: str) -> Optional[Tuple[int, int]]:
    """The fixed ``(height, width)`` of a built-in dataset, or None when not known without building it."""
    from .mnist_mosaic import SIZE

    return {"mnist-mosaic": (SIZE, SIZE), "mnist": (28, 28), "synthetic": (16, 16)}.get(str(dataset).lower())


def check_dataset(
    dataset: str,
    data_dir: Optional[str] = None,
    *,
    image_size: Optional[int] = None,
    resize: Optional[int] = None,
) -> None:
    """Raise ``ValueError`` for an unknown dataset, a disk dataset without ``data_dir``, or an image
    size for a built-in dataset (or one that is not a positive integer); loads nothing."""
    if dataset not in list_datasets():
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(list_datasets())}")
    if needs_data_dir(dataset) and not data_dir:
        if str(dataset).lower() == LISTS:
            raise ValueError(
                f"dataset {dataset!r} is read from disk; pass --data-dir DIR holding train/test/database "
                "lists (train.txt, test.txt, database.txt with 'path 0 1 0 ...' lines, or *_img.txt + "
                "*_label.txt pairs) and the images they name"
            )
        raise ValueError(
            f"dataset {dataset!r} is read from disk; pass --data-dir DIR (the folder holding its list "
            "files: database.txt/train.txt/test.txt or *_img.txt + *_label.txt)"
        )
    for name, value in (("image_size", image_size), ("resize", resize)):
        if value is not None:
            check_pixels(name, value)
    if not needs_data_dir(dataset) and (image_size is not None or resize is not None):
        options = " / ".join(
            option for option, value in (("--image-size", image_size), ("--resize", resize)) if value is not None
        )
        size = _builtin_size(dataset)
        fixed = f"a fixed size {size[0]}x{size[1]}" if size else "a fixed image size"
        raise ValueError(
            f"built-in dataset {dataset!r} has {fixed}; {options} applies to datasets read from disk "
            f"(the benchmarks {', '.join(BENCHMARKS)} and '{LISTS}'): drop it, or use one of those"
        )


def load_splits(
    dataset: str,
    seed: int = 0,
    data_dir: Optional[str] = None,
    *,
    image_size: Optional[int] = None,
    resize: Optional[int] = None,
) -> DatasetSplits:
    """The train / query / database splits of ``dataset`` drawn with ``seed``.

    Built-in datasets ignore ``data_dir`` and have a fixed image size (``image_size`` / ``resize``
    raise ``ValueError`` for them). The benchmarks (FLICKR-25K, NUS-WIDE, MS-COCO, CIFAR-10,
    ImageNet-100) and ``lists`` (a dataset of one's own) read their list files from ``data_dir``.
    For a benchmark the directory may be the dataset's own folder or a parent holding one folder
    per dataset name (``DIR/flickr25k/...``); for ``lists`` it is the dataset folder, or a parent
    holding it as ``DIR/lists`` (used when ``DIR`` itself holds no list file).

    ``image_size`` / ``resize`` go to the datasets read from disk: a benchmark defaults to the
    papers' 224 / 256 (only ``image_size`` given: ``resize = round(image_size * 256 / 224)``);
    ``lists`` keeps the images' own size by default, and resizes to ``resize`` (default
    ``image_size``) then centre-crops ``image_size`` when it is given.
    """
    check_dataset(dataset, data_dir, image_size=image_size, resize=resize)
    kwargs: Dict[str, Any] = {"seed": int(seed)}
    if needs_data_dir(dataset):
        assert data_dir is not None  # check_dataset raised otherwise
        if str(dataset).lower() == LISTS:
            own = Path(data_dir) / LISTS
            use_own = own.is_dir() and not holds_list_files(data_dir)
        else:
            own = Path(data_dir) / dataset
            use_own = own.is_dir()
        kwargs["root"] = str(own) if use_own else data_dir
        kwargs["image_size"] = image_size
        kwargs["resize"] = resize
    return create_dataset(dataset, **kwargs)


__all__ = ["check_dataset", "load_splits", "needs_data_dir"]
