"""``ImageListDataset``: images on disk named by a list file, loaded lazily with PIL.

Holds the image paths and the (N, C) float32 label matrix; ``labels`` is available without reading
a single image. Each item is ``(image, label, index)`` with a float32 CHW image in [0, 1] (the
paper transform by default: resize 256, centre crop 224, no normalisation).

Example::

    from hashguard.data.list_files import read_path_label_list
    items = read_path_label_list("data/coco/test.txt", num_classes=80)
    query = ImageListDataset.from_image_list(items, root="data/coco")
    x, y, i = query[0]            # (3, 224, 224) float32, (80,) float32, 0
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ..errors import UnreadableFileError
from .base import ImageDataset
from .list_files import ImageList, ImageNotFoundError
from .transforms import ImageSizeError, PaperTransform, load_rgb, size_mismatch_message

PathLike = Union[str, "os.PathLike[str]"]


class ImageReadError(UnreadableFileError):
    """An image file exists but PIL cannot decode it (truncated download, not an image, ...)."""


class ImageListDataset(ImageDataset):
    """Images named by paths (relative to ``root`` or absolute) with a multi-hot label matrix.

    Args:
        paths: one image path per item, relative to ``root`` (or absolute; then ``root`` is ignored).
        labels: (N, C) multi-hot labels (tensor or array), stored as float32.
        root: the directory relative paths start from (the dataset directory). None: the current
            directory.
        transform: PIL RGB image -> tensor; default the paper transform (resize 256, crop 224).
            An :class:`~hashguard.data.transforms.ImageSizeError` it raises (``AsIsTransform``
            given an image of another size) is re-raised naming the file and its list-file line.
        check_files: check at construction that every image exists and is not empty (one ``stat``
            per image, a fraction of a second for 100k images) and raise :class:`ImageNotFoundError`
            or :class:`ImageReadError` otherwise. A truncated or corrupt file is found when it is
            loaded; that error names the file and its list-file line too.
        source: the list file the paths come from, and ``line_numbers`` their 1-based lines in it,
            only for error messages.

    Paths are stored as one numpy byte-string array rather than a list of Python strings, so
    ``DataLoader`` workers do not copy them page by page through reference counting.
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        labels: Union[torch.Tensor, np.ndarray],
        *,
        root: Optional[PathLike] = None,
        transform: Optional[Callable] = None,
        check_files: bool = True,
        source: Optional[PathLike] = None,
        line_numbers: Optional[Union[Sequence[int], np.ndarray]] = None,
    ) -> None:
        labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        if labels.dim() != 2:
            raise ValueError(f"labels must be an (N, C) multi-hot matrix, got shape {tuple(labels.shape)}")
        if labels.shape[0] != len(paths):
            raise ValueError(
                f"got {len(paths)} image paths but {labels.shape[0]} label rows; they must match"
            )
        if line_numbers is not None and len(line_numbers) != len(paths):
            raise ValueError(f"got {len(paths)} image paths but {len(line_numbers)} line numbers")
        self.labels = labels.to(torch.float32).contiguous()
        self.root = None if root is None else Path(root).expanduser()
        self.transform = transform if transform is not None else PaperTransform()
        self.source = None if source is None else Path(source)
        self.line_numbers = None if line_numbers is None else np.asarray(line_numbers, dtype=np.int64)
        base = "" if self.root is None else os.fspath(self.root)
        resolved = [os.path.join(base, os.fspath(p)) for p in paths]
        encoded = [os.fsencode(p) for p in resolved]
        self._paths = np.array(encoded, dtype=np.bytes_) if encoded else np.zeros(0, dtype="S1")
        if check_files:
            self._check_exist(resolved)

    @classmethod
    def from_image_list(
        cls,
        image_list: ImageList,
        root: Optional[PathLike] = None,
        *,
        transform: Optional[Callable] = None,
        check_files: bool = True,
    ) -> ImageListDataset:
        """Build from a parsed list (:mod:`hashguard.data.list_files`); paths relative to ``root``."""
        return cls(
            image_list.paths,
            torch.from_numpy(image_list.labels.astype(np.float32)),
            root=root,
            transform=transform,
            check_files=check_files,
            source=image_list.source,
            line_numbers=image_list.line_numbers,
        )

    # ------------------------------------------------------------------------------ paths

    def path(self, index: int) -> str:
        """The resolved path of item ``index``."""
        return os.fsdecode(bytes(self._paths[index]))

    @property
    def paths(self) -> List[str]:
        return [os.fsdecode(bytes(p)) for p in self._paths]

    def _where(self, index: int) -> str:
        if self.source is None:
            return f"item {index}"
        line = int(self.line_numbers[index]) if self.line_numbers is not None else index + 1
        return f"line {line} of {self.source}"

    def missing_files(self) -> np.ndarray:
        """Indices of the items whose image file does not exist."""
        return self._find_missing(self.paths)

    @staticmethod
    def _find_missing(resolved: Sequence[str]) -> np.ndarray:
        isfile = os.path.isfile
        return np.asarray([i for i, p in enumerate(resolved) if not isfile(p)], dtype=np.int64)

    @staticmethod
    def _scan(resolved: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """Indices of the missing images and of the empty ones (0 bytes: a copy cut short), one stat each."""
        missing, empty = [], []
        for i, p in enumerate(resolved):
            try:
                st = os.stat(p)
            except OSError:
                missing.append(i)
                continue
            if not stat.S_ISREG(st.st_mode):
                missing.append(i)
            elif st.st_size == 0:
                empty.append(i)
        return np.asarray(missing, dtype=np.int64), np.asarray(empty, dtype=np.int64)

    def _check_exist(self, resolved: Sequence[str]) -> None:
        missing, empty = self._scan(resolved)
        if missing.size == 0:
            if empty.size:
                first = int(empty[0])
                more = f"; {empty.size} of the {len(resolved)} listed images are empty" if empty.size > 1 else ""
                raise ImageReadError(
                    f"image {resolved[first]} ({self._where(first)}) is an empty file (0 bytes){more}: the download or "
                    "copy was cut short; download it again, or remove its line from the list"
                )
            return
        first = int(missing[0])
        message = f"image {resolved[first]} ({self._where(first)}) does not exist"
        if missing.size > 1:
            message += f"; {missing.size} of the {len(resolved)} listed images are missing"
        if missing.size == len(resolved) and self.root is not None:
            message += (
                f". None of the images exist: relative image paths are read from the data directory "
                f"{self.root}; point --data-dir at the directory that the paths in the list start from"
            )
        else:
            message += ". Restore the missing files, or remove their lines from the list"
        raise ImageNotFoundError(message)

    # ------------------------------------------------------------------------------ items

    def _read_error(self, exc: BaseException, path: str, index: int) -> OSError:
        """The error to raise when opening image ``index`` (at ``path``) failed with ``exc``."""
        where = f"{path} ({self._where(index)})"
        if isinstance(exc, FileNotFoundError):
            return ImageNotFoundError(f"image {where} does not exist")
        if isinstance(exc, (PermissionError, IsADirectoryError)):
            return ImageReadError(f"cannot open image {where}: {exc}; check the path and its permissions")
        return ImageReadError(
            f"cannot read image {where}: {exc}; the file may be truncated or not an image: download it again"
        )

    def load_image(self, index: int) -> torch.Tensor:
        path = self.path(index)
        try:
            image = load_rgb(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
            raise self._read_error(exc, path, index) from (None if isinstance(exc, FileNotFoundError) else exc)
        try:
            return self.transform(image)
        except ImageSizeError as exc:
            if exc.found is None or exc.expected is None:
                raise ImageSizeError(f"image {self.where(index)}: {exc}") from None
            message = size_mismatch_message(f"image {self.where(index)}", exc.found, exc.expected)
            raise ImageSizeError(message, exc.found, exc.expected) from None

    def image_size(self, index: int) -> Tuple[int, int]:
        """``(height, width)`` of image ``index`` on disk, from its header (the pixels are not decoded)."""
        path = self.path(index)
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise self._read_error(exc, path, index) from (None if isinstance(exc, FileNotFoundError) else exc)
        return int(height), int(width)

    def where(self, index: int) -> str:
        """``path (line L of LIST)`` of item ``index``, for error messages."""
        return f"{self.path(index)} ({self._where(index)})"

    def __repr__(self) -> str:
        where = f", source={str(self.source)!r}" if self.source is not None else ""
        return (
            f"{type(self).__name__}(n={len(self)}, num_classes={self.num_classes}{where}, "
            f"transform={self.transform!r})"
        )
