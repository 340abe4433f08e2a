"""Input checks shared by every layer: images in [0, 1], label matrices of the right width.

Each check raises a ``ValueError`` that says what was expected, what was received and how to fix
it (docs/design.md#input-checks), instead of letting a bad tensor fail deep inside a convolution.
"""

from __future__ import annotations

import torch


def check_images(x: torch.Tensor, *, channels: int | None = 3, check_values: bool = True) -> None:
    """Raise ``ValueError`` unless ``x`` is a float NCHW batch with values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"images must be a 4-D NCHW batch, got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"images must have {channels} channels (NCHW), got shape {tuple(x.shape)}; "
            "convert grey images with x.repeat(1, 3, 1, 1) or pass channels-first tensors"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"images must be floating point in [0, 1], got dtype {x.dtype}; "
            "divide uint8 images by 255"
        )
    if check_values:
        problem = unit_range_problem(x.detach())
        if problem:
            raise ValueError(
                f"images must lie in [0, 1] (pixel units), but they {problem}; "
                "do not normalise images before passing them: HashModel normalises internally"
            )


def to_model_dtype(x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """``x`` cast to the floating dtype of ``module``'s weights (float64 images from numpy are common:
    they are accepted and computed in the model's precision instead of failing inside a layer)."""
    for tensor in module.parameters():
        if tensor.is_floating_point():
            return x if x.dtype == tensor.dtype else x.to(tensor.dtype)
    return x


def unit_range_problem(images: torch.Tensor) -> str:
    """What keeps float ``images`` out of [0, 1] ("contain NaN", "range from -0.5 to 2"), or ``""``."""
    if images.numel() == 0:
        return ""
    if torch.isnan(images).any():
        return "contain NaN"
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        return f"range from {low:.4g} to {high:.4g}"
    return ""


ALL_ZERO_QUERIES = (
    "some query label rows are all-zero (no label at all): such a query has no relevant item, so its AP is 0 "
    "with or without the attack, and an attack guided by label codes has nothing to aim at; drop those "
    "queries (or score them with mean_average_precision(..., empty='skip'))"
)


def check_labels(
    labels: torch.Tensor, num_classes: int | None = None, *, name: str = "labels", all_zero: str = "allow"
) -> None:
    """Raise ``ValueError`` unless ``labels`` is an (N, C) multi-hot matrix of 0/1 values.

    The values are checked by the same function as the retrieval metrics' labels
    (:func:`hashguard.retrieval._inputs.as_labels`), so ±1 or scaled labels are refused everywhere.
    ``all_zero``: what an all-zero row (no label) gets: ``"allow"``, ``"warn"`` (the attacks' query
    labels) or ``"error"`` (target labels, which must name a class).
    """
    if labels.dim() != 2:
        raise ValueError(
            f"{name} must be an (N, C) multi-hot matrix, got shape {tuple(labels.shape)}; "
            "one-hot encode class indices with torch.nn.functional.one_hot"
        )
    if num_classes is not None and labels.shape[1] != num_classes:
        raise ValueError(
            f"{name} must have {num_classes} columns (one per class), got {labels.shape[1]}"
        )
    from .retrieval._inputs import as_labels

    values = as_labels(labels, name)
    if all_zero != "allow" and values.size:
        empty = ~values.astype(bool).any(axis=1)
        if empty.any() and all_zero == "error":
            rows = empty.nonzero()[0]
            raise ValueError(
                f"{name} has {rows.size} all-zero rows (no label at all), e.g. row {int(rows[0])}; every row "
                "must name at least one class (draw target labels with hashguard.attacks.draw_target_labels)"
            )
        if empty.any():
            import warnings

            warnings.warn(ALL_ZERO_QUERIES, stacklevel=3)
