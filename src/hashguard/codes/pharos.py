"""Pharos codes of PgA (Wang et al., "Reliable and efficient evaluation of adversarial robustness
for deep hashing-based retrieval", the pharos-guided attack), Eq. 6-8.

The pharos code of a label y minimises (PgA Eq. 6)

    psi(b) = sum_{i in P} sum_{j in N} [ w_i D_H(b, b_i) - w_j D_H(b, b_j) ],
    w_i = s_i,  w_j = 1 - s_j,  s = Dice(y, y_i) = 2|y ∩ y_i| / (|y| + |y_i|)        (Eq. 8)

and by PGM (Eq. 7, proof in PgA Appendix A.1) it is

    b* = sign( sum_i sum_j (w_i b_i - w_j b_j) ) = sign( |N| sum_P w_i b_i - |P| sum_N w_j b_j ).

The double sum counts every positive |N| times and every negative |P| times; negatives have
s_j = 0, so w_j = 1. Without positives (or negatives) the double sum is empty and we fall back to
the side that exists (sign of the positive or the negated negative sum), which keeps the code the
minimiser of the one remaining term. PgA attacks push away from b*(y) (Eq. 9-13); the targeted
variant pulls toward b*(y_t).
"""

from __future__ import annotations

import torch

from .similarity import dice, shares
from .weighted import check_reference, weighted_sign


def pharos_weights(labels: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` signed weights of PgA Eq. 7-8, double sum expanded (see the module docstring)."""
    pos = shares(labels, ref_labels)
    neg = 1.0 - pos
    n_pos = pos.sum(1, keepdim=True)
    n_neg = neg.sum(1, keepdim=True)
    s = dice(labels, ref_labels)
    # multiplicities of the double sum; a missing side multiplies the other by 1 instead of 0
    w_pos = pos * s * torch.where(n_neg > 0, n_neg, torch.ones_like(n_neg))
    w_neg = neg * (1.0 - s) * torch.where(n_pos > 0, n_pos, torch.ones_like(n_pos))
    return w_pos - w_neg


def pharos_codes(labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """PgA pharos codes of a batch of labels, ``(B, K)`` float ±1 (Eq. 7-8)."""
    # float64 weights: an exact tie sums to 0 up to a bounded rounding error (weighted_sum)
    labels, ref_labels = labels.to(ref_codes.device, torch.float64), ref_labels.to(ref_codes.device, torch.float64)
    check_reference(labels, ref_codes, ref_labels)
    return weighted_sign(pharos_weights(labels, ref_labels), ref_codes)
