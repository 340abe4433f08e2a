"""Scoped model states: ``eval_frozen`` restores mode and flags (also on errors), and
``inputs_in_unit_range`` skips the range scan only inside its block, without touching the model."""

from __future__ import annotations

import pytest
import torch

from hashguard.models import create_hash_model
from hashguard.models.modes import eval_frozen, inputs_in_unit_range, unit_range_vouched


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_hash_model("cnn", 8, backbone_kwargs={"width": 4}).eval()


def test_eval_frozen_sets_and_restores_mode_and_each_flag(model):
    model.train()
    params = list(model.parameters())
    flags = [i % 2 == 0 for i in range(len(params))]
    for p, f in zip(params, flags, strict=True):
        p.requires_grad_(f)
    with eval_frozen(model) as inside:
        assert inside is model and not model.training
        assert not any(p.requires_grad for p in params)
    assert model.training and [p.requires_grad for p in params] == flags


def test_eval_frozen_restores_on_an_exception(model):
    model.train()
    with pytest.raises(RuntimeError, match="boom"), eval_frozen(model):
        raise RuntimeError("boom")
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_unit_range_scope_skips_only_the_value_scan_and_leaves_the_model_alone(model):
    outside = torch.full((1, 3, 16, 16), 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(outside)
    with inputs_in_unit_range():
        assert unit_range_vouched()
        model(outside)  # vouched for by the caller: no scan
        with pytest.raises(ValueError, match="channels"):
            model(outside[:, :1])  # shape and channels are still checked
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            model.encode(outside)  # encode always checks
    assert not unit_range_vouched() and model.check_inputs is True
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(outside)
