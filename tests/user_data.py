"""Data a user brings: 32x32 PNGs with 5 labels (multi-label) in the standard list-file format,
written by the tests that play a new user, and read back the way her own code would."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def _image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image: one faint coloured square per label at the label's own place, on noise
    (faint, so that an 8/255 perturbation can move the codes)."""
    img = rng.integers(60, 190, size=(32, 32, 3)).astype(np.int16)
    places = [(2, 2), (2, 18), (18, 2), (18, 18), (9, 9)]
    colours = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1)]
    for k in np.flatnonzero(labels):
        r, c = places[k]
        img[r : r + 12, c : c + 12] += np.array(colours[k], dtype=np.int16) * 40
    return np.clip(img, 0, 255).astype(np.uint8)


def write_lists(root, sizes=(("train", 80), ("test", 24), ("database", 120)), seed=0):
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        lines = []
        for i in range(n):
            labels = np.zeros(5, dtype=int)
            labels[rng.choice(5, size=rng.integers(1, 3), replace=False)] = 1
            path = f"img/{split}_{i}.png"
            Image.fromarray(_image(labels, rng)).save(root / path)
            lines.append(path + " " + " ".join(map(str, labels)))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def write_noise_lists(root, sizes=(("train", 12), ("test", 6), ("database", 12)), *, size=8, seed=0):
    """Single-label list files (3 classes, item i in class i % 3) of random-noise PNGs: the lists and
    labels are the same for every ``seed``, only the pixels change."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        lines = []
        for i in range(n):
            path = f"img/{split}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / path)
            lines.append(path + " " + " ".join("1" if c == i % 3 else "0" for c in range(3)))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def read_split(root, split):
    """The user's own loader: images in [0, 1] and labels, straight from the list file."""
    xs, ys = [], []
    for line in (root / f"{split}.txt").read_text().split("\n"):
        if line:
            path, *labels = line.split()
            xs.append(torch.from_numpy(np.array(Image.open(root / path).convert("RGB"))).permute(2, 0, 1).float() / 255)
            ys.append([float(v) for v in labels])
    return torch.stack(xs), torch.tensor(ys)
