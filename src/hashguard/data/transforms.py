"""Image transforms: the papers' resize + centre crop, or the image as it is; float32 RGB in [0, 1].

ProS-GAN, THA and SAAT all evaluate with ``Resize(256)``, ``CenterCrop(224)``, ``ToTensor()`` and no
augmentation (docs/methods.md#input-normalisation): :class:`PaperTransform`. A user's own list-file dataset keeps
its images' own size by default: :class:`AsIsTransform` only converts them. There is deliberately
**no** mean/std normalisation here: ``HashModel`` normalises internally, so attacks work in pixel
units and eps = 8/255 means 8/255.

Example::

    transform = paper_transform(image_size=224, resize=256)
    x = transform(load_rgb("mirflickr/im1.jpg"))      # float32 (3, 224, 224) in [0, 1]
    AsIsTransform(size=(32, 32))(load_rgb("cells/a.png"))   # float32 (3, 32, 32), no resize
"""

from __future__ import annotations

import numbers
import os
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from ..errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_IMAGE_SIZE = 224
DEFAULT_RESIZE = 256


class ImageSizeError(InputError):
    """An image does not have the size its dataset expects (images are kept at their own size).

    ``found`` and ``expected`` are the ``(height, width)`` pairs when known.
    """

    def __init__(
        self,
        message: str,
        found: Optional[Tuple[int, int]] = None,
        expected: Optional[Tuple[int, int]] = None,
    ) -> None:
        super().__init__(message)
        self.found, self.expected = found, expected

    def __reduce__(self):  # keep found / expected through pickling (DataLoader workers)
        return type(self), (str(self), self.found, self.expected)


def size_mismatch_message(image: str, found: Tuple[int, int], expected: Tuple[int, int]) -> str:
    """The message of an image (``image`` names it) of size ``found`` in a dataset of ``expected``."""
    return (
        f"{image} is {found[0]}x{found[1]} (height x width) but the dataset's images are "
        f"{expected[0]}x{expected[1]} (the size of the first image of each split; images are kept at "
        "their own size by default). Pass image_size=N (--image-size N) to resize every image (shorter "
        "side to N, centre crop NxN), or make every image the same size"
    )


def check_pixels(name: str, value: object) -> int:
    """``value`` as an ``int``; ``ValueError`` unless it is a positive integer number of pixels."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer number of pixels, got {value!r}")
    return int(value)


def check_sizes(image_size: int, resize: int) -> None:
    """Raise ``ValueError`` unless ``0 < image_size <= resize`` are integers."""
    for name, value in (("image_size", image_size), ("resize", resize)):
        check_pixels(name, value)
    if resize < image_size:
        raise ValueError(
            f"resize ({resize}) must be at least image_size ({image_size}): the shorter side is resized "
            f"to {resize} pixels and then a {image_size}x{image_size} centre crop is taken "
            f"(the papers use resize=256, image_size=224)"
        )


def load_rgb(path: PathLike) -> Image.Image:
    """Open an image file with PIL and return it as 3-channel RGB.

    Grey ("L", "I;16", "1"), palette ("P"), CMYK and RGBA images are converted; the alpha channel is
    dropped, as ``Image.open(path).convert("RGB")`` in the research code does.
    """
    with Image.open(path) as image:
        image.load()  # read the pixels now, so the file is closed on return
        if image.mode == "RGB":
            return image.copy()
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            # 16-bit grey (PNG): convert("RGB") would clip at 255; rescale 0..65535 to 0..255 first
            grey = np.asarray(image, dtype=np.float64) / 257.0
            image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        return image.convert("RGB")


class PaperTransform:
    """PIL image -> float32 CHW tensor in [0, 1]: resize shorter side, centre crop, to tensor.

    Args:
        image_size: side of the square centre crop (224 in the papers).
        resize: the shorter image side is resized to this many pixels first (256 in the papers).

    Picklable, so it works in ``DataLoader`` worker processes.
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, resize: int = DEFAULT_RESIZE) -> None:
        check_sizes(image_size, resize)
        self.image_size = image_size = int(image_size)
        self.resize = resize = int(resize)
        self._pipeline = T.Compose(
            [
                T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR),
                T.CenterCrop(image_size),
                T.ToTensor(),
            ]
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self._pipeline(image)

    def __repr__(self) -> str:
        return f"PaperTransform(image_size={self.image_size}, resize={self.resize})"

    def describe(self) -> str:
        """One line for reports: what the transform does."""
        return (
            f"resize shorter side to {self.resize}, centre crop {self.image_size}x{self.image_size}, "
            "RGB float32 in [0, 1], no mean/std normalisation"
        )


def benchmark_sizes(image_size: Optional[int] = None, resize: Optional[int] = None) -> Tuple[int, int]:
    """``(image_size, resize)`` for a benchmark, keeping the papers' 224 / 256 ratio for a missing one.

    Neither given: the papers' 224 and 256. Only ``image_size``: ``resize`` is
    ``round(image_size * 256 / 224)`` (``image_size=112`` -> resize 128). Only ``resize``:
    ``image_size`` is ``round(resize * 224 / 256)``. Both: used as given (checked by
    :func:`check_sizes`).
    """
    if image_size is None and resize is None:
        return DEFAULT_IMAGE_SIZE, DEFAULT_RESIZE
    if resize is None:
        size = check_pixels("image_size", image_size)
        return size, max(size, round(size * DEFAULT_RESIZE / DEFAULT_IMAGE_SIZE))
    if image_size is None:
        side = check_pixels("resize", resize)
        return max(1, round(side * DEFAULT_IMAGE_SIZE / DEFAULT_RESIZE)), side
    return image_size, resize


class AsIsTransform:
    """PIL image -> float32 CHW RGB tensor in [0, 1] at the image's own size: no resize, no crop.

    Args:
        size: the ``(height, width)`` every image must have, or None to accept any size. An image
            of another size raises :class:`ImageSizeError` (a batch needs equal sizes; the dataset
            reading the file adds its path and list-file line to the message).

    Picklable, so it works in ``DataLoader`` worker processes.
    """

    def __init__(self, size: Optional[Tuple[int, int]] = None) -> None:
        if size is not None:
            if len(size) != 2:
                raise ValueError(f"size must be a (height, width) pair, got {size!r}")
            size = (check_pixels("height", size[0]), check_pixels("width", size[1]))
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.size is not None and (image.height, image.width) != self.size:
            found = (image.height, image.width)
            raise ImageSizeError(size_mismatch_message("the image", found, self.size), found, self.size)
        return T.functional.to_tensor(image)

    def __repr__(self) -> str:
        return f"AsIsTransform(size={self.size!r})"

    def describe(self) -> str:
        """One line for reports: what the transform does."""
        size = "their own size" if self.size is None else f"their own size {self.size[0]}x{self.size[1]}"
        return f"images kept at {size} (no resize or crop), RGB float32 in [0, 1], no mean/std normalisation"


def paper_transform(image_size: int = DEFAULT_IMAGE_SIZE, resize: int = DEFAULT_RESIZE) -> PaperTransform:
    """The evaluation transform of ProS-GAN / THA / SAAT (no augmentation, no normalisation)."""
    return PaperTransform(image_size=image_size, resize=resize)
