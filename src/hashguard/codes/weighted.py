"""The closed-form minimiser shared by the centre, mainstay and pharos codes.

For reference codes ``b_j`` in {-1, +1}^K and real weights ``w_j`` (positive for samples the code
should be close to, negative for samples it should be far from), the objective

    psi(b) = sum_j w_j D_H(b, b_j),      D_H(b, b') = (K - b^T b') / 2,

equals ``-1/2 sum_k b_k (sum_j w_j b_jk) + const``, so it is minimised bit by bit by

    b* = sign(sum_j w_j b_j)                                   (PgA Eq. 7, SAAT Eq. 10)

(PgA Appendix A.1, SAAT Theorem 1). A bit whose weighted sum is exactly 0 does not change psi;
we set it to +1 (sign(0) = +1, the library's convention). The builders differ only in the
weights; this module does the one matrix product they share.

Ties are decided exactly, not by float32 rounding (a float32 sum of weights like 1/|P| and 1/|N|
that cancel exactly can come out as -1e-9 and flip the bit to -1). The sum is accumulated in
float64 and

- for integer weights (``exact=True``: the anchor vote, the centre's weights scaled by |P||N|)
  every partial sum is an integer below 2^53, so the float64 sum *is* the exact sum;
- for real weights (cosine, Dice) a sum whose magnitude is within the float64 rounding bound
  ``TIE_EPS * (N + 8) * sum_j |w_j|`` of 0 is treated as an exact tie. That bound covers the
  error of the weights themselves (a few ulp each, computed in float64 from integer label
  counts) and of any summation order of the N products (``N u sum |w|``); a genuine non-tie
  would have to be a nonzero combination of such weights smaller than ~1e-16 relative, which
  label counts of real data sets do not produce.
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


TIE_EPS = 2.0**-52  # float64 machine epsilon: the unit of the tie bound
_EXACT_LIMIT = 2.0**53  # integers up to this are exact in float64


def weighted_sum(weights: torch.Tensor, ref_codes: torch.Tensor, *, exact: bool = False) -> torch.Tensor:
    """``weights @ ref_codes`` in float64 with exact ties set to exactly 0; shape ``(B, K)``.

    Args:
        weights: ``(B, N)`` signed weights (pass them in float64 for the tie rule to apply to
            weights that float32 cannot hold exactly, such as 1/3).
        ref_codes: ``(N, K)`` ±1 codes.
        exact: the weights are integers, so the float64 sum is exact (checked: when
            ``sum |w|`` reaches 2^53 the tolerance rule is used instead).
    """
    w = weights.to(ref_codes.device, torch.float64)
    total = w @ ref_codes.to(torch.float64)
    scale = w.abs().sum(1, keepdim=True)
    if exact and bool((scale < _EXACT_LIMIT).all()) and bool((w == w.round()).all()):
        return total
    tol = TIE_EPS * (w.shape[1] + 8) * scale
    return torch.where(total.abs() <= tol, torch.zeros_like(total), total)


def weighted_sign(weights: torch.Tensor, ref_codes: torch.Tensor, *, exact: bool = False) -> torch.Tensor:
    """``sign(weights @ ref_codes)`` with sign(0) = +1: the minimiser of ``sum_j w_ij D_H(b, b_j)``.

    Exact ties are decided as ties (+1), see the module docstring and :func:`weighted_sum`.

    Args:
        weights: ``(B, N)`` signed weights per reference code (positive = pull, negative = push).
        ref_codes: ``(N, K)`` ±1 codes.
        exact: the weights are integers (the sum is then computed exactly).

    Returns:
        ``(B, K)`` float ±1 codes on the device of ``ref_codes``.
    """
    return sign_codes(weighted_sum(weights, ref_codes, exact=exact)).to(torch.float32)


def hamming_objective(code: torch.Tensor, weights: torch.Tensor, ref_codes: torch.Tensor) -> torch.Tensor:
    """``psi(b) = sum_j w_j D_H(b, b_j)`` for each row of ``code`` (B, K); returns (B,)."""
    k = ref_codes.shape[1]
    dist = (k - code.float() @ ref_codes.float().t()) / 2
    return (weights.float() * dist).sum(1)
