"""Backbone registry: every registered backbone builds offline and yields (N, out_features) features."""

from __future__ import annotations

import pytest
import torch

from hashguard.models import Backbone, create_backbone, create_hash_model, list_backbones

# constructing these (tens of millions of randomly initialised weights) takes seconds on 2 cores
SLOW_BACKBONES = {"alexnet", "vgg11", "vgg16", "resnet50"}
EXPECTED_WIDTH = {"alexnet": 4096, "vgg11": 4096, "vgg16": 4096, "resnet18": 512, "resnet50": 2048, "cnn": 256}


def _backbone_params():
    # a newly registered backbone is tested automatically
    return [
        pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_BACKBONES else [], id=name)
        for name in list_backbones()
    ]


def _build(name):
    kwargs = {"width": 8} if name == "cnn" else {}
    return create_backbone(name, pretrained=False, **kwargs)


def test_registry_lists_the_paper_backbones():
    names = list_backbones()
    assert names == sorted(names)
    assert {"alexnet", "vgg11", "vgg16", "resnet18", "resnet50", "cnn"} <= set(names)


@pytest.mark.parametrize("name", _backbone_params())
def test_backbone_builds_offline_and_produces_features(name):
    torch.manual_seed(0)
    backbone = _build(name)
    assert isinstance(backbone, Backbone)
    assert len(backbone.mean) == 3 and len(backbone.std) == 3
    assert all(s > 0 for s in backbone.std)
    if name in EXPECTED_WIDTH:
        assert backbone.out_features == EXPECTED_WIDTH[name]
    size = 16 if name == "cnn" else 64
    backbone.features.eval()
    with torch.no_grad():
        feats = backbone.features(torch.rand(2, 3, size, size))
    assert feats.shape == (2, backbone.out_features)
    assert bool(torch.isfinite(feats).all())


@pytest.mark.parametrize("name", _backbone_params())
def test_hash_model_on_every_backbone(name):
    torch.manual_seed(0)
    kwargs = {"width": 8} if name == "cnn" else {}
    model = create_hash_model(name, 12, backbone_kwargs=kwargs)
    size = 16 if name == "cnn" else 64
    x = torch.rand(2, 3, size, size)
    u = model(x)
    assert u.shape == (2, 12)
    codes = model.encode(x)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_torchvision_backbones_use_imagenet_normalisation():
    backbone = create_backbone("resnet18")
    assert backbone.mean == pytest.approx((0.485, 0.456, 0.406))
    assert backbone.std == pytest.approx((0.229, 0.224, 0.225))


def test_cnn_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="pretrained"):
        create_backbone("cnn", pretrained=True)
    with pytest.raises(ValueError, match="pretrained"):
        create_hash_model("cnn", 16, pretrained=True)


def test_unknown_backbone_lists_valid_choices():
    with pytest.raises(ValueError) as info:
        create_backbone("resnet9000")
    msg = str(info.value)
    assert "resnet9000" in msg
    for name in list_backbones():
        assert name in msg


def test_backbone_names_are_case_insensitive():
    assert create_backbone("CNN", width=8).out_features == 256


@pytest.mark.parametrize("size", [8, 16, 56])
def test_cnn_accepts_small_inputs(size):
    backbone = create_backbone("cnn", width=8)
    backbone.features.eval()
    with torch.no_grad():
        assert backbone.features(torch.rand(3, 3, size, size)).shape == (3, 256)


def test_cnn_width_changes_parameter_count_not_output_width():
    small, big = create_backbone("cnn", width=8), create_backbone("cnn", width=16)
    count = lambda b: sum(p.numel() for p in b.features.parameters())  # noqa: E731
    assert count(small) < count(big)
    assert small.out_features == big.out_features == 256
