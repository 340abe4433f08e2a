"""Label similarities between a batch of labels and a reference set, as matrices.

Every code builder of this package weighs the reference codes by how similar their labels are to
the query (or target) label. All functions take multi-hot 0/1 label matrices ``y`` ``(B, C)`` and
``ref`` ``(N, C)`` (tensors on one device) and return a ``(B, N)`` float matrix computed with
one matrix product, never a per-sample Python loop. The result is float64 when either input is
float64 (the closed-form builders use that so that exact ties of their weighted sums come out as
0 up to a tiny, bounded rounding error), else float32.

- ``shares``: 1 where the two label rows share at least one label (the positives), else 0.
- ``cosine``: <y, y_j> / (|y| |y_j|) (SAAT Eq. 11).
- ``dice``: 2 |y ∩ y_j| / (|y| + |y_j|) (PgA Eq. 8).
- ``jaccard``: |y ∩ y_j| / |y ∪ y_j| (CgAT's weight, which its public code then discards).

An all-zero label row has similarity 0 to everything (no division by zero).
"""

from __future__ import annotations

import torch


def _dtype(y: torch.Tensor, ref: torch.Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (y.dtype, ref.dtype) else torch.float32


def _overlap(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    dtype = _dtype(y, ref)
    return y.to(dtype) @ ref.to(dtype).t()


def shares(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """1.0 where label rows share a label (inner product > 0), else 0.0; shape (B, N)."""
    return (_overlap(y, ref) > 0).to(_dtype(y, ref))


def cosine(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of label rows (SAAT Eq. 11), 0 for an all-zero row; shape (B, N)."""
    dtype = _dtype(y, ref)
    ny = y.to(dtype).norm(dim=1, keepdim=True)
    nr = ref.to(dtype).norm(dim=1, keepdim=True)
    denom = ny @ nr.t()
    return torch.where(denom > 0, _overlap(y, ref) / denom.clamp_min(1e-12), torch.zeros_like(denom))


def dice(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Dice coefficient of label rows (PgA Eq. 8), 0 when both rows are empty; shape (B, N)."""
    dtype = _dtype(y, ref)
    denom = y.to(dtype).sum(1, keepdim=True) + ref.to(dtype).sum(1).unsqueeze(0)
    return torch.where(denom > 0, 2 * _overlap(y, ref) / denom.clamp_min(1e-12), torch.zeros_like(denom))


def jaccard(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Jaccard index of label rows, 0 when both rows are empty; shape (B, N)."""
    inter = _overlap(y, ref)
    dtype = _dtype(y, ref)
    union = y.to(dtype).sum(1, keepdim=True) + ref.to(dtype).sum(1).unsqueeze(0) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))
