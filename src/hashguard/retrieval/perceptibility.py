"""Size of adversarial perturbations: per-image vector norms of x_adv - x, averaged over the batch."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ._inputs import to_numpy

__all__ = ["perceptibility"]

RANGE_SLACK = 1e-6  # float rounding, e.g. of a half-precision copy


def perceptibility(x: Any, x_adv: Any) -> Dict[str, float]:
    """Per-image L-inf, L2 and RMSE of the perturbation ``x_adv - x``, each averaged over the batch.

    Each image's perturbation ``delta`` is flattened over all its pixels and channels
    (``delta.reshape(B, -1)``) before taking *vector* norms:

    * ``linf`` = ``max |delta|`` (compare with the attack's eps, e.g. 8/255);
    * ``l2``   = ``sqrt(sum delta**2)``;
    * ``rmse`` = ``sqrt(mean delta**2)`` = ``l2 / sqrt(number of pixel values)``.

    These are not the *matrix* norms over (H, W) that ``torch.linalg.matrix_norm`` gives (maximum
    row sum and spectral norm), which some research code reports as "L-inf" and "L2" by mistake.
    Computed in float64 on the CPU.

    Args:
        x: clean images, ``(B, ...)`` (e.g. NCHW), torch tensor on any device or numpy array;
            the first dimension is the batch.
        x_adv: adversarial images of exactly the same shape.

    Returns:
        ``{"linf": float, "l2": float, "rmse": float}``, each the mean over the ``B`` images.

    Raises:
        ValueError: if the shapes differ, the arrays have no batch dimension, the batch is empty,
            a value is NaN or infinite, or outside [0, 1] (pixel units: 0-255 images give an
            L-inf of 253 for an 8/255 perturbation).

    Example:
        >>> perceptibility(x, result.x_adv)
        {'linf': 0.0313..., 'l2': 4.21..., 'rmse': 0.0109...}
    """
    a = to_numpy(x, "x")
    b = to_numpy(x_adv, "x_adv")
    if a.shape != b.shape:
        raise ValueError(
            f"x has shape {tuple(a.shape)} but x_adv has shape {tuple(b.shape)}; "
            "pass the clean and adversarial batches in the same layout"
        )
    if a.ndim < 1 or a.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (B, ...), got shape {tuple(a.shape)}")
    delta = b.astype(np.float64).reshape(a.shape[0], -1) - a.astype(np.float64).reshape(a.shape[0], -1)
    if not np.isfinite(delta).all():
        raise ValueError("x and x_adv must be finite; the perturbation contains NaN or infinite values")
    if delta.shape[1] == 0:
        raise ValueError(f"images must have at least one value each, got shape {tuple(a.shape)}")
    for name, images in (("x", a), ("x_adv", b)):
        low, high = float(images.min()), float(images.max())
        if low < -RANGE_SLACK or high > 1.0 + RANGE_SLACK:
            raise ValueError(
                f"{name} ranges from {low:.4g} to {high:.4g}, but perceptibility measures images in [0, 1] (pixel "
                "units, the attacks' eps scale): divide 0-255 images by 255, and undo any normalisation first"
            )
    sq = np.square(delta).sum(axis=1)
    return {
        "linf": float(np.abs(delta).max(axis=1).mean()),
        "l2": float(np.sqrt(sq).mean()),
        "rmse": float(np.sqrt(sq / delta.shape[1]).mean()),
    }
