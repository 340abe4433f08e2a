"""On-disk cache for generated datasets: ``$HASHGUARD_CACHE`` or ``~/.cache/hashguard``.

Writes are atomic (temporary file in the same folder, then ``os.replace``) so a build killed
half-way never leaves a truncated file that a later run would trust.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Dict

import torch


def cache_dir() -> Path:
    """The cache folder, created on first use."""
    root = os.environ.get("HASHGUARD_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "hashguard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cached_tensors(name: str, build: Callable[[], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Load the tensor dict cached under ``name`` or build, save and return it."""
    path = cache_dir() / name
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a corrupt cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    tensors = build()
    atomic_torch_save(tensors, path)
    return tensors
