"""List-file benchmarks: both formats, the paper transform, the registry and every error path.

Each test writes a tiny benchmark (10 random 40x30 images, 21-class NUS-WIDE style labels) into
``tmp_path``; images are cropped to 32 pixels (resize 36) to keep the suite fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from hashguard.data.base import DatasetSplits
from hashguard.data.benchmarks import BENCHMARKS, load_benchmark
from hashguard.data.image_list import ImageListDataset, ImageReadError
from hashguard.data.list_files import (
    DataRootNotFoundError,
    DatasetFileNotFoundError,
    ImageNotFoundError,
    ListFileError,
    ListFileNotFoundError,
    find_list_files,
    read_img_label_lists,
    read_path_label_list,
)
from hashguard.data.registry import create_dataset, list_datasets
from hashguard.data.transforms import PaperTransform

C = 21  # nus-wide
SMALL = dict(image_size=32, resize=36)
IMAGE_NAMES = [f"images/img{i}.{'jpg' if i % 2 else 'png'}" for i in range(10)]
# items of each split, as indices into IMAGE_NAMES; train repeats item 2 (as FLICKR-25K does)
SPLIT_ITEMS = {"database": [0, 1, 2, 3, 4, 5], "train": [0, 1, 2, 2], "test": [6, 7, 8, 9]}


def _labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = (rng.random((10, C)) < 0.2).astype(np.int64)
    labels[:, 0] = 1  # no accidental all-zero rows...
    labels[3] = 0  # ...except this one (a database item), like FLICKR-25K / NUS-WIDE
    labels[7] = 0  # and this one (a query)
    return labels


LABELS = _labels()


def _write_images(root: Path) -> None:
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(IMAGE_NAMES):
        pixels = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if i == 0:
            image = image.convert("L")  # grey
        elif i == 2:
            image = image.convert("RGBA")  # alpha channel (PNG)
        elif i == 4:
            image = image.convert("P")  # palette (PNG)
        image.save(root / name)


def _row(i: int) -> str:
    return " ".join(str(v) for v in LABELS[i])


def write_deephash(root: Path, *, images: bool = True, absolute: bool = False) -> Path:
    """train.txt / test.txt / database.txt with 'path 0 1 ...' lines."""
    root.mkdir(parents=True, exist_ok=True)
    if images:
        _write_images(root)
    for split, items in SPLIT_ITEMS.items():
        lines = []
        for i in items:
            path = str(root / IMAGE_NAMES[i]) if (absolute and split == "test") else IMAGE_NAMES[i]
            lines.append(f"{path} {_row(i)}\n")
        (root / f"{split}.txt").write_text("".join(lines))
    return root


def write_prosgan(root: Path, *, images: bool = True) -> Path:
    """*_img.txt + *_label.txt, label rows ending with a space (NUS-WIDE style), a trailing blank line."""
    root.mkdir(parents=True, exist_ok=True)
    if images:
        _write_images(root)
    for split, items in SPLIT_ITEMS.items():
        (root / f"{split}_img.txt").write_text("".join(f"{IMAGE_NAMES[i]}\n" for i in items))
        (root / f"{split}_label.txt").write_text("".join(f"{_row(i)} \n" for i in items) + "\n")
    return root


@pytest.fixture
def deephash_root(tmp_path: Path) -> Path:
    return write_deephash(tmp_path / "nus")


@pytest.fixture
def prosgan_root(tmp_path: Path) -> Path:
    return write_prosgan(tmp_path / "nus")


def _expected(split: str) -> np.ndarray:
    return LABELS[SPLIT_ITEMS["test" if split == "query" else split]].astype(np.float32)


# ------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("fmt", ["deephash", "prosgan"])
def test_reads_both_formats(tmp_path: Path, fmt: str) -> None:
    root = (write_deephash if fmt == "deephash" else write_prosgan)(tmp_path / "nus")
    splits = load_benchmark("nus-wide", root, **SMALL)
    assert isinstance(splits, DatasetSplits)
    assert splits.name == "nus-wide" and splits.num_classes == C and splits.multi_label
    assert splits.default_topk == 5000 and splits.validation is None
    assert splits.image_size == (32, 32)
    assert splits.info["format"] == fmt and splits.info["root"] == str(root)
    for split in ("train", "query", "database"):
        dataset = getattr(splits, split)
        assert isinstance(dataset, ImageListDataset)
        assert dataset.labels.dtype == torch.float32
        assert torch.equal(dataset.labels, torch.from_numpy(_expected(split)))
    assert (len(splits.train), len(splits.query), len(splits.database)) == (4, 4, 6)


def test_items_are_rgb_float_in_unit_range(deephash_root: Path) -> None:
    splits = load_benchmark("nus-wide", deephash_root, **SMALL)
    for split in ("database", "query"):
        dataset = getattr(splits, split)
        for index in range(len(dataset)):
            x, y, i = dataset[index]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
            assert i == index and torch.equal(y, dataset.labels[index])
    grey, _, _ = splits.database[0]  # a grey PNG: three equal channels
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_default_paper_transform_is_224(deephash_root: Path) -> None:
    splits = load_benchmark("nus-wide", deephash_root)
    x, _, _ = splits.query[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert splits.image_size == (224, 224)


def test_transform_has_no_normalisation() -> None:
    image = Image.new("RGB", (40, 30), (255, 0, 128))
    x = PaperTransform(32, 36)(image)
    assert torch.allclose(x[:, 16, 16], torch.tensor([1.0, 0.0, 128 / 255]))


def test_both_formats_give_identical_splits(tmp_path: Path) -> None:
    a = load_benchmark("nus-wide", write_deephash(tmp_path / "a"), **SMALL)
    b = load_benchmark("nus-wide", write_prosgan(tmp_path / "b"), **SMALL)
    for split in ("train", "query", "database"):
        da, db = getattr(a, split), getattr(b, split)
        assert torch.equal(da.labels, db.labels)
        assert [os.path.relpath(p, tmp_path / "a") for p in da.paths] == [
            os.path.relpath(p, tmp_path / "b") for p in db.paths
        ]
        assert torch.equal(da[len(da) - 1][0], db[len(db) - 1][0])  # same image, same transform


def test_all_zero_rows_and_duplicates_are_kept_and_reported(prosgan_root: Path) -> None:
    splits = load_benchmark("nus-wide", prosgan_root, **SMALL)
    assert splits.info["all_zero_labels"] == {"train": 0, "query": 1, "database": 1}
    assert splits.info["duplicate_paths"] == {"train": 1, "query": 0, "database": 0}
    assert len(splits.train) == 4  # the duplicated line is kept (pairwise buffers index by position)
    assert float(splits.database.labels[3].sum()) == 0.0


def test_absolute_paths_are_used_as_they_are(tmp_path: Path) -> None:
    root = write_deephash(tmp_path / "nus", absolute=True)
    splits = load_benchmark("nus-wide", root, **SMALL)
    assert splits.query.path(0) == str(root / IMAGE_NAMES[6])
    assert splits.query[0][0].shape == (3, 32, 32)


def test_query_txt_is_accepted_instead_of_test_txt(deephash_root: Path) -> None:
    (deephash_root / "test.txt").rename(deephash_root / "query.txt")
    splits = load_benchmark("nus-wide", deephash_root, **SMALL)
    assert torch.equal(splits.query.labels, torch.from_numpy(_expected("query")))


def test_subset_and_dataloader(deephash_root: Path) -> None:
    splits = load_benchmark("nus-wide", deephash_root, **SMALL)
    sub = splits.database.subset([1, 3])
    assert torch.equal(sub[1][0], splits.database[3][0])
    x, y, i = next(iter(torch.utils.data.DataLoader(splits.database, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4, C) and i.tolist() == [0, 1, 2, 3]


def test_label_values_written_as_floats_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("a.jpg 1.0 0.0 1\n\nb.jpg 0 0 0\n")
    items = read_path_label_list(path, 3)
    assert items.labels.tolist() == [[1, 0, 1], [0, 0, 0]]
    assert items.line_numbers.tolist() == [1, 3] and items.count_all_zero() == 1


def test_check_files_false_defers_the_missing_image(deephash_root: Path) -> None:
    os.remove(deephash_root / IMAGE_NAMES[4])
    splits = load_benchmark("nus-wide", deephash_root, check_files=False, **SMALL)
    with pytest.raises(ImageNotFoundError, match=r"img4\.png.*line 5 of .*database\.txt"):
        splits.database[4]


# ------------------------------------------------------------------------------------ registry


def test_registry_holds_the_five_benchmarks(deephash_root: Path) -> None:
    names = list_datasets()
    for name in ("flickr25k", "nus-wide", "ms-coco", "imagenet100", "cifar10"):
        assert name in names
    splits = create_dataset("nus-wide", root=deephash_root, seed=123, **SMALL)  # seed is ignored
    assert splits.name == "nus-wide" and len(splits.database) == 6
    with pytest.raises(TypeError, match="batch_size"):
        create_dataset("nus-wide", root=deephash_root, batch_size=4)


@pytest.mark.parametrize(
    "name, classes, multi_label, topk",
    [
        ("flickr25k", 38, True, None),
        ("nus-wide", 21, True, 5000),
        ("ms-coco", 80, True, 5000),
        ("imagenet100", 100, False, 1000),
        ("cifar10", 10, False, None),
    ],
)
def test_benchmark_specs(name: str, classes: int, multi_label: bool, topk) -> None:
    spec = BENCHMARKS[name]
    assert (spec.num_classes, spec.multi_label, spec.default_topk) == (classes, multi_label, topk)


def test_single_label_benchmark(tmp_path: Path) -> None:
    root = tmp_path / "cifar"
    _write_images(root)
    one_hot = np.eye(10, dtype=np.int64)
    for split, items in SPLIT_ITEMS.items():
        text = "".join(f"{IMAGE_NAMES[i]} {' '.join(map(str, one_hot[i]))}\n" for i in items)
        (root / f"{split}.txt").write_text(text)
    splits = create_dataset("cifar10", root=root, **SMALL)
    assert not splits.multi_label and splits.default_topk is None and splits.num_classes == 10
    assert splits.query.labels.argmax(1).tolist() == SPLIT_ITEMS["test"]


# ------------------------------------------------------------------------------------ errors


def test_missing_root_names_it_and_the_expected_files(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataRootNotFoundError, match=r"nowhere.*does not exist") as info:
        load_benchmark("ms-coco", missing)
    message = str(info.value)
    assert "--data-dir" in message and "train.txt" in message and "database_img.txt" in message
    assert isinstance(info.value, FileNotFoundError)


def test_root_is_required() -> None:
    with pytest.raises(ValueError, match=r"root=.*--data-dir"):
        create_dataset("flickr25k")


def test_no_list_files_lists_the_files_looked_for(tmp_path: Path) -> None:
    expected = r"no list files.*test\.txt.*test_img\.txt \+ test_label\.txt"
    with pytest.raises(ListFileNotFoundError, match=expected):
        load_benchmark("nus-wide", tmp_path)


def test_both_formats_present_is_an_error(tmp_path: Path) -> None:
    root = write_deephash(tmp_path / "nus")
    write_prosgan(root, images=False)
    with pytest.raises(ListFileError, match=r"both formats.*list_format="):
        load_benchmark("nus-wide", root, **SMALL)
    assert load_benchmark("nus-wide", root, list_format="prosgan", **SMALL).info["format"] == "prosgan"


@pytest.mark.parametrize(
    "fmt, removed", [("deephash", "test.txt"), ("deephash", "database.txt"), ("prosgan", "train_label.txt")]
)
def test_missing_list_file(tmp_path: Path, fmt: str, removed: str) -> None:
    root = (write_deephash if fmt == "deephash" else write_prosgan)(tmp_path / "nus", images=False)
    os.remove(root / removed)
    with pytest.raises(ListFileNotFoundError, match=rf"missing list file.*{removed}"):
        find_list_files(root)


@pytest.mark.parametrize("fmt, list_file", [("deephash", "database.txt"), ("prosgan", "database_img.txt")])
def test_missing_image_names_path_list_and_line(tmp_path: Path, fmt: str, list_file: str) -> None:
    root = (write_deephash if fmt == "deephash" else write_prosgan)(tmp_path / "nus")
    os.remove(root / IMAGE_NAMES[4])
    with pytest.raises(ImageNotFoundError) as info:
        load_benchmark("nus-wide", root, **SMALL)
    message = str(info.value)
    assert "img4.png" in message and "line 5" in message and list_file in message
    assert isinstance(info.value, FileNotFoundError)


def test_all_images_missing_points_at_the_data_dir(tmp_path: Path) -> None:
    root = write_deephash(tmp_path / "nus", images=False)
    with pytest.raises(DatasetFileNotFoundError, match=r"None of the images exist.*--data-dir"):
        load_benchmark("nus-wide", root, **SMALL)


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = text + "\n"
    path.write_text("".join(lines))


def test_wrong_label_width_deephash(deephash_root: Path) -> None:
    _replace_line(deephash_root / "database.txt", 3, f"{IMAGE_NAMES[2]} " + " ".join(["0"] * 20))
    with pytest.raises(ListFileError, match=r"database\.txt, line 3: expected 21 label columns.*found 20"):
        load_benchmark("nus-wide", deephash_root, **SMALL)


def test_lists_of_another_dataset_are_rejected(deephash_root: Path) -> None:
    with pytest.raises(ListFileError, match=r"train\.txt, line 1: expected 80 label columns.*found 21"):
        load_benchmark("ms-coco", deephash_root, **SMALL)


def test_wrong_label_width_prosgan(prosgan_root: Path) -> None:
    _replace_line(prosgan_root / "test_label.txt", 2, " ".join(["1"] * 22))
    with pytest.raises(ListFileError, match=r"test_label\.txt, line 2: expected 21 label columns.*found 22"):
        load_benchmark("nus-wide", prosgan_root, **SMALL)


@pytest.mark.parametrize("value", ["2", "-1", "x"])
def test_label_values_must_be_zero_or_one(prosgan_root: Path, value: str) -> None:
    _replace_line(prosgan_root / "train_label.txt", 2, " ".join([value] + ["0"] * 20))
    expected = rf"train_label\.txt, line 2, label column 1: value '{value}' is not 0 or 1"
    with pytest.raises(ListFileError, match=expected):
        load_benchmark("nus-wide", prosgan_root, **SMALL)


def test_image_and_label_files_must_have_the_same_length(prosgan_root: Path) -> None:
    _replace_line(prosgan_root / "database_label.txt", 6, "")
    expected = r"database_img\.txt lists 6 images but .*database_label\.txt has 5 label rows"
    with pytest.raises(ListFileError, match=expected):
        read_img_label_lists(prosgan_root / "database_img.txt", prosgan_root / "database_label.txt", C)


@pytest.mark.parametrize(
    "fmt, emptied", [("deephash", "train.txt"), ("prosgan", "test_img.txt"), ("prosgan", "test_label.txt")]
)
def test_empty_list_file(tmp_path: Path, fmt: str, emptied: str) -> None:
    root = (write_deephash if fmt == "deephash" else write_prosgan)(tmp_path / "nus", images=False)
    (root / emptied).write_text("\n  \n")
    with pytest.raises(ListFileError, match=rf"{emptied} is empty"):
        load_benchmark("nus-wide", root, check_files=False, **SMALL)


def test_unreadable_image(deephash_root: Path) -> None:
    (deephash_root / IMAGE_NAMES[1]).write_bytes(b"not a jpeg")
    splits = load_benchmark("nus-wide", deephash_root, **SMALL)
    with pytest.raises(ImageReadError, match=r"img1\.jpg.*line 2 of .*database\.txt"):
        splits.database[1]


@pytest.mark.parametrize("sizes", [dict(image_size=64, resize=32), dict(image_size=0, resize=32)])
def test_bad_sizes(deephash_root: Path, sizes: Dict[str, int]) -> None:
    with pytest.raises(ValueError, match="image_size|resize"):
        load_benchmark("nus-wide", deephash_root, **sizes)


def test_bad_list_format(deephash_root: Path) -> None:
    with pytest.raises(ValueError, match="list_format"):
        load_benchmark("nus-wide", deephash_root, list_format="hashnet")


def test_dataset_rejects_mismatched_inputs() -> None:
    paths: List[str] = ["a.png", "b.png"]
    with pytest.raises(ValueError, match="2 image paths but 3 label rows"):
        ImageListDataset(paths, np.zeros((3, 4)), check_files=False)
