"""A fingerprint of some items of a split: which images (and labels) they are, so that a saved
protocol of query indices is never applied to other data read under the same dataset name
(``--data-dir OTHER``).

- images read from disk (:class:`ImageListDataset`): each image's path relative to the dataset
  folder and the SHA-256 of its file (a copy of the folder elsewhere keeps the fingerprint; other
  or re-encoded images change it), and the labels;
- images in memory: the bytes of the images and the labels;
- a subset: its parent's items at the mapped indices.

Only the given items are read (the queries a protocol attacks, which the attack loads anyway).

Example::

    split_fingerprint(splits.query, [3, 17, 42])      # 'c0f1...' (SHA-256, hex)
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence

import numpy as np
import torch


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def _update(digest, dataset, indices: np.ndarray) -> None:
    labels = np.ascontiguousarray(torch.as_tensor(dataset.labels)[torch.as_tensor(indices)].to(torch.uint8).numpy())
    digest.update(str(labels.shape).encode())
    digest.update(labels.tobytes())
    parent = getattr(dataset, "parent", None)
    if parent is not None:
        _update(digest, parent, torch.as_tensor(dataset.indices).numpy()[indices])
        return
    paths = getattr(dataset, "_paths", None)
    if paths is not None:
        root = None if getattr(dataset, "root", None) is None else os.fspath(dataset.root)
        for i in indices:
            path = os.fsdecode(bytes(paths[int(i)]))
            name = os.path.relpath(path, root) if root else path
            digest.update(f"{name}\0{_file_digest(path)}\n".encode("utf-8", "surrogateescape"))
        return
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor):
        chosen = images[torch.as_tensor(indices)].detach().cpu().contiguous()
        digest.update(str((tuple(chosen.shape), str(chosen.dtype))).encode())
        digest.update(chosen.numpy().tobytes())


def split_fingerprint(dataset, indices: Optional[Sequence[int] | np.ndarray] = None) -> str:
    """SHA-256 (hex) of the images and labels of ``dataset`` at ``indices`` (None: every item)."""
    index = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    digest = hashlib.sha256()
    _update(digest, dataset, index)
    return digest.hexdigest()


__all__ = ["split_fingerprint"]
