"""CSQ: central similarity quantisation with hash centres (Yuan et al., CVPR 2020, Eq. 3-8).

Each class owns a hash centre: rows of a Hadamard matrix stacked as [H; -H] (2K centres; any two
are K/2 apart except a row and its negation, which are K apart) when K is a power of two and the
classes fit (C <= 2K); otherwise random balanced centres (half of the bits +1), keeping the draw
with the largest minimum distance out of 20, accepting early once min > K/4 and mean >= K/2, and
always distinct (Sec. 3.2; this also covers 48 bits, where the public code fails, docs/methods.md#objectives).
A multi-label item's centre is sign(sum of its classes' centres), with ties (zeros) filled from a
fixed random centre. The loss is

    L = BCE((u + 1) / 2, (c + 1) / 2) + lambda * mean((|u| - 1)^2),   lambda = 1e-4.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .base import HashingObjective, register_hashing


def hadamard(n: int) -> torch.Tensor:
    """Sylvester Hadamard matrix of order ``n`` (a power of two), entries +-1."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power-of-two order, got {n}")
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def _balanced_draw(n: int, bits: int, generator: torch.Generator) -> torch.Tensor:
    ranks = torch.rand(n, bits, generator=generator).argsort(dim=1)
    return torch.where(ranks < bits // 2, 1.0, -1.0)


def random_balanced_centers(num_classes: int, bits: int, generator: torch.Generator, tries: int = 20) -> torch.Tensor:
    """``num_classes`` distinct random centres with half of the bits +1, well spread in Hamming space."""
    if num_classes > math.comb(bits, bits // 2):
        raise ValueError(
            f"{num_classes} classes need more distinct balanced {bits}-bit centres than exist "
            f"({math.comb(bits, bits // 2)}); use more bits"
        )
    best: Optional[torch.Tensor] = None
    best_min = -1.0
    for _ in range(tries):
        centers = _balanced_draw(num_classes, bits, generator)
        dist = 0.5 * (bits - centers @ centers.t())
        off = dist[~torch.eye(num_classes, dtype=torch.bool)]
        low = float(off.min()) if off.numel() else float(bits)
        if low > best_min:
            best, best_min = centers, low
        if low > bits / 4 and (not off.numel() or float(off.mean()) >= bits / 2):
            break
    assert best is not None  # the first draw always beats -1 (tries >= 1)
    for _ in range(10_000):  # tiny codes: redraw repeated centres until all are distinct
        same = (best @ best.t() == bits) & torch.ones(num_classes, num_classes, dtype=torch.bool).triu(diagonal=1)
        repeated = same.any(dim=0)  # a centre equal to an earlier one
        if not repeated.any():
            break
        best[repeated] = _balanced_draw(int(repeated.sum()), bits, generator)
    return best


def hash_centers(num_classes: int, bits: int, seed: int = 0) -> torch.Tensor:
    """The (num_classes, bits) +-1 class centres used by CSQ."""
    gen = torch.Generator().manual_seed(seed)
    if bits & (bits - 1) == 0 and num_classes <= 2 * bits:
        h = hadamard(bits)
        return torch.cat([h, -h], 0)[:num_classes]
    return random_balanced_centers(num_classes, bits, gen)


@register_hashing("csq")
class CSQ(HashingObjective):
    centers: torch.Tensor  # buffers (register_buffer)
    tie_center: torch.Tensor

    name = "csq"

    def __init__(self, *, bits: int, train_labels: torch.Tensor, quantisation: float = 1e-4, center_seed: int = 0) -> None:
        super().__init__(bits=bits, train_labels=train_labels)
        self.quantisation = float(quantisation)
        self.center_seed = int(center_seed)
        self.register_buffer("centers", hash_centers(train_labels.shape[1], bits, center_seed))
        gen = torch.Generator().manual_seed(center_seed + 1)
        self.register_buffer("tie_center", torch.where(torch.rand(bits, generator=gen) < 0.5, 1.0, -1.0))

    def hparams(self):
        return {"quantisation": self.quantisation, "center_seed": self.center_seed}

    def item_centers(self, y: torch.Tensor) -> torch.Tensor:
        s = torch.sign(y @ self.centers)
        return torch.where(s == 0, self.tie_center.expand_as(s), s)

    def loss(self, u: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        self.update_buffer(u, idx)
        c = self.item_centers(y)
        central = F.binary_cross_entropy((u + 1) / 2, (c + 1) / 2)
        return central + self.quantisation * (u.abs() - 1).pow(2).mean()
