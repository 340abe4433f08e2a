"""HashModel behaviour: forward = tanh(alpha * logits), sign codes, input validation, normalisation."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from hashguard.models import HashModel, create_backbone, sign_codes


# --- forward -------------------------------------------------------------------------------------


def test_forward_shape_and_open_interval(model, images):
    u = model(images)
    assert u.shape == (images.shape[0], model.bits)
    assert u.dtype == torch.float32
    assert bool((u > -1).all()) and bool((u < 1).all())


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_forward_is_tanh_of_alpha_times_logits(model, images, alpha):
    logits = model.logits(images)
    torch.testing.assert_close(model(images, alpha=alpha), torch.tanh(alpha * logits))


def test_alpha_scales_magnitude_but_not_sign(model, images):
    u1, u3 = model(images, alpha=1.0), model(images, alpha=3.0)
    assert torch.equal(torch.sign(u1), torch.sign(u3))
    assert bool((u3.abs() >= u1.abs() - 1e-7).all())
    assert float(u3.abs().mean().detach()) > float(u1.abs().mean().detach())
    assert torch.count_nonzero(model(images, alpha=0.0)) == 0


def test_large_alpha_approaches_sign_codes(model, images):
    u = model(images, alpha=1e6)
    assert torch.equal(sign_codes(u), model.encode(images))


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_forward_is_differentiable_wrt_input(model, images):
    x = images.clone().requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    assert float(x.grad.abs().sum()) > 0


def test_bits_must_be_positive():
    backbone = create_backbone("cnn", width=8)
    with pytest.raises(ValueError, match="bits"):
        HashModel(backbone, 0)


# --- sign codes and encode -----------------------------------------------------------------------


def test_sign_codes_maps_zero_to_plus_one_and_keeps_dtype():
    h = torch.tensor([[-2.0, -0.0, 0.0, 1e-9, -1e-9, 3.0]], dtype=torch.float64)
    out = sign_codes(h)
    assert out.dtype == torch.float64
    assert out.tolist() == [[-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]]


def test_encode_returns_float_plus_minus_one(model, images):
    codes = model.encode(images)
    assert codes.shape == (images.shape[0], model.bits)
    assert codes.dtype == torch.float32
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_encode_is_sign_of_eval_mode_logits(model, images):
    model.eval()
    expected = torch.where(model.logits(images) >= 0, 1.0, -1.0)
    assert torch.equal(model.encode(images), expected)


def test_encode_zero_logit_gives_plus_one(model, images):
    with torch.no_grad():
        model.hash_layer.weight.zero_()
        model.hash_layer.bias.zero_()
    assert bool((model.encode(images) == 1).all())


def test_encode_uses_eval_mode_and_restores_train_mode(model, images):
    model.eval()
    eval_codes = model.encode(images)
    probe = copy.deepcopy(model).train()  # a train-mode pass updates BatchNorm statistics
    with torch.no_grad():
        train_mode_codes = sign_codes(probe.logits(images))
    # the fixture's BatchNorm running statistics make the two modes differ
    assert not torch.equal(train_mode_codes, eval_codes)
    model.train()
    codes = model.encode(images)
    assert model.training, "encode must restore train mode"
    assert torch.equal(codes, eval_codes)


def test_encode_keeps_eval_mode(model, images):
    model.eval()
    model.encode(images)
    assert not model.training


def test_encode_does_not_touch_batchnorm_statistics(model, images):
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.encode(images)
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


def test_encode_runs_without_grad(model, images):
    x = images.clone().requires_grad_(True)
    codes = model.encode(x)
    assert not codes.requires_grad
    assert codes.grad_fn is None


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_encode_batched_equals_unbatched(model, images, batch_size):
    assert torch.equal(model.encode(images, batch_size=batch_size), model.encode(images, batch_size=1000))


def test_encode_single_image_equals_row_of_batch(model, images):
    full = model.encode(images)
    for i in (0, 4, 9):
        assert torch.equal(model.encode(images[i : i + 1]), full[i : i + 1])


def test_encode_empty_batch(model):
    codes = model.encode(torch.rand(0, 3, 16, 16))
    assert codes.shape == (0, model.bits)


def test_encode_does_not_modify_input(model, images):
    copy = images.clone()
    model.encode(images)
    model(images)
    assert torch.equal(images, copy)


# --- input validation ----------------------------------------------------------------------------

BAD_INPUTS = [
    pytest.param(lambda x: x + 1.5, r"\[0, 1\]", id="above-one"),
    pytest.param(lambda x: x - 0.5, r"\[0, 1\]", id="negative"),
    pytest.param(lambda x: (x - 0.45) / 0.226, r"\[0, 1\]", id="already-normalised"),
    pytest.param(lambda x: torch.where(x > 0.5, torch.full_like(x, float("nan")), x), "NaN", id="nan"),
    pytest.param(lambda x: x[0], r"4-D|NCHW", id="rank-3"),
    pytest.param(lambda x: x.flatten(1), r"4-D|NCHW", id="rank-2"),
    pytest.param(lambda x: x[:, :1], r"3 channels", id="one-channel"),
    pytest.param(lambda x: x.permute(0, 2, 3, 1)[:, :, :, :], r"channels", id="nhwc"),
    pytest.param(lambda x: (x * 255).to(torch.uint8), r"floating point", id="uint8"),
]


@pytest.mark.parametrize("bad, pattern", BAD_INPUTS)
def test_encode_rejects_bad_images(model, images, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        model.encode(bad(images))


@pytest.mark.parametrize("bad, pattern", BAD_INPUTS)
def test_forward_rejects_bad_images(model, images, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        model(bad(images))


def test_out_of_range_message_reports_the_range_and_the_fix(model, images):
    with pytest.raises(ValueError) as info:
        model(images * 4.0 - 2.0)
    msg = str(info.value)
    assert "[0, 1]" in msg and "normalis" in msg


def test_rank_error_suggests_unsqueeze(model, images):
    with pytest.raises(ValueError, match="unsqueeze"):
        model(images[0])


def test_non_tensor_input_rejected(model, images):
    with pytest.raises(ValueError, match="torch.Tensor"):
        model.encode(images.numpy())


def test_boundary_values_are_accepted(model):
    x = torch.zeros(2, 3, 16, 16)
    x[1] = 1.0
    assert model(x).shape == (2, model.bits)
    assert model.encode(x).shape == (2, model.bits)


def test_check_inputs_off_skips_value_check_in_forward_only(model, images):
    model.check_inputs = False
    assert model(images + 0.5).shape == (images.shape[0], model.bits)  # attacks' inner loop
    with pytest.raises(ValueError, match="channels"):  # structural checks stay on
        model(images[:, :1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # encode always checks values
        model.encode(images + 0.5)


# --- normalisation lives inside the model --------------------------------------------------------


def test_normalisation_buffers_are_registered_and_default_to_backbone(model):
    backbone = create_backbone("cnn", width=8)
    state = model.state_dict()
    assert "mean" in state and "std" in state
    assert model.mean.flatten().tolist() == pytest.approx(list(backbone.mean))
    assert model.std.flatten().tolist() == pytest.approx(list(backbone.std))


def test_logits_use_mean_and_std(model, images):
    expected = model.hash_layer(model.features((images - model.mean) / model.std))
    torch.testing.assert_close(model.logits(images), expected)


@pytest.mark.parametrize("buffer", ["mean", "std"])
def test_changing_normalisation_buffer_changes_logits(model, images, buffer):
    before = model.logits(images)
    with torch.no_grad():
        getattr(model, buffer).mul_(1.5)
    after = model.logits(images)
    assert not torch.allclose(before, after)


def test_custom_mean_std_equal_pre_normalising_inputs(make_model, images):
    """A model with mean m / std s on x gives the same logits as mean 0 / std 1 on (x - m) / s."""
    base = make_model()
    base.eval()
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.125)
    custom = HashModel(create_backbone("cnn", width=8), base.bits, mean=mean, std=std)
    identity = HashModel(create_backbone("cnn", width=8), base.bits, mean=(0, 0, 0), std=(1, 1, 1), check_inputs=False)
    custom.load_state_dict({**base.state_dict(), "mean": custom.mean, "std": custom.std})
    identity.load_state_dict({**base.state_dict(), "mean": identity.mean, "std": identity.std})
    custom.eval()
    identity.eval()
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(custom.logits(images), identity.logits((images - m) / s), rtol=1e-4, atol=1e-5)


def test_model_follows_device_and_codes_are_on_model_device(model, images):
    assert model.device == torch.device("cpu")
    assert model.encode(images).device == model.device
    assert math.isfinite(float(model(images).detach().sum()))

