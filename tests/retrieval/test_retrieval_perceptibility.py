"""perceptibility: vector norms of the flattened perturbation, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashguard.retrieval import perceptibility


def test_hand_computed_values():
    x = torch.full((2, 1, 2, 2), 0.5)  # images in [0, 1]
    x_adv = x.clone()
    x_adv[0, 0] += torch.tensor([[0.1, -0.2], [0.0, 0.0]])
    x_adv[1] += 0.05
    out = perceptibility(x, x_adv)
    assert set(out) == {"linf", "l2", "rmse"}
    # image 0: max |d| = 0.2, L2 = sqrt(0.01 + 0.04), RMSE = sqrt(0.05 / 4)
    # image 1: max |d| = 0.05, L2 = sqrt(4 * 0.0025) = 0.1, RMSE = 0.05
    assert out["linf"] == pytest.approx((0.2 + 0.05) / 2, rel=1e-6)
    assert out["l2"] == pytest.approx((math.sqrt(0.05) + 0.1) / 2, rel=1e-6)
    assert out["rmse"] == pytest.approx((math.sqrt(0.05 / 4) + 0.05) / 2, rel=1e-6)


def test_not_matrix_norms():
    """A perturbation of +eps everywhere: vector L-inf is eps, while the matrix inf-norm over
    (H, W) would be W * eps and the spectral norm sqrt(H W) * eps."""
    eps = 8 / 255
    x = np.full((3, 3, 4, 4), 0.5)
    out = perceptibility(x, x + eps)
    assert out["linf"] == pytest.approx(eps)
    assert out["l2"] == pytest.approx(eps * math.sqrt(3 * 4 * 4))
    assert out["rmse"] == pytest.approx(eps)


def test_input_untouched_and_numpy_torch_agree():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 5, 5)).astype(np.float32)
    x_adv = np.clip(x + rng.uniform(-0.03, 0.03, x.shape), 0, 1).astype(np.float32)
    x_copy = x.copy()
    a = perceptibility(x, x_adv)
    b = perceptibility(torch.from_numpy(x), torch.from_numpy(x_adv))
    np.testing.assert_array_equal(x, x_copy)
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-12)


def test_shape_mismatch_and_bad_values():
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 4, 4\) but x_adv has shape \(2, 3, 4, 5\)"):
        perceptibility(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="non-empty batch"):
        perceptibility(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="finite"):
        perceptibility(np.zeros((1, 3)), np.array([[0.0, np.nan, 0.0]]))


@pytest.mark.parametrize("scale", ["x", "x_adv", "both"])
def test_images_outside_unit_range_are_refused_with_the_255_hint(scale):
    """0-255 images gave an L-inf of 253 "pixels" for an 8/255 attack, with no word (issue 12)."""
    x = torch.rand(2, 3, 4, 4)
    x_adv = (x + 4 / 255).clamp(0, 1)
    a = x * 255 if scale in ("x", "both") else x
    b = x_adv * 255 if scale in ("x_adv", "both") else x_adv
    with pytest.raises(ValueError, match="divide 0-255 images by 255"):
        perceptibility(a, b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        perceptibility(x - 0.5, x_adv - 0.5)  # normalised images
