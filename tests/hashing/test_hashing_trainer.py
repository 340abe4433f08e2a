"""Trainer: from-scratch DPSH learns on ``synthetic``, runs are reproducible, configs are validated."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from hashguard.hashing import (
    TrainConfig,
    calibrate_hash_layer,
    create_hashing,
    list_hashing,
    train_hash_model,
)
from hashguard.hashing import trainer as trainer_module
from hashguard.hashing.evaluation import validation_map
from hashguard.retrieval import mean_average_precision

BITS = 16


def _train(make_model, splits, *, method="dpsh", epochs=1, seed=0, model_seed=0, evaluate=None, **config):
    model = make_model(bits=BITS, seed=model_seed)
    objective = create_hashing(method, bits=BITS, train_labels=splits.train.labels)
    cfg = TrainConfig(epochs=epochs, batch_size=16, seed=seed, **config)
    history = train_hash_model(model, objective, splits.train, cfg, evaluate=evaluate, evaluate_every=1, progress=False)
    return model, objective, history


@pytest.fixture(scope="module")
def dpsh_run(splits):
    """DPSH from a random init, 3 epochs, validation mAP after every epoch."""
    torch.manual_seed(0)
    from hashguard.models import create_hash_model

    make = lambda bits, seed: create_hash_model("cnn", bits, backbone_kwargs={"width": 8})  # noqa: E731
    return _train(make, splits, epochs=3, evaluate=lambda m: validation_map(m, splits))


def _random_code_map(splits, seeds=5):
    gen = torch.Generator().manual_seed(99)
    maps = []
    for _ in range(seeds):
        q = torch.where(torch.rand(len(splits.validation), BITS, generator=gen) < 0.5, 1.0, -1.0)
        d = torch.where(torch.rand(len(splits.train), BITS, generator=gen) < 0.5, 1.0, -1.0)
        maps.append(mean_average_precision(q, d, splits.validation.labels, splits.train.labels))
    return sum(maps) / len(maps)


# --- learning ------------------------------------------------------------------------------------


def test_dpsh_epoch_loss_falls(dpsh_run):
    _, _, history = dpsh_run
    losses = history.losses
    assert len(losses) == 3
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_dpsh_beats_random_codes_on_validation(dpsh_run, splits):
    _, _, history = dpsh_run
    baseline = _random_code_map(splits)
    assert 0.3 < baseline < 0.7  # sanity: 4 classes, 1-2 labels per image
    assert history.epochs[-1]["val_map"] > baseline + 0.15


def test_history_records_every_epoch(dpsh_run):
    model, objective, history = dpsh_run
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    for record in history.epochs:
        assert {"epoch", "loss", "lr", "seconds", "val_map"} <= set(record)
        assert record["seconds"] >= 0
    assert not model.training  # the trained model is handed back in eval mode


def test_buffer_holds_a_code_for_every_training_item_after_training(dpsh_run):
    _, objective, _ = dpsh_run
    assert bool((objective.U.abs() > 0).all())
    assert bool((objective.U.abs() <= 1).all())


def test_history_lr_is_the_lr_the_epoch_trained_with(dpsh_run):
    _, _, history = dpsh_run
    assert [e["lr"] for e in history.epochs] == pytest.approx([0.01, 0.001, 0.0001])


@pytest.mark.parametrize("method", list_hashing())
def test_every_objective_trains_one_epoch(make_model, splits, method):
    model, objective, history = _train(make_model, splits, method=method, epochs=1)
    assert len(history.losses) == 1 and torch.isfinite(torch.tensor(history.losses[0]))
    assert not model.training
    codes = model.encode(splits.train.batch(slice(0, 32)))
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_warmup_trains_the_backbone_first(make_model, splits):
    model, _, history = _train(make_model, splits, epochs=1, warmup_epochs=1)
    untouched = make_model(bits=BITS)
    assert len(history.losses) == 1
    changed = [
        k for k, v in model.features.state_dict().items() if not torch.equal(v, untouched.features.state_dict()[k])
    ]
    assert changed


# --- reproducibility -----------------------------------------------------------------------------


def test_same_seed_gives_identical_weights(make_model, splits):
    a, _, ha = _train(make_model, splits, epochs=1, seed=5)
    b, _, hb = _train(make_model, splits, epochs=1, seed=5)
    assert ha.losses == hb.losses
    sb = b.state_dict()
    for key, value in a.state_dict().items():
        assert torch.equal(value, sb[key]), key


def test_other_seed_gives_other_weights(make_model, splits):
    a, _, _ = _train(make_model, splits, epochs=1, seed=5)
    b, _, _ = _train(make_model, splits, epochs=1, seed=6)
    assert not torch.equal(a.hash_layer.weight, b.hash_layer.weight)


# --- calibration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target_std", [1.0, 0.5])
def test_calibrate_hash_layer_centres_and_scales_every_bit(make_model, splits, target_std):
    model = make_model(bits=BITS).train()
    images = splits.train.batch(slice(0, 64))
    weight_before = model.hash_layer.weight.detach().clone()
    calibrate_hash_layer(model, images, target_std=target_std)
    with torch.no_grad():
        logits = model.logits(images)  # same (train) mode as the calibration
    torch.testing.assert_close(logits.mean(0), torch.zeros(BITS), atol=1e-4, rtol=0)
    torch.testing.assert_close(logits.std(0), torch.full((BITS,), target_std), atol=1e-3, rtol=1e-3)
    # the random directions of the hash weights are kept: each row is only rescaled
    cos = torch.nn.functional.cosine_similarity(model.hash_layer.weight, weight_before, dim=1)
    torch.testing.assert_close(cos, torch.ones(BITS))
    # balanced bits: every bit splits the calibration batch
    signs = (logits >= 0).float().mean(0)
    assert bool(((signs > 0.1) & (signs < 0.9)).all())


def test_calibrate_leaves_a_degenerate_batch_alone(make_model, splits):
    model = make_model(bits=BITS).train()
    before = copy.deepcopy(model.hash_layer.state_dict())
    same = splits.train.batch(slice(0, 1)).repeat(8, 1, 1, 1)  # zero spread in every bit
    calibrate_hash_layer(model, same)
    for key, value in model.hash_layer.state_dict().items():
        assert torch.equal(value, before[key])
        assert bool(torch.isfinite(value).all())


def test_initial_buffer_holds_spread_out_codes(make_model, splits):
    model = make_model(bits=BITS)
    objective = create_hashing("dpsh", bits=BITS, train_labels=splits.train.labels)
    # the trainer's start: calibrate_hash_layer in train mode, then fill_buffer
    model.train()
    calibrate_hash_layer(model, splits.train.batch(slice(0, len(splits.train))))
    trainer_module.fill_buffer(model, objective, splits.train)
    assert float(objective.U.abs().mean()) > 0.1
    assert float(objective.U.std(0).mean()) > 0.1


# --- validation of the configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("epochs", -3), ("batch_size", 1), ("batch_size", 0), ("lr", 0.0), ("lr", -0.1),
     ("lr", float("nan")), ("warmup_epochs", -1)],
)
def test_bad_train_config_raises(make_model, splits, field, value):
    config = dataclasses.replace(TrainConfig(epochs=1), **{field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()
    model = make_model(bits=BITS)
    before = copy.deepcopy(model.state_dict())
    objective = create_hashing("dpsh", bits=BITS, train_labels=splits.train.labels)
    with pytest.raises(ValueError, match=field):
        train_hash_model(model, objective, splits.train, config, progress=False)
    for key, v in model.state_dict().items():  # rejected before touching the model
        assert torch.equal(v, before[key])


@pytest.mark.parametrize("field, value", [("lr_gamma", -1.0), ("lr_step", -1)])
def test_bad_schedule_config_raises(field, value):
    config = dataclasses.replace(TrainConfig(epochs=3), **{field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()


def test_default_config_is_valid():
    TrainConfig().validate()
    assert TrainConfig().lr == 0.01 and TrainConfig().batch_size == 32


def test_objective_for_another_training_set_is_rejected(make_model, splits):
    model = make_model(bits=BITS)
    objective = create_hashing("dpsh", bits=BITS, train_labels=splits.train.labels[:100])
    with pytest.raises(ValueError) as info:
        train_hash_model(model, objective, splits.train, TrainConfig(epochs=1), progress=False)
    assert "100" in str(info.value) and "120" in str(info.value)
