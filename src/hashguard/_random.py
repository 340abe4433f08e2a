"""Per-sample random streams, so that an attack's randomness does not depend on the batch.

Attacks draw random starts, noise and anchor samples per query from a generator seeded by
``(seed, sample id)``; a query therefore gets the same numbers whether it is attacked alone or in
a batch of 500, which is what makes "batched equals one at a time" hold under a seed.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads (seed, id) pairs over 63-bit seeds


def sample_generators(seed: int, ids: Sequence[int], device: Any = None) -> List[torch.Generator]:
    """One CPU ``torch.Generator`` per sample id, seeded by ``(seed, id)``.

    The streams always live on the CPU (``device`` is accepted and ignored) so that a seed gives
    the same numbers on every device; :func:`per_sample_rand` moves the draws where they are used.
    """
    gens = []
    for i in ids:
        g = torch.Generator()
        g.manual_seed(((int(seed) * _MIX) ^ (int(i) + 1) * 0xBF58476D1CE4E5B9) % (2**63 - 1))
        gens.append(g)
    return gens


def per_sample_rand(gens: Sequence[torch.Generator], shape: Sequence[int], device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform [0, 1) tensor of shape ``(len(gens), *shape)``; row i drawn from ``gens[i]``."""
    if not gens:
        return torch.empty(0, *shape, device=device, dtype=dtype)
    return torch.stack([torch.rand(*shape, generator=g, dtype=dtype) for g in gens]).to(device)


def default_ids(n: int, ids: Optional[Sequence[int]]) -> List[int]:
    """``ids`` as a list of ints (checked against ``n``), or ``0..n-1``."""
    if ids is None:
        return list(range(n))
    ids = [int(i) for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids)]
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} sample ids for {n} images; pass one id per image")
    return ids
