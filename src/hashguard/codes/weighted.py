"""The closed-form minimiser shared by the centre, mainstay and pharos codes.

For reference codes ``b_j`` in {-1, +1}^K and real weights ``w_j`` (positive for samples the code
should be close to, negative for samples it should be far from), the objective

    psi(b) = sum_j w_j D_H(b, b_j),      D_H(b, b') = (K - b^T b') / 2,

equals ``-1/2 sum_k b_k (sum_j w_j b_jk) + const``, so it is minimised bit by bit by

    b* = sign(sum_j w_j b_j)                                   (PgA Eq. 7, SAAT Eq. 10)

(PgA Appendix A.1, SAAT Theorem 1). A bit whose weighted sum is exactly 0 does not change psi;
we set it to +1 (sign(0) = +1, the library's convention). The builders differ only in the
weights; this module does the one matrix product they share.
"""

from __future__ import annotations

import torch

from ..models.hash_model import sign_codes


def check_reference(labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor) -> None:
    """Raise ``ValueError`` unless the label batch and the reference set fit together."""
    if labels.dim() != 2:
        raise ValueError(f"labels must be an (B, C) multi-hot matrix, got shape {tuple(labels.shape)}")
    if ref_codes.dim() != 2 or ref_labels.dim() != 2:
        raise ValueError(
            f"reference codes and labels must be 2-D, got {tuple(ref_codes.shape)} and {tuple(ref_labels.shape)}"
        )
    if ref_codes.shape[0] != ref_labels.shape[0]:
        raise ValueError(
            f"reference set has {ref_codes.shape[0]} codes but {ref_labels.shape[0]} label rows; pass matching rows"
        )
    if labels.shape[1] != ref_labels.shape[1]:
        raise ValueError(
            f"labels have {labels.shape[1]} columns but the reference labels have {ref_labels.shape[1]}; "
            "use the label space of the dataset the model was trained on"
        )
    if ref_codes.numel() and not bool(((ref_codes == 1) | (ref_codes == -1)).all()):
        raise ValueError("reference codes must be ±1 sign codes (use model.encode, not the tanh outputs)")


def weighted_sign(weights: torch.Tensor, ref_codes: torch.Tensor) -> torch.Tensor:
    """``sign(weights @ ref_codes)`` with sign(0) = +1: the minimiser of ``sum_j w_ij D_H(b, b_j)``.

    Args:
        weights: ``(B, N)`` signed weights per reference code (positive = pull, negative = push).
        ref_codes: ``(N, K)`` ±1 codes.

    Returns:
        ``(B, K)`` float ±1 codes on the device of ``ref_codes``.
    """
    return sign_codes(weights.to(ref_codes.device, torch.float32) @ ref_codes.float())


def hamming_objective(code: torch.Tensor, weights: torch.Tensor, ref_codes: torch.Tensor) -> torch.Tensor:
    """``psi(b) = sum_j w_j D_H(b, b_j)`` for each row of ``code`` (B, K); returns (B,)."""
    k = ref_codes.shape[1]
    dist = (k - code.float() @ ref_codes.float().t()) / 2
    return (weights.float() * dist).sum(1)
