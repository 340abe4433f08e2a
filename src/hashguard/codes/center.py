"""Centre codes of CgAT (Wang et al., WWW 2023, "CgAT: center-guided adversarial training").

For a label y and the attacker's reference set (codes b_j, labels y_j), the centre code is

    c = sign( mean_{j in P} b_j - mean_{j in N} b_j ),

P the reference samples sharing a label with y, N the others. The public CgAT code computes a
Jaccard weight and then discards it (docs/methods.md#centre-code-cgat); what it computes is exactly this balanced
difference of means, the minimiser of ``sum_P D_H(b, b_j)/|P| - sum_N D_H(b, b_j)/|N|``.
An empty side contributes nothing. Untargeted attacks push away from c(y); targeted ones pull
toward c(y_t).

The sign is computed from the same sum scaled by |P||N| (weights |N| on positives, -|P| on
negatives), which has the same sign and is an integer, so a tie is exactly 0 and gives +1.
"""

from __future__ import annotations

import torch

from .similarity import shares
from .weighted import check_reference, weighted_sign


def center_weights(labels: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` weights ``1/|P|`` on positives and ``-1/|N|`` on negatives."""
    pos = shares(labels, ref_labels)
    neg = 1.0 - pos
    return pos / pos.sum(1, keepdim=True).clamp_min(1) - neg / neg.sum(1, keepdim=True).clamp_min(1)


def center_integer_weights(labels: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """``center_weights`` times ``max(|P|, 1) * max(|N|, 1)``: integer weights of the same sign sum."""
    pos = shares(labels, ref_labels).to(torch.float64)
    neg = 1.0 - pos
    return pos * neg.sum(1, keepdim=True).clamp_min(1) - neg * pos.sum(1, keepdim=True).clamp_min(1)


def center_codes(labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor) -> torch.Tensor:
    """CgAT centre codes of a batch of labels, ``(B, K)`` float ±1."""
    labels, ref_labels = labels.to(ref_codes.device), ref_labels.to(ref_codes.device)
    check_reference(labels, ref_codes, ref_labels)
    return weighted_sign(center_integer_weights(labels, ref_labels), ref_codes, exact=True)
