"""Image transforms of the papers: resize the shorter side, centre crop, float32 RGB in [0, 1].

ProS-GAN, THA and SAAT all evaluate with ``Resize(256)``, ``CenterCrop(224)``, ``ToTensor()`` and no
augmentation (METHODS.md section 2.2). There is deliberately **no** mean/std normalisation here:
``HashModel`` normalises internally, so attacks work in pixel units and eps = 8/255 means 8/255.

Example::

    transform = paper_transform(image_size=224, resize=256)
    x = transform(load_rgb("mirflickr/im1.jpg"))      # float32 (3, 224, 224) in [0, 1]
"""

from __future__ import annotations

import numbers
import os
from typing import Union

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_IMAGE_SIZE = 224
DEFAULT_RESIZE = 256


def check_sizes(image_size: int, resize: int) -> None:
    """Raise ``ValueError`` unless ``0 < image_size <= resize`` are integers."""
    for name, value in (("image_size", image_size), ("resize", resize)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name} must be a positive integer number of pixels, got {value!r}")
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


def paper_transform(image_size: int = DEFAULT_IMAGE_SIZE, resize: int = DEFAULT_RESIZE) -> PaperTransform:
    """The evaluation transform of ProS-GAN / THA / SAAT (no augmentation, no normalisation)."""
    return PaperTransform(image_size=image_size, resize=resize)
