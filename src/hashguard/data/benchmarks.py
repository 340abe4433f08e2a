"""The real retrieval benchmarks, read from list files in a user's directory.

Registered names (classes, labels, paper top-k; usual query / train / database sizes)::

    flickr25k     38 classes   multi-label   top-k all    1,700 / 5,000 (4,496 unique) / 23,300
    nus-wide      21 classes   multi-label   top-k 5000   2,100 / 10,500 / the rest
    ms-coco       80 classes   multi-label   top-k 5000   5,000 / 10,000 / the rest
    imagenet100  100 classes   single-label  top-k 1000   5,000 / 13,000 / 128,503
    cifar10       10 classes   single-label  top-k all    1,000 / 5,000 / 54,000 (exported images)

Each factory takes the dataset directory ``root`` (the ``--data-dir`` option), which holds the
images and the list files in either format of :mod:`hashguard.data.list_files`
(``train.txt``/``test.txt``/``database.txt`` with ``path 0 1 0 ...`` lines, or ProS-GAN's
``*_img.txt`` + ``*_label.txt`` pairs); the format is detected. The query split is the test list.
Images are transformed as in the papers (resize 256, centre crop 224, [0, 1], no normalisation)
and loaded lazily; ``image_size`` / ``resize`` override the two sizes (only ``image_size`` given:
``resize = round(image_size * 256 / 224)``, see :func:`~hashguard.data.transforms.benchmark_sizes`).
``seed`` is accepted so every dataset can be created with
``create_dataset(name, seed=...)``, and ignored: these splits are fixed by the list files. Any other
unknown keyword argument is an error.

Example::

    splits = create_dataset("nus-wide", root="data/nus-wide")
    splits.summary()         # 'nus-wide: 21 classes, multi-label, train 10500, query 2100, ...'
    splits.info["all_zero_labels"]   # rows with no label, per split (kept)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Union

from .base import DatasetSplits
from .image_list import ImageListDataset
from .list_files import SPLITS, describe_lists, read_splits
from .registry import register_dataset
from .transforms import PaperTransform, benchmark_sizes

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class BenchmarkSpec:
    """What evaluation needs to know about a benchmark read from list files."""

    name: str
    title: str
    num_classes: int
    multi_label: bool
    default_topk: Optional[int]


BENCHMARKS: Dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("flickr25k", "MIRFLICKR-25K", 38, True, None),
        BenchmarkSpec("nus-wide", "NUS-WIDE (21 most frequent concepts)", 21, True, 5000),
        BenchmarkSpec("ms-coco", "MS-COCO", 80, True, 5000),
        BenchmarkSpec("imagenet100", "ImageNet-100", 100, False, 1000),
        BenchmarkSpec("cifar10", "CIFAR-10 (exported to image files)", 10, False, None),
    )
}


def load_benchmark(
    name: str,
    root: Optional[PathLike] = None,
    *,
    image_size: Optional[int] = None,
    resize: Optional[int] = None,
    check_files: bool = True,
    list_format: Optional[str] = None,
    seed: Optional[int] = None,
) -> DatasetSplits:
    """Read benchmark ``name`` from the list files in ``root``.

    Args:
        name: one of ``BENCHMARKS`` (flickr25k, nus-wide, ms-coco, imagenet100, cifar10).
        root: the dataset directory holding the list files; image paths are relative to it.
        image_size: side of the centre crop (None: 224 as in the papers, or
            ``round(resize * 224 / 256)`` when only ``resize`` is given).
        resize: the shorter image side is resized to this first (None: 256 as in the papers, or
            ``round(image_size * 256 / 224)`` when only ``image_size`` is given).
        check_files: check that every listed image exists now instead of failing mid-epoch.
        list_format: None (detect), ``"deephash"`` or ``"prosgan"``; only needed when ``root``
            holds list files of both formats.
        seed: accepted for a uniform ``create_dataset(name, seed=...)`` call and ignored: the
            splits are fixed by the list files.

    Returns:
        :class:`DatasetSplits` with train, query (the test list) and database; ``info`` holds the
        root, the format, the list files, and per split the number of all-zero label rows and of
        duplicated paths.
    """
    del seed  # the list files fix the splits
    key = str(name).lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid choices: {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[key]
    if root is None:
        raise ValueError(
            f"{spec.name} is read from disk: pass the directory holding its images and list files "
            "(root=... in Python, --data-dir on the command line)"
        )
    image_size, resize = benchmark_sizes(image_size, resize)
    transform = PaperTransform(image_size=image_size, resize=resize)  # validates the sizes first
    root_path = Path(os.path.abspath(Path(root).expanduser()))
    layout, lists = read_splits(root_path, spec.num_classes, list_format=list_format, dataset=spec.name)
    datasets = {
        split: ImageListDataset.from_image_list(
            lists[split], root_path, transform=transform, check_files=check_files
        )
        for split in SPLITS
    }
    info = describe_lists(root_path, layout, lists, transform, title=spec.title)
    return DatasetSplits(
        name=spec.name,
        train=datasets["train"],
        query=datasets["query"],
        database=datasets["database"],
        num_classes=spec.num_classes,
        multi_label=spec.multi_label,
        default_topk=spec.default_topk,
        validation=None,
        image_size=(image_size, image_size),
        info=info,
    )


_FACTORY_DOC = """{title}: {classes} classes, {kind}, paper top-k {topk}; read from list files in ``root``.

    Arguments as :func:`load_benchmark` (root, image_size=None -> 224, resize=None -> 256 or
    round(image_size * 256 / 224), check_files=True, list_format=None, seed accepted and ignored);
    file formats in :mod:`hashguard.data.benchmarks`.
    """


def _benchmark_factory(name: str) -> Callable[..., DatasetSplits]:
    """The registered factory of benchmark ``name``: :func:`load_benchmark` with the name bound."""
    spec = BENCHMARKS[name]

    def factory(
        root: Optional[PathLike] = None,
        *,
        image_size: Optional[int] = None,
        resize: Optional[int] = None,
        check_files: bool = True,
        list_format: Optional[str] = None,
        seed: Optional[int] = None,
    ) -> DatasetSplits:
        return load_benchmark(
            name,
            root,
            image_size=image_size,
            resize=resize,
            check_files=check_files,
            list_format=list_format,
            seed=seed,
        )

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = _FACTORY_DOC.format(
        title=spec.title,
        classes=spec.num_classes,
        kind="multi-label" if spec.multi_label else "single-label",
        topk="all" if spec.default_topk is None else spec.default_topk,
    )
    return register_dataset(name)(factory)


flickr25k = _benchmark_factory("flickr25k")
nus_wide = _benchmark_factory("nus-wide")
ms_coco = _benchmark_factory("ms-coco")
imagenet100 = _benchmark_factory("imagenet100")
cifar10 = _benchmark_factory("cifar10")
