"""Mainstay codes of SAAT (Xu et al., TIFS 2023, "Semantic-aware adversarial training"), Eq. 10-11.

The mainstay code of a label y minimises (SAAT Eq. 2-3)

    psi(b) = sum_{i in P} w_i D_H(b, b_i) - sum_{j in N} w_j D_H(b, b_j),
    w_i = s_i / |P|,  w_j = (1 - s_j) / |N|,  s = cos(y, y_i)                (Eq. 11)

over the attacker's reference codes (positives P share a label with y, negatives N do not), and by
SAAT Theorem 1 it is  b_m = sign( sum_P w_i b_i - sum_N w_j b_j )  (Eq. 10). For negatives s_j = 0,
so each negative weighs 1/|N|. An empty side contributes nothing (SAAT's code sets the infinite
normalisers of empty rows to 0). Untargeted attacks push away from b_m(y) (Eq. 13); targeted
attacks pull toward b_m(y_t) (Eq. 14).

``weighting="code"`` follows SAAT's public code (``generate_mainstay_code``) instead of Eq. 11: the
positive weights are divided by the sum of their cosine similarities, not by their number,

    w_i = s_i / sum_{i' in P} s_i',   w_j = 1 / |N|,

so each side sums to 1. On single-label data s_i = 1 on P and the two agree; on multi-label data
sum_P s_i < |P|, the positives weigh relatively more against the negatives, and some bits differ.
"""

from __future__ import annotations

import torch

from .similarity import cosine, shares
from .weighted import check_reference, weighted_sign

WEIGHTINGS = ("paper", "code")


def check_weighting(weighting: str) -> str:
    """``weighting`` if it is one of :data:`WEIGHTINGS`, else ``ValueError`` naming the choices."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown mainstay weighting {weighting!r}; valid choices: {', '.join(WEIGHTINGS)}")
    return weighting


def mainstay_weights(labels: torch.Tensor, ref_labels: torch.Tensor, weighting: str = "paper") -> torch.Tensor:
    """``(B, N)`` signed weights (positive on P, negative on N).

    ``"paper"``: SAAT Eq. 11, w_i = s_i / |P| and w_j = (1 - s_j) / |N|. ``"code"``: SAAT's public
    code, w_i = s_i / sum_P s and w_j = 1 / |N| (s_j = 0 on N, so the negatives agree).
    """
    pos = shares(labels, ref_labels)
    neg = 1.0 - pos
    s = cosine(labels, ref_labels)
    w_pos = pos * s / pos.sum(1, keepdim=True).clamp_min(1)
    if check_weighting(weighting) == "code":
        w_pos = pos * s / (pos * s).sum(1, keepdim=True).clamp_min(1e-12)  # positives have s > 0
    w_neg = neg * (1.0 - s) / neg.sum(1, keepdim=True).clamp_min(1)
    return w_pos - w_neg


def mainstay_codes(labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor,
                   weighting: str = "paper") -> torch.Tensor:
    """SAAT mainstay codes of a batch of labels, ``(B, K)`` float ±1 (Eq. 10 with the weights of
    Eq. 11, ``weighting="paper"``, or of SAAT's public code, ``weighting="code"``)."""
    # float64 weights: an exact tie sums to 0 up to a bounded rounding error (weighted_sum)
    labels, ref_labels = labels.to(ref_codes.device, torch.float64), ref_labels.to(ref_codes.device, torch.float64)
    check_reference(labels, ref_codes, ref_labels)
    weights = mainstay_weights(labels, ref_labels, weighting)
    return weighted_sign(weights, ref_codes)
