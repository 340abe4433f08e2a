"""Readers for the image list files of the deep-hashing benchmarks, in both formats the field uses.

A benchmark directory (``root``, the ``--data-dir`` option) holds the images and three list files,
one per split: ``train`` (what the hashing model sees), ``test`` (the queries) and ``database``
(what retrieval ranks). Image paths are relative to ``root``; absolute paths are used as they are.

Format ``"deephash"`` (DeepHash-pytorch, HashNet, DHTA)::

    root/train.txt, root/test.txt, root/database.txt
        mirflickr/im1.jpg 0 1 0 0 ... 1        # the path, then one 0/1 column per class

  DHTA's ImageNet lists call the query list ``query.txt``; it is read when ``test.txt`` is absent.
  Paths must not contain whitespace in this format (the line is split on whitespace).

Format ``"prosgan"`` (ProS-GAN, THA, CgAT, SAAT)::

    root/train_img.txt   + root/train_label.txt
    root/test_img.txt    + root/test_label.txt
    root/database_img.txt + root/database_label.txt
        *_img.txt:   one path per line (the whole line, so spaces are allowed)
        *_label.txt: the matching 0/1 row, space separated (NUS-WIDE rows end with a space)

The format is detected from the files present (:func:`find_list_files`). Blank lines are skipped;
line numbers in error messages are the real line numbers of the file. Values may be written
``0``/``1`` (or ``0.0``/``1.0``); anything else is an error. All-zero label rows (FLICKR-25K,
NUS-WIDE) and duplicated lines (the FLICKR-25K training list) are allowed: :class:`ImageList`
counts them so the caller can report them.

Example::

    layout, lists = read_splits("data/nus-wide", num_classes=21)
    lists["query"].labels.shape          # (2100, 21) uint8
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError, MissingFileError

PathLike = Union[str, "os.PathLike[str]"]

SPLITS: Tuple[str, ...] = ("train", "query", "database")
"""The three splits, in the order the list files are read. ``query`` is read from the test list."""

FORMATS: Tuple[str, ...] = ("deephash", "prosgan")

# split -> candidate file names, first existing one wins (deephash), or (image list, label list)
_DEEPHASH_FILES: Dict[str, Tuple[str, ...]] = {
    "train": ("train.txt",),
    "query": ("test.txt", "query.txt"),
    "database": ("database.txt",),
}
_PROSGAN_FILES: Dict[str, Tuple[str, str]] = {
    "train": ("train_img.txt", "train_label.txt"),
    "query": ("test_img.txt", "test_label.txt"),
    "database": ("database_img.txt", "database_label.txt"),
}

_BINARY = frozenset("01")


# ---------------------------------------------------------------------------------------- errors


class DatasetFileNotFoundError(MissingFileError):
    """A file or directory a dataset needs does not exist (base of the three below)."""


class DataRootNotFoundError(DatasetFileNotFoundError):
    """The dataset directory (``root`` / ``--data-dir``) does not exist or is not a directory."""


class ListFileNotFoundError(DatasetFileNotFoundError):
    """A list file of the detected format is missing, or no list file of either format exists."""


class ImageNotFoundError(DatasetFileNotFoundError):
    """An image named in a list file does not exist."""


class ListFileError(InputError):
    """A list file is malformed: wrong label width, non-0/1 value, count mismatch, empty, ambiguous."""


def expected_files_text() -> str:
    """Human-readable list of the files looked for, in both formats (used by error messages)."""
    deephash = ", ".join(names[0] for names in _DEEPHASH_FILES.values())
    prosgan = ", ".join(f"{img} + {lab}" for img, lab in _PROSGAN_FILES.values())
    return (
        f"either {deephash} (one 'path 0 1 0 ...' line per image; DeepHash-pytorch / HashNet / DHTA "
        f"format, test.txt may be called query.txt) or {prosgan} (one path per line, and the matching "
        "0/1 label rows; ProS-GAN / SAAT format)"
    )


# ---------------------------------------------------------------------------------------- records


@dataclass
class ImageList:
    """The content of one split's list file(s).

    Attributes:
        paths: image paths exactly as written in the list (relative to the dataset root, or absolute).
        labels: (N, C) uint8 multi-hot matrix.
        line_numbers: (N,) 1-based line number of each path in ``source``, for error messages.
        source: the list file holding the paths.
        label_source: the separate label file (``"prosgan"`` format) or None.
    """

    paths: List[str]
    labels: np.ndarray
    line_numbers: np.ndarray
    source: Path
    label_source: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return int(self.labels.shape[1])

    def count_all_zero(self) -> int:
        """Rows with no label at all (present in FLICKR-25K and NUS-WIDE; kept, but worth reporting)."""
        return int((self.labels.sum(axis=1) == 0).sum())

    def count_duplicates(self) -> int:
        """Lines whose path already appeared earlier in the list (the FLICKR-25K train list has 504)."""
        return len(self.paths) - len(set(self.paths))

    def duplicate_lines(self) -> List[Tuple[int, int, str]]:
        """``(line, first line, path)`` of every line whose path already appeared on an earlier line."""
        first: Dict[str, int] = {}
        out = []
        for path, line in zip(self.paths, self.line_numbers.tolist(), strict=True):
            if path in first:
                out.append((int(line), first[path], path))
            else:
                first[path] = int(line)
        return out

    def all_zero_lines(self) -> List[int]:
        """The line numbers (in ``source``, the paths) of the images whose label row is all-zero."""
        return [int(self.line_numbers[i]) for i in np.flatnonzero(self.labels.sum(axis=1) == 0)]

    def describe_files(self) -> str:
        if self.label_source is None:
            return str(self.source)
        return f"{self.source} + {self.label_source}"


@dataclass
class ListLayout:
    """Which format was found in ``root`` and the file(s) of each split: (paths file, labels file or None)."""

    root: Path
    format: str
    files: Dict[str, Tuple[Path, Optional[Path]]] = field(default_factory=dict)

    def file_names(self) -> Dict[str, List[str]]:
        return {split: [str(f) for f in pair if f is not None] for split, pair in self.files.items()}


# ---------------------------------------------------------------------------------------- reading


def _read_lines(path: Path) -> List[str]:
    """The lines of a text file (UTF-8, optional BOM, any newline convention).

    Undecodable bytes are kept as surrogate escapes, so odd file names still map back to the bytes
    on disk through ``os.fsencode``.
    """
    path = Path(path)
    if not path.is_file():
        raise ListFileNotFoundError(f"list file {path} does not exist")
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None) as handle:
        text = handle.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _empty_error(path: Path, what: str) -> ListFileError:
    return ListFileError(f"list file {path} is empty: it must hold one {what} per line, one line per image")


def _width_error(
    path: Path, lineno: int, expected: int, found: int, *, with_path: bool, reference: Optional[str] = None
) -> ListFileError:
    """A row with ``found`` label columns where ``expected`` were due.

    ``reference`` says where ``expected`` comes from when it was inferred from the files (the
    first label row of this file or of the training list); None: the dataset's known class count.
    """
    if with_path:
        layout = "'path 0 1 0 ...': the image path, then one 0/1 column per class"
        hint = (
            " (the line holds only a path: is this a ProS-GAN '*_img.txt' list renamed?)"
            if found == 0
            else " (a path holding spaces also adds columns: paths must not contain spaces in this format)"
            if found > expected
            else ""
        )
    else:
        layout = "one space-separated 0/1 column per class"
        hint = ""
    if reference is None:
        why = f"the dataset has {expected} classes"
        fix = "Check that the list files belong to this dataset"
    else:
        why = f"the class count is taken from {reference}"
        fix = (
            "Every label row of every split (train, test, database) must have the same number of "
            "columns, one per class: fix this row or the reference row"
        )
    return ListFileError(
        f"{path}, line {lineno}: expected {expected} label columns ({why}), found {found}; each line "
        f"must be {layout}{hint}. {fix}"
    )


def _label_row(
    tokens: Sequence[str],
    expected: int,
    path: Path,
    lineno: int,
    *,
    with_path: bool,
    reference: Optional[str] = None,
) -> str:
    """Validate one label row and return it as a string of '0'/'1' characters."""
    if len(tokens) != expected:
        raise _width_error(path, lineno, expected, len(tokens), with_path=with_path, reference=reference)
    row = "".join(tokens)
    if len(row) == expected and _BINARY.issuperset(row):
        return row  # fast path: every token is a single '0' or '1'
    out = []
    for column, token in enumerate(tokens, start=1):
        try:
            value: Optional[float] = float(token)
        except ValueError:
            value = None
        if value == 0.0:
            out.append("0")
        elif value == 1.0:
            out.append("1")
        else:
            raise ListFileError(
                f"{path}, line {lineno}, label column {column}: value {token!r} is not 0 or 1; "
                "label rows must be multi-hot 0/1 vectors (one-hot for single-label datasets)"
            )
    return "".join(out)


def _rows_to_matrix(rows: List[str], num_classes: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, num_classes), dtype=np.uint8)
    flat = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8)
    return (flat - ord("0")).reshape(len(rows), num_classes)


def read_label_file(
    path: PathLike, num_classes: Optional[int] = None, *, reference: Optional[str] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Read a ``*_label.txt`` file: (labels (N, C) uint8, 1-based line numbers (N,)).

    ``num_classes`` None takes the width of the first row and requires every row to match it.
    ``reference`` (for error messages) says where a given ``num_classes`` was inferred from.
    """
    path = Path(path)
    rows: List[str] = []
    numbers: List[int] = []
    width = num_classes
    for lineno, line in enumerate(_read_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if width is None:
            width = len(tokens)
            reference = f"the first label row of this file, line {lineno}, which has {width} columns"
        rows.append(_label_row(tokens, width, path, lineno, with_path=False, reference=reference))
        numbers.append(lineno)
    if not rows:
        raise _empty_error(path, "space-separated 0/1 label row")
    return _rows_to_matrix(rows, int(width or 0)), np.asarray(numbers, dtype=np.int64)


def read_path_file(path: PathLike) -> Tuple[List[str], np.ndarray]:
    """Read a ``*_img.txt`` file: (paths, 1-based line numbers). The whole stripped line is the path."""
    path = Path(path)
    paths: List[str] = []
    numbers: List[int] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        entry = line.strip()
        if entry:
            paths.append(entry)
            numbers.append(lineno)
    if not paths:
        raise _empty_error(path, "image path")
    return paths, np.asarray(numbers, dtype=np.int64)


def read_path_label_list(
    path: PathLike, num_classes: Optional[int] = None, *, reference: Optional[str] = None
) -> ImageList:
    """Read a DeepHash-pytorch style list (``path 0 1 0 ...`` per line) into an :class:`ImageList`.

    ``num_classes`` None takes the width of the first line and requires every line to match it.
    ``reference`` (for error messages) says where a given ``num_classes`` was inferred from.
    """
    path = Path(path)
    paths: List[str] = []
    rows: List[str] = []
    numbers: List[int] = []
    width = num_classes
    for lineno, line in enumerate(_read_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if width is None:
            width = len(tokens) - 1
            if width == 0:
                raise ListFileError(
                    f"{path}, line {lineno}: found an image path but no label columns; each line must be "
                    "'path 0 1 0 ...': the image path, then one 0/1 column per class (is this a ProS-GAN "
                    "'*_img.txt' list renamed? Its labels belong in a matching '*_label.txt' file)"
                )
            reference = f"the first line of this file, line {lineno}, which has {width} label columns"
        paths.append(tokens[0])
        rows.append(_label_row(tokens[1:], width, path, lineno, with_path=True, reference=reference))
        numbers.append(lineno)
    if not paths:
        raise _empty_error(path, "'path 0 1 0 ...' entry")
    return ImageList(
        paths=paths,
        labels=_rows_to_matrix(rows, int(width or 0)),
        line_numbers=np.asarray(numbers, dtype=np.int64),
        source=path,
    )


def read_img_label_lists(
    img_path: PathLike,
    label_path: PathLike,
    num_classes: Optional[int] = None,
    *,
    reference: Optional[str] = None,
) -> ImageList:
    """Read a ProS-GAN style pair (``*_img.txt`` + ``*_label.txt``) into an :class:`ImageList`."""
    img_path, label_path = Path(img_path), Path(label_path)
    paths, numbers = read_path_file(img_path)
    labels, _ = read_label_file(label_path, num_classes, reference=reference)
    if len(paths) != labels.shape[0]:
        raise ListFileError(
            f"{img_path} lists {len(paths)} images but {label_path} has {labels.shape[0]} label rows; "
            "the two files must have one non-blank line per image, in the same order"
        )
    return ImageList(
        paths=paths, labels=labels, line_numbers=numbers, source=img_path, label_source=label_path
    )


# ---------------------------------------------------------------------------------------- layout


def _check_root(root: Path, dataset: str) -> None:
    if root.is_dir():
        return
    what = "is not a directory" if root.exists() else "does not exist"
    raise DataRootNotFoundError(
        f"{dataset} data directory {root} {what}. It must hold the images and the list files, "
        f"{expected_files_text()}; image paths in the lists are relative to it. Point --data-dir "
        "(root= in Python) at that directory"
    )


def holds_list_files(root: PathLike) -> bool:
    """Whether ``root`` holds at least one list file of either format (nothing is read)."""
    root = Path(root).expanduser()
    names = [n for names in _DEEPHASH_FILES.values() for n in names]
    names += [n for pair in _PROSGAN_FILES.values() for n in pair]
    return any((root / name).is_file() for name in names)


def find_list_files(
    root: PathLike, list_format: Optional[str] = None, *, dataset: str = "dataset"
) -> ListLayout:
    """Detect the list format in ``root`` and return the file(s) of every split.

    Args:
        root: the dataset directory.
        list_format: ``None`` (detect), ``"deephash"`` or ``"prosgan"``. Detection fails when files of
            both formats are present; pass the format explicitly then.
        dataset: the dataset name, for error messages.

    Raises:
        DataRootNotFoundError: ``root`` is missing. ListFileNotFoundError: no list file of either
        format, or one file of the detected format is missing. ListFileError: both formats present.
    """
    root = Path(root).expanduser()
    _check_root(root, dataset)
    if list_format is not None and list_format not in FORMATS:
        raise ValueError(f"list_format must be None (detect), 'deephash' or 'prosgan', got {list_format!r}")

    deephash_found = [n for names in _DEEPHASH_FILES.values() for n in names if (root / n).is_file()]
    prosgan_found = [n for pair in _PROSGAN_FILES.values() for n in pair if (root / n).is_file()]

    if list_format is None:
        if deephash_found and prosgan_found:
            raise ListFileError(
                f"{dataset} data directory {root} holds list files of both formats: "
                f"{', '.join(deephash_found)} (DeepHash-pytorch format) and {', '.join(prosgan_found)} "
                "(ProS-GAN format). Remove or rename one set, or choose one with list_format='deephash' "
                "or list_format='prosgan'"
            )
        if not deephash_found and not prosgan_found:
            raise ListFileNotFoundError(
                f"no list files found in the {dataset} data directory {root}; looked for "
                f"{expected_files_text()}. Is --data-dir pointing at the right directory?"
            )
        list_format = "deephash" if deephash_found else "prosgan"

    layout = ListLayout(root=root, format=list_format)
    missing: List[str] = []
    if list_format == "deephash":
        for split, names in _DEEPHASH_FILES.items():
            existing = [root / n for n in names if (root / n).is_file()]
            if existing:
                layout.files[split] = (existing[0], None)
            else:
                missing.append(" or ".join(names))
    else:
        for split, (img, lab) in _PROSGAN_FILES.items():
            for name in (img, lab):
                if not (root / name).is_file():
                    missing.append(name)
            layout.files[split] = (root / img, root / lab)
    if missing:
        found = deephash_found if list_format == "deephash" else prosgan_found
        raise ListFileNotFoundError(
            f"{dataset} data directory {root}: missing list file(s) {', '.join(missing)} of the "
            f"{list_format!r} format (found {', '.join(found) or 'none'}); every split needs its list: "
            f"{expected_files_text()}"
        )
    return layout


def read_split_list(
    layout: ListLayout, split: str, num_classes: Optional[int] = None, *, reference: Optional[str] = None
) -> ImageList:
    """Read one split of a detected layout (``reference``: where ``num_classes`` was inferred from)."""
    paths_file, labels_file = layout.files[split]
    if labels_file is None:
        return read_path_label_list(paths_file, num_classes, reference=reference)
    return read_img_label_lists(paths_file, labels_file, num_classes, reference=reference)


def read_splits(
    root: PathLike,
    num_classes: Optional[int] = None,
    *,
    list_format: Optional[str] = None,
    dataset: str = "dataset",
) -> Tuple[ListLayout, Dict[str, ImageList]]:
    """Detect the format in ``root`` and read the train, query (test) and database lists.

    With ``num_classes`` None the width of the first row of the training list is used and every
    other row of every list must match it; a mismatch raises :class:`ListFileError` naming the
    file, the line, the expected and the found widths, and the training row the width came from.
    """
    layout = find_list_files(root, list_format, dataset=dataset)
    lists: Dict[str, ImageList] = {}
    reference: Optional[str] = None
    for split in SPLITS:
        lists[split] = read_split_list(layout, split, num_classes, reference=reference)
        if num_classes is None:
            num_classes = lists[split].num_classes
            first = lists[split]
            reference = (
                f"the first label row of {first.label_source}, which has {num_classes} columns"
                if first.label_source is not None
                else f"line {int(first.line_numbers[0])} of {first.source}, which has {num_classes} label columns"
            )
    return layout, lists


def describe_lists(root: Path, layout: ListLayout, lists: Dict[str, ImageList], transform: Any, *, title: str) -> Dict[str, Any]:
    """The ``info`` of splits read from list files: where, which format and files, all-zero label
    rows and duplicated paths per split, the transform and a title."""
    return {
        "root": str(root),
        "format": layout.format,
        "list_files": layout.file_names(),
        "all_zero_labels": {split: lists[split].count_all_zero() for split in SPLITS},
        "duplicate_paths": {split: lists[split].count_duplicates() for split in SPLITS},
        "transform": transform.describe(),
        "title": title,
    }
