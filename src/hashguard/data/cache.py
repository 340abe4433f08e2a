"""On-disk cache for generated datasets: ``$HASHGUARD_CACHE`` or ``~/.cache/hashguard``.

Writes are atomic (``hashguard._atomic``), so a build killed half-way never leaves a truncated file
that a later run would trust.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict

import torch

from .._atomic import atomic_torch_save


def cache_dir() -> Path:
    """The cache folder, created on first use."""
    root = os.environ.get("HASHGUARD_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "hashguard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_tensors(name: str, build: Callable[[], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Load the tensor dict cached under ``name`` or build, save and return it.

    A cache that cannot be written (read-only home, full disk) costs a rebuild next time, never the
    run: the built tensors are returned with a warning."""
    import warnings

    try:
        path = cache_dir() / name
    except OSError as err:
        warnings.warn(f"no dataset cache ({err}); set HASHGUARD_CACHE to a writable folder", stacklevel=2)
        return build()
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a corrupt cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    tensors = build()
    try:
        atomic_torch_save(tensors, path)
    except OSError as err:  # DiskFullError, OutputPathError, PermissionError
        warnings.warn(f"could not cache {name} ({err}); it is rebuilt next time", stacklevel=2)
    return tensors
