"""``lists``: bring your own dataset as list files, in either format the field uses.

The directory ``root`` (``--data-dir``) holds the images and one list per split, exactly as for the
named benchmarks (:mod:`hashguard.data.list_files`): ``train.txt`` / ``test.txt`` / ``database.txt``
with ``path 0 1 0 ...`` lines, or ProS-GAN's ``*_img.txt`` + ``*_label.txt`` pairs. Nothing about
the dataset is assumed; everything is read from the files:

- the class count is the width of the label rows (every row of every split must have the same);
- ``multi_label`` is True when any row of any split has more than one label;
- images keep their own size (no resize, no crop) unless ``image_size`` is given. The first image of
  each split is probed at load time (its header only) and all of them must have the same size; an
  image of another size met later raises an error naming the file. With ``image_size=N`` every
  image is resized (shorter side to ``resize``, default N) and centre-cropped to NxN, as the
  benchmarks do with 256 / 224.

What would change mAP without a word is refused, naming the lines: an image listed twice in the
query or database list (a repeated training line is only a warning), and, in a single-label
dataset, a row with no label.

The query split is the test list; ``default_topk`` is None (rank the whole database); ``seed`` is
accepted and ignored (the files fix the splits).

Example::

    splits = create_dataset("lists", root="data/cells")          # 32x32 PNGs, 5 classes
    splits.image_size, splits.num_classes, splits.multi_label     # (32, 32), 5, False
    splits = load_splits("lists", data_dir="data/photos", image_size=224)   # resize 224, crop 224
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from .base import DatasetSplits
from .image_list import ImageListDataset
from .list_files import SPLITS, ImageList, ListFileError, describe_lists, read_splits
from .registry import register_dataset
from .transforms import AsIsTransform, ImageSizeError, PaperTransform, check_pixels

PathLike = Union[str, "os.PathLike[str]"]

NAME = "lists"


def _common_size(datasets: Dict[str, ImageListDataset]) -> Tuple[int, int]:
    """The ``(height, width)`` of the first image of every split; ``ImageSizeError`` if they differ."""
    sizes = {split: datasets[split].image_size(0) for split in SPLITS}
    if len(set(sizes.values())) == 1:
        return sizes[SPLITS[0]]
    described = "; ".join(
        f"the first {split} image {datasets[split].where(0)} is {h}x{w}" for split, (h, w) in sizes.items()
    )
    raise ImageSizeError(
        f"the images have different sizes (height x width): {described}. Images are kept at their own "
        "size unless an image size is given: pass image_size=N (--image-size N) to resize every image "
        "(shorter side to N, then a centre crop NxN)"
    )


def _lines(numbers) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def check_rows(lists: Dict[str, ImageList], multi_label: bool) -> None:
    """Refuse what would change mAP without a word: an image listed twice in the query or database
    list (it counts twice), and, in a single-label dataset, rows with no label (relevant to nothing).
    A repeated training line only weighs that image twice: a warning."""
    for split in SPLITS:
        items = lists[split]
        repeats = items.duplicate_lines()
        if repeats:
            line, first, path = repeats[0]
            what = (f"{items.source}: line {line} repeats the image {path} of line {first}"
                    + (f" ({len(repeats)} repeated lines in all: lines {_lines([r[0] for r in repeats])})"
                       if len(repeats) > 1 else ""))
            if split == "train":
                warnings.warn(f"{what}; those training images weigh twice", stacklevel=3)
            else:
                raise ListFileError(
                    f"{what}; a repeated {split} image is counted twice by every retrieval metric (mAP changes). "
                    "Remove the repeated lines (keep the first of each path)"
                )
    if multi_label:
        return  # FLICKR-25K / NUS-WIDE style data: rows with no label are a known part of it
    for split in SPLITS:
        items = lists[split]
        empty = items.all_zero_lines()
        if empty:
            raise ListFileError(
                f"{items.describe_files()}: the image(s) of line(s) {_lines(empty)} have no label (an all-zero row) "
                "in a single-label dataset (no row has two labels), so they are relevant to nothing and mAP changes. "
                "Give each its one class, or remove its line"
                + (" and its label row" if items.label_source is not None else "")
            )


def load_list_dataset(
    root: Optional[PathLike] = None,
    *,
    image_size: Optional[int] = None,
    resize: Optional[int] = None,
    list_format: Optional[str] = None,
    check_files: bool = True,
    seed: Optional[int] = None,
) -> DatasetSplits:
    """Read a dataset of one's own from the list files in ``root``.

    Args:
        root: the dataset directory holding the list files; image paths are relative to it.
        image_size: None keeps every image at its own size (they must all have the same size);
            N resizes the shorter side to ``resize`` and takes an NxN centre crop.
        resize: the shorter side is resized to this before the crop (default ``image_size``; only
            ``resize`` given: ``image_size = resize``).
        list_format: None (detect), ``"deephash"`` or ``"prosgan"``; only needed when ``root``
            holds list files of both formats.
        check_files: check that every listed image exists now instead of failing mid-epoch.
        seed: accepted for a uniform ``create_dataset(name, seed=...)`` call and ignored.

    Returns:
        :class:`DatasetSplits` named ``"lists"`` with train, query (the test list) and database;
        ``image_size`` is ``(height, width)``; ``info`` holds the root, the format, the list
        files, per split the number of all-zero label rows and of duplicated paths, the transform
        and the class count.

    Raises:
        ListFileError: a malformed list (a label row of another width names the file, the line and
        both widths); an image listed twice in the query or database list; a row with no label in
        a single-label dataset (a repeated training line is a warning).
        ImageSizeError (a ValueError): the splits' first images differ in size and no
        ``image_size`` was given. The errors of :func:`~hashguard.data.list_files.read_splits`.
    """
    del seed  # the list files fix the splits
    if root is None:
        raise ValueError(
            "the 'lists' dataset is read from disk: pass the directory holding its images and its "
            "train / test / database lists (root=... in Python, --data-dir on the command line)"
        )
    if image_size is None and resize is not None:
        image_size = resize
    transform: Union[AsIsTransform, PaperTransform, None] = None
    if image_size is not None:
        side = check_pixels("image_size", image_size)
        transform = PaperTransform(image_size=side, resize=side if resize is None else resize)
    root_path = Path(os.path.abspath(Path(root).expanduser()))
    layout, lists = read_splits(root_path, None, list_format=list_format, dataset=NAME)
    first = transform if transform is not None else AsIsTransform()  # the size is set once probed
    datasets = {
        split: ImageListDataset.from_image_list(lists[split], root_path, transform=first, check_files=check_files)
        for split in SPLITS
    }
    if transform is None:
        size = _common_size(datasets)
        transform = AsIsTransform(size)
        for dataset in datasets.values():
            dataset.transform = transform
    else:
        assert isinstance(transform, PaperTransform)  # built above from image_size
        size = (transform.image_size, transform.image_size)
    num_classes = lists["train"].num_classes
    multi_label = any(bool((lists[split].labels.sum(axis=1) > 1).any()) for split in SPLITS)
    check_rows(lists, multi_label)
    info = {**describe_lists(root_path, layout, lists, transform, title=f"{root_path.name} (list files)"),
            "num_classes": num_classes}
    return DatasetSplits(
        name=NAME,
        train=datasets["train"],
        query=datasets["query"],
        database=datasets["database"],
        num_classes=num_classes,
        multi_label=multi_label,
        default_topk=None,
        validation=None,
        image_size=size,
        info=info,
    )


lists = register_dataset(NAME)(load_list_dataset)  # create_dataset("lists", root=...), --dataset lists


__all__ = ["load_list_dataset", "lists"]
