"""The ``lists`` dataset (bring your own list files) and ``load_splits`` for disk and built-in datasets.

Each test writes a handful of tiny PNGs (32x32 unless a test says otherwise) and the three list
files into ``tmp_path``; nothing is larger than a few kilobytes, so the module runs in a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from PIL import Image

from hashguard.data import (
    ImageListDataset,
    ImageSizeError,
    ListFileError,
    check_dataset,
    create_dataset,
    list_datasets,
    load_list_dataset,
    load_splits,
    needs_data_dir,
)
from hashguard.data.transforms import AsIsTransform, PaperTransform, benchmark_sizes

SPLIT_FILES = {"train": "train", "query": "test", "database": "database"}
# five classes, single-label: item i has class i % 5; train 6, query 3, database 8 items
SINGLE = {"train": [0, 1, 2, 3, 4, 0], "query": [1, 2, 3], "database": [0, 1, 2, 3, 4, 0, 1, 2]}


def _one_hot(classes: Sequence[int], width: int = 5) -> np.ndarray:
    return np.eye(width, dtype=np.int64)[list(classes)]


def write_lists(
    root: Path,
    labels: Dict[str, np.ndarray],
    *,
    fmt: str = "deephash",
    size: Tuple[int, int] = (32, 32),
    sizes: Optional[Dict[Tuple[str, int], Tuple[int, int]]] = None,
) -> Path:
    """Images ``img/<split><i>.png`` of ``size`` (height, width; ``sizes`` overrides per item) and lists."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, rows in labels.items():
        names: List[str] = []
        for i in range(len(rows)):
            h, w = (sizes or {}).get((split, i), size)
            name = f"img/{split}{i}.png"
            Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(root / name)
            names.append(name)
        text_rows = [" ".join(str(int(v)) for v in row) for row in rows]
        stem = SPLIT_FILES[split]
        if fmt == "deephash":
            (root / f"{stem}.txt").write_text("".join(f"{n} {r}\n" for n, r in zip(names, text_rows)))
        else:
            (root / f"{stem}_img.txt").write_text("".join(f"{n}\n" for n in names))
            (root / f"{stem}_label.txt").write_text("".join(f"{r}\n" for r in text_rows))
    return root


def single_label() -> Dict[str, np.ndarray]:
    return {split: _one_hot(items) for split, items in SINGLE.items()}


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = text + "\n"
    path.write_text("".join(lines))


# ------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("fmt", ["deephash", "prosgan"])
def test_five_classes_at_32_are_kept_at_32(tmp_path: Path, fmt: str) -> None:
    root = write_lists(tmp_path / "cells", single_label(), fmt=fmt)
    splits = create_dataset("lists", root=root, seed=7)
    assert splits.name == "lists" and splits.num_classes == 5 and not splits.multi_label
    assert splits.default_topk is None and splits.validation is None
    assert splits.image_size == (32, 32)
    assert (len(splits.train), len(splits.query), len(splits.database)) == (6, 3, 8)
    assert splits.query.labels.argmax(1).tolist() == SINGLE["query"]
    assert isinstance(splits.query, ImageListDataset) and isinstance(splits.query.transform, AsIsTransform)
    x, y, i = splits.database[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and i == 2 and y.shape == (5,)
    expected = np.asarray(Image.open(root / "img/database2.png"), dtype=np.float32) / 255.0
    assert torch.allclose(x, torch.from_numpy(expected).permute(2, 0, 1))  # untouched pixels
    info = splits.info
    assert info["format"] == fmt and info["root"] == str(root) and info["num_classes"] == 5
    assert info["all_zero_labels"] == {"train": 0, "query": 0, "database": 0}
    assert "no resize" in info["transform"] and "32x32" in info["transform"]


def test_multi_label_is_inferred_from_any_split(tmp_path: Path) -> None:
    labels = single_label()
    labels["database"][5] = [1, 0, 0, 1, 0]  # one row with two labels, in the database only
    splits = load_list_dataset(write_lists(tmp_path / "d", labels))
    assert splits.multi_label and splits.num_classes == 5


def test_non_square_images_keep_their_size(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label(), size=(20, 28))
    splits = load_list_dataset(root)
    assert splits.image_size == (20, 28) and splits.query[0][0].shape == (3, 20, 28)


@pytest.mark.parametrize(
    "kwargs, side", [({"image_size": 16}, 16), ({"image_size": 16, "resize": 24}, 16), ({"resize": 20}, 20)]
)
def test_image_size_resizes_and_crops(tmp_path: Path, kwargs: dict, side: int) -> None:
    root = write_lists(tmp_path / "d", single_label(), size=(32, 48))
    splits = load_list_dataset(root, **kwargs)
    assert splits.image_size == (side, side)
    assert isinstance(splits.train.transform, PaperTransform)
    assert splits.train.transform.resize == kwargs.get("resize", side)
    assert splits.train[0][0].shape == (3, side, side)
    assert "centre crop" in splits.info["transform"]


def test_image_size_makes_mixed_sizes_usable(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label(), sizes={("query", 0): (40, 30)})
    splits = load_list_dataset(root, image_size=24)
    assert splits.query.batch(slice(None)).shape == (3, 3, 24, 24)


def test_first_images_of_different_sizes_ask_for_image_size(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label(), sizes={("query", 0): (40, 30)})
    with pytest.raises(ImageSizeError, match=r"different sizes.*query0\.png.*40x30.*image_size=N \(--image-size N\)"):
        load_list_dataset(root)
    with pytest.raises(ValueError):  # an ImageSizeError is a ValueError: the CLI reports it
        load_list_dataset(root)


def test_an_odd_image_later_names_file_line_and_fix(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label(), sizes={("database", 3): (32, 40)})
    splits = load_list_dataset(root)  # the first image of each split is 32x32
    splits.database[2]
    with pytest.raises(ImageSizeError) as info:
        splits.database[3]
    message = str(info.value)
    assert "database3.png" in message and "line 4 of" in message and "database.txt" in message
    assert "32x40" in message and "--image-size N" in message


@pytest.mark.parametrize("fmt", ["deephash", "prosgan"])
def test_label_width_differing_within_a_file(tmp_path: Path, fmt: str) -> None:
    root = write_lists(tmp_path / "d", single_label(), fmt=fmt)
    if fmt == "deephash":
        _replace_line(root / "database.txt", 3, "img/database2.png 0 0 1 0")
        where = r"database\.txt, line 3"
    else:
        _replace_line(root / "database_label.txt", 3, "0 0 1 0")
        where = r"database_label\.txt, line 3"
    with pytest.raises(ListFileError, match=rf"{where}: expected 5 label columns.*found 4") as info:
        load_list_dataset(root)
    assert "train" in str(info.value) and "same number of columns" in str(info.value)


def test_label_width_differing_within_the_training_list(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label())
    _replace_line(root / "train.txt", 2, "img/train1.png 0 1 0 0 0 0")
    expected = r"train\.txt, line 2: expected 5 label columns \(the class count is taken from the first line of this file"
    with pytest.raises(ListFileError, match=expected):
        load_list_dataset(root)


@pytest.mark.parametrize("fmt", ["deephash", "prosgan"])
def test_label_width_differing_across_splits(tmp_path: Path, fmt: str) -> None:
    labels = single_label()
    labels["query"] = _one_hot(SINGLE["query"], width=6)  # every query row is one column wider
    root = write_lists(tmp_path / "d", labels, fmt=fmt)
    test_file = r"test\.txt" if fmt == "deephash" else r"test_label\.txt"
    train_file = r"line 1 of .*train\.txt" if fmt == "deephash" else r"the first label row of .*train_label\.txt"
    expected = rf"{test_file}, line 1: expected 5 label columns \(the class count is taken from {train_file}"
    with pytest.raises(ListFileError, match=expected) as info:
        load_list_dataset(root)
    assert "found 6" in str(info.value)


def test_benchmark_width_error_still_names_the_class_count(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "cifar", single_label())
    with pytest.raises(ListFileError, match=r"train\.txt, line 1: expected 10 label columns \(the dataset has 10"):
        create_dataset("cifar10", root=root)


def test_lists_needs_a_root() -> None:
    with pytest.raises(ValueError, match=r"'lists' dataset is read from disk.*--data-dir"):
        create_dataset("lists")


# ------------------------------------------------------------------------------------ benchmark sizes


def test_benchmark_sizes_keep_the_paper_ratio() -> None:
    assert benchmark_sizes() == (224, 256)
    assert benchmark_sizes(112) == (112, 128) and benchmark_sizes(32) == (32, 37)
    assert benchmark_sizes(None, 128) == (112, 128)
    assert benchmark_sizes(64, 64) == (64, 64)
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        benchmark_sizes(0)


def test_benchmark_accepts_image_size_alone(tmp_path: Path) -> None:
    labels = {split: _one_hot(items, width=10) for split, items in SINGLE.items()}
    root = write_lists(tmp_path / "cifar", labels)
    splits = create_dataset("cifar10", root=root, image_size=16)
    assert splits.image_size == (16, 16) and splits.query.transform.resize == 18
    assert splits.query[0][0].shape == (3, 16, 16)


# ------------------------------------------------------------------------------------ load_splits


def test_load_splits_lists_from_the_folder_or_its_parent(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "lists", single_label())
    assert needs_data_dir("lists")
    direct = load_splits("lists", data_dir=str(root))
    parent = load_splits("lists", data_dir=str(tmp_path))
    assert direct.info["root"] == parent.info["root"] == str(root)
    resized = load_splits("lists", 3, str(root), image_size=16)
    assert resized.image_size == (16, 16) and resized.database.batch([0]).shape == (1, 3, 16, 16)


def test_load_splits_prefers_a_folder_holding_lists_over_its_lists_subfolder(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label())
    (root / "lists").mkdir()  # e.g. a folder of the user's own, not the dataset
    assert load_splits("lists", data_dir=str(root)).info["root"] == str(root)


def test_lists_without_data_dir_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match=r"--data-dir DIR holding train/test/database lists"):
        load_splits("lists")


@pytest.mark.parametrize("name, size", [("synthetic", "16x16"), ("mnist", "28x28"), ("mnist-mosaic", "56x56")])
def test_builtin_datasets_refuse_an_image_size(name: str, size: str) -> None:
    expected = rf"built-in dataset '{name}' has a fixed size {size}; --image-size applies to datasets read from disk"
    with pytest.raises(ValueError, match=expected):
        load_splits(name, image_size=32)
    with pytest.raises(ValueError, match="--resize applies"):
        check_dataset(name, resize=40)


def test_builtin_fixed_sizes_are_the_real_ones() -> None:
    # mnist (28x28) and mnist-mosaic (56x56) are checked by test_builtin_datasets
    assert load_splits("synthetic").image_size == (16, 16)


def test_image_size_must_be_a_positive_integer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        load_splits("lists", data_dir=str(tmp_path), image_size=0)


def test_registry_lists_the_lists_dataset() -> None:
    assert "lists" in list_datasets()


def test_check_files_false_still_probes_the_first_images(tmp_path: Path) -> None:
    root = write_lists(tmp_path / "d", single_label())
    os.remove(root / "img/query0.png")
    with pytest.raises(FileNotFoundError, match=r"query0\.png.*line 1 of .*test\.txt"):
        load_list_dataset(root, check_files=False)
