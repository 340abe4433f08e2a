"""Mainstay codes of SAAT (Xu et al., TIFS 2023, "Semantic-aware adversarial training"), Eq. 10-11.

The mainstay code of a label y minimises (SAAT Eq. 2-3)

    psi(b) = sum_{i in P} w_i D_H(b, b_i) - sum_{j in N} w_j D_H(b, b_j),
    w_i = s_i / |P|,  w_j = (1 - s_j) / |N|,  s = cos(y, y_i)                (Eq. 11)

over the attacker's reference codes (positives P share a label with y, negatives N do not), and by
SAAT Theorem 1 it is  b_m = sign( sum_P w_i b_i - sum_N w_j b_j )  (Eq. 10). For negatives s_j = 0,
so each negative weighs 1/|N|. An empty side contributes nothing (SAAT's code sets the infinite
normalisers of empty rows to 0). Untargeted attacks push away from b_m(y) (Eq. 13); targeted
attacks pull toward b_m(y_t) (Eq. 14).
"""

from __future__ import annotations

import torch

from .similarity import cosine, shares
from .weighted import check_reference, weighted_sign


def mainstay_weights(labels: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` signed weights of SAAT Eq. 11 (positive on P, negative on N)."""
    pos = shares(labels, ref_labels)
    neg = 1.0 - pos
    s = cosine(labels, ref_labels)
    w_pos = pos * s / pos.sum(1, keepdim=True).clamp_min(1)
    w_neg = neg * (1.0 - s) / neg.sum(1, keepdim=True).clamp_min(1)
    return w_pos - w_neg


def mainstay_codes(labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """SAAT mainstay codes of a batch of labels, ``(B, K)`` float ±1 (Eq. 10-11)."""
    # float64 weights: an exact tie sums to 0 up to a bounded rounding error (weighted_sum)
    labels, ref_labels = labels.to(ref_codes.device, torch.float64), ref_labels.to(ref_codes.device, torch.float64)
    check_reference(labels, ref_codes, ref_labels)
    return weighted_sign(mainstay_weights(labels, ref_labels), ref_codes)
