"""Anchor codes of P2P and DHTA (Bai et al., ECCV 2020, "Targeted attack for deep hashing based
retrieval"), Section 3.2.

For a target label y_t, DHTA samples n_t distinct reference codes that carry exactly the label y_t
and takes their component-wise majority

    a = sign( sum_{j=1..n_t} b_j ),                                         (DHTA Eq. 4)

which minimises ``sum_j D_H(a, b_j)`` over {-1, +1}^K. n_t = 9 gives DHTA; n_t = 1 gives P2P
(the code of a single sample of the target label). As in the original code we sample **without**
replacement (some re-implementations sample with replacement, which can repeat a code), and an
odd n_t means a vote can never tie. When fewer than n_t reference samples carry the exact label,
all of them are used; when none does, the candidates widen to samples sharing at least one label
with y_t. The sample drawn for a query depends only on ``(seed, id)`` (see ``hashguard._random``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .._random import default_ids, per_sample_rand, sample_generators
from .similarity import shares
from .weighted import check_reference, weighted_sign


def anchor_codes(
    labels: torch.Tensor,
    ref_codes: torch.Tensor,
    ref_labels: torch.Tensor,
    *,
    n_anchors: int = 9,
    seed: int = 0,
    ids: Optional[Sequence[int]] = None,
    return_indices: bool = False,
) -> torch.Tensor | Tuple[torch.Tensor, torch.Tensor]:
    """DHTA / P2P anchor codes of a batch of target labels, ``(B, K)`` float ±1.

    Args:
        labels: ``(B, C)`` target labels.
        ref_codes, ref_labels: the attacker's reference set, ``(N, K)`` ±1 and ``(N, C)``.
        n_anchors: n_t, the number of distinct samples voted (9: DHTA, 1: P2P).
        seed, ids: the sample drawn for row i depends only on ``(seed, ids[i])``
            (default ids ``0..B-1``).
        return_indices: also return the ``(B, min(n_anchors, N))`` reference indices used
            (-1 = unused: fewer candidates than n_anchors).
    """
    if int(n_anchors) < 1:
        raise ValueError(f"n_anchors must be a positive integer, got {n_anchors}")
    device = ref_codes.device
    labels, ref_labels = labels.to(device).float(), ref_labels.to(device).float()
    check_reference(labels, ref_codes, ref_labels)
    b, n = labels.shape[0], ref_codes.shape[0]
    k = min(int(n_anchors), n)
    # exact label match through row ids of the distinct label rows: (B, N), never (B, N, C)
    _, row_id = torch.unique(torch.cat([labels, ref_labels]), dim=0, return_inverse=True)
    exact = row_id[:b].unsqueeze(1) == row_id[b:].unsqueeze(0)
    fallback = ~exact.any(1, keepdim=True)
    candidates = exact | (fallback & (shares(labels, ref_labels) > 0))
    keys = per_sample_rand(sample_generators(seed, default_ids(b, ids)), (n,), device=device)
    keys = torch.where(candidates, keys, torch.full_like(keys, 2.0))
    chosen_keys, chosen = keys.topk(k, dim=1, largest=False) if k else (keys[:, :0], keys[:, :0].long())
    valid = chosen_keys < 2.0
    weights = torch.zeros(b, n, device=device)
    weights.scatter_(1, chosen, valid.float())
    codes = weighted_sign(weights, ref_codes, exact=True)
    if return_indices:
        return codes, torch.where(valid, chosen, torch.full_like(chosen, -1))
    return codes
