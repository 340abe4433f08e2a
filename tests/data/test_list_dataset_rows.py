"""Rows of a user's list files that changed mAP with no word (issue 12): an image listed twice in the
query or database list, and rows with no label in a single-label dataset (0.389 -> 0.304)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from hashguard.data import ListFileError, load_splits


def write_single_label(root, sizes=(("train", 10), ("test", 4), ("database", 12)), classes=3):
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in sizes:
        lines = []
        for i in range(n):
            path = f"img/{split}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / path)
            lines.append(path + " " + " ".join("1" if c == i % classes else "0" for c in range(classes)))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def edit(root, split, change):
    path = root / f"{split}.txt"
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


@pytest.mark.parametrize("split", ["database", "test"])
def test_an_image_listed_twice_in_query_or_database_is_refused_with_its_lines(tmp_path, split):
    write_single_label(tmp_path)
    edit(tmp_path, split, lambda lines: lines + [lines[1], lines[2]])
    n = 12 if split == "database" else 4
    with pytest.raises(ListFileError, match=rf"{split}.txt: line {n + 1} repeats the image img/{split}_1.png of line 2 "
                                            rf"\(2 repeated lines in all: lines {n + 1}, {n + 2}\).*Remove the repeated"):
        load_splits("lists", data_dir=str(tmp_path))


def test_a_repeated_training_line_is_a_warning(tmp_path):
    write_single_label(tmp_path)
    edit(tmp_path, "train", lambda lines: lines + [lines[0]])
    with pytest.warns(UserWarning, match="train.txt: line 11 repeats the image img/train_0.png of line 1"):
        splits = load_splits("lists", data_dir=str(tmp_path))
    assert len(splits.train) == 11


@pytest.mark.parametrize("split", ["train", "test", "database"])
def test_rows_without_label_in_a_single_label_dataset_are_refused(tmp_path, split):
    write_single_label(tmp_path)
    edit(tmp_path, split, lambda lines: lines[:2] + [lines[2].split()[0] + " 0 0 0"] + lines[3:])
    with pytest.raises(ListFileError, match=rf"{split}.txt: the image\(s\) of line\(s\) 3 have no label .* single-label"):
        load_splits("lists", data_dir=str(tmp_path))


def test_rows_without_label_stay_allowed_in_a_multi_label_dataset(tmp_path):
    """FLICKR-25K / NUS-WIDE style data has unlabelled rows; they stay (and are counted in info)."""
    write_single_label(tmp_path)
    edit(tmp_path, "database", lambda lines: [lines[0].split()[0] + " 1 1 0", lines[1].split()[0] + " 0 0 0"] + lines[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = load_splits("lists", data_dir=str(tmp_path))
    assert splits.multi_label and splits.info["all_zero_labels"]["database"] == 1


def test_prosgan_format_names_the_image_list_lines(tmp_path):
    write_single_label(tmp_path)
    for split in ("train", "test", "database"):
        lines = (tmp_path / f"{split}.txt").read_text().splitlines()
        (tmp_path / f"{split}.txt").unlink()
        (tmp_path / f"{split}_img.txt").write_text("\n".join(line.split()[0] for line in lines) + "\n")
        rows = [" ".join(line.split()[1:]) for line in lines]
        if split == "database":
            rows[5] = "0 0 0"
        (tmp_path / f"{split}_label.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(ListFileError, match=r"database_img.txt \+ .*database_label.txt: the image\(s\) of line\(s\) 6 "
                                            r"have no label.*and its label row"):
        load_splits("lists", data_dir=str(tmp_path))
