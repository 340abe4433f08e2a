"""Checkpoints: state_dict + JSON config, safe loading, and errors that name what does not fit."""

from __future__ import annotations

import json

import pytest
import torch

import hashguard
from hashguard.models import (
    CheckpointError,
    create_hash_model,
    load_checkpoint,
    load_weights,
    read_checkpoint_config,
    save_checkpoint,
)


def _config(bits=16):
    return {
        "dataset": "synthetic",
        "backbone": "cnn",
        "backbone_kwargs": {"width": 8},
        "method": "dpsh",
        "bits": bits,
        "seed": 3,
    }


@pytest.fixture
def saved(tmp_path, model):
    with torch.no_grad():  # non-default normalisation must survive the round trip as well
        model.mean.fill_(0.4)
    path = save_checkpoint(tmp_path / "ckpt.pt", model, _config(model.bits))
    return path, model


def test_round_trip_gives_identical_outputs_and_config(saved, images):
    path, model = saved
    loaded, config = load_checkpoint(path)
    assert not loaded.training
    assert loaded.bits == model.bits
    for key, value in _config(model.bits).items():
        assert config[key] == value
    assert config["version"] == hashguard.__version__
    model.eval()
    assert torch.equal(loaded(images), model(images))
    assert torch.equal(loaded.encode(images), model.encode(images))
    own = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, own[key]), key


def test_round_trip_of_train_mode_model_restores_eval_outputs(tmp_path, model, images):
    model.train()
    path = save_checkpoint(tmp_path / "m.pt", model, _config())
    loaded, _ = load_checkpoint(path)
    model.eval()
    assert torch.equal(loaded.encode(images), model.encode(images))


def test_json_sidecar_matches_checkpoint_config(saved):
    path, _ = saved
    sidecar = path.with_name(path.name + ".json")
    assert sidecar.name == "ckpt.pt.json"
    assert sidecar.exists()
    on_disk = json.loads(sidecar.read_text())
    assert on_disk == read_checkpoint_config(path) == load_checkpoint(path)[1]
    assert on_disk["bits"] == 16 and on_disk["backbone"] == "cnn"


def test_save_leaves_no_temporary_files_and_creates_folders(tmp_path, model):
    path = save_checkpoint(tmp_path / "a" / "b" / "m.pt", model, _config())
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt", "m.pt.json"]


def test_save_overwrites_existing_checkpoint(tmp_path, make_model, images):
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_model(seed=1), _config())
    second = make_model(seed=2).eval()
    save_checkpoint(path, second, _config())
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded(images), second(images))


def test_checkpoint_loads_with_weights_only(saved):
    path, model = saved
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(payload, dict)
    assert set(payload["state_dict"]) == set(model.state_dict())
    assert json.loads(payload["config_json"])["bits"] == model.bits


def test_bits_default_from_model(tmp_path, model):
    config = _config()
    del config["bits"]
    path = save_checkpoint(tmp_path / "m.pt", model, config)
    assert read_checkpoint_config(path)["bits"] == model.bits


def test_save_rejects_config_that_contradicts_model(tmp_path, model):
    with pytest.raises(CheckpointError, match="32"):
        save_checkpoint(tmp_path / "m.pt", model, _config(bits=32))
    assert not (tmp_path / "m.pt").exists()


def test_save_requires_backbone_name_when_the_model_does_not_know_it(tmp_path, model):
    from hashguard.models import HashModel, create_backbone

    config = _config()
    del config["backbone"]
    bare = HashModel(create_backbone("cnn", width=8), 16)
    with pytest.raises(CheckpointError, match="backbone"):
        save_checkpoint(tmp_path / "bare.pt", bare, config)


def test_save_fills_in_the_architecture_of_a_registry_built_model(tmp_path, model):
    config = _config()
    del config["backbone"]
    path = save_checkpoint(tmp_path / "m.pt", model, config)
    stored = read_checkpoint_config(path)
    assert stored["backbone"] == "cnn" and stored["backbone_kwargs"] == {"width": 8}
    loaded, _ = load_checkpoint(path)  # a non-default width reloads without being told
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(x), model.encode(x))


def test_load_with_other_bits_names_both_values(tmp_path, make_model):
    path = save_checkpoint(tmp_path / "m32.pt", make_model(bits=32), _config(bits=32))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, bits=64)
    msg = str(info.value)
    assert "32" in msg and "64" in msg and "bits" in msg
    model, _ = load_checkpoint(path, bits=32)  # the matching expectation is accepted
    assert model.bits == 32


def test_load_with_other_backbone_names_both_values(saved):
    path, _ = saved
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, backbone="resnet18")
    msg = str(info.value)
    assert "cnn" in msg and "resnet18" in msg
    model, _ = load_checkpoint(path, backbone="cnn")
    assert model.bits == 16


def test_expected_backbone_name_is_case_insensitive(saved):
    path, _ = saved
    model, _ = load_checkpoint(path, backbone="CNN")
    assert model.bits == 16


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_plain_state_dict_file_is_not_a_checkpoint(tmp_path, model):
    path = tmp_path / "plain.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a hashguard checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        read_checkpoint_config(path)


def test_tensor_dict_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "tensors.pt"
    torch.save({"weight": torch.ones(3), "format": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"definitely not a torch file\x00\xff" * 10])
def test_garbage_file_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(path)


def test_pickled_model_is_refused(tmp_path, model):
    path = tmp_path / "pickled.pt"
    torch.save(model, path)  # what docs/design.md#checkpoints forbids: a whole pickled model
    with pytest.raises(CheckpointError, match="safely|state_dict"):
        load_checkpoint(path)


def test_missing_file_raises_file_not_found_with_hint(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "nope.pt" in msg and "train" in msg
    with pytest.raises(FileNotFoundError):
        read_checkpoint_config(path)


def test_load_weights_with_other_bit_length_mentions_bits(make_model):
    model16, model32 = make_model(bits=16), make_model(bits=32)
    before = {k: v.clone() for k, v in model32.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_weights(model32, model16.state_dict())
    msg = str(info.value)
    assert "bit length" in msg and "16" in msg and "32" in msg
    assert "architecture" not in msg  # the trunk is the same, only the hash layer differs
    for k, v in model32.state_dict().items():  # nothing was half-loaded
        assert torch.equal(v, before[k])


def test_load_weights_with_other_architecture_says_so(make_model):
    narrow, wide = make_model(width=8), make_model(width=16)
    with pytest.raises(CheckpointError, match="architecture"):
        load_weights(narrow, wide.state_dict())
    resnet = create_hash_model("resnet18", 16)
    with pytest.raises(CheckpointError, match="architecture") as info:
        load_weights(narrow, resnet.state_dict(), source="other.pt")
    assert "other.pt" in str(info.value)


def test_load_weights_accepts_matching_state(make_model, images):
    a, b = make_model(seed=1).eval(), make_model(seed=2).eval()
    load_weights(b, a.state_dict())
    assert torch.equal(a(images), b(images))


def test_load_checkpoint_map_location(saved, images):
    path, model = saved
    loaded, _ = load_checkpoint(path, map_location="cpu")
    assert loaded.device == torch.device("cpu")
    assert torch.equal(loaded.encode(images), model.encode(images))
