"""The ``hashguard`` command end to end on the tiny synthetic dataset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hashguard.cli import main
from hashguard.models import read_checkpoint_config


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint  # trained once per session (tests/conftest.py)


def test_datasets_lists_builtin_and_disk_ones(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mnist-mosaic" in out and "built in" in out and "nus-wide" in out and "--data-dir" in out


def test_train_writes_checkpoint_and_prints_map(checkpoint, capsys):
    config = read_checkpoint_config(checkpoint)
    assert config["dataset"] == "synthetic" and config["bits"] == 16 and config["hash_method"] == "dpsh"
    assert config["backbone"] == "cnn" and config["seed"] == 0 and "version" in config
    assert 0.0 <= config["clean_map"] <= 1.0
    assert (checkpoint.parent / "model.pt.json").exists()


def test_evaluate_reproduces_training_map_and_writes_json(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(checkpoint), "--json", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    for key in ("map", "topk", "dataset", "bits", "hash_method", "backbone", "n_queries"):
        assert key in record
    assert record["map"] == pytest.approx(read_checkpoint_config(checkpoint)["clean_map"], abs=1e-12)
    assert record["n_queries"] == 40 and record["topk"] is None
    assert "mAP@all" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(checkpoint), "--topk", "5", "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["topk"] == 5


def test_evaluate_missing_checkpoint_says_how_to_fix(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "hashguard train" in err


def test_disk_dataset_without_data_dir_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--data-dir"):
        main(["train", "--dataset", "nus-wide", "--out", str(tmp_path / "m.pt")])


def test_unknown_choices_are_rejected_with_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--hash", "dpshh", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert "dpsh" in err and "csq" in err


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "hashguard", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "hashguard" in result.stdout


def test_non_positive_bits_is_rejected_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "synthetic", "--bits", "0", "--out", str(tmp_path / "m.pt")])
    assert "--bits must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------- hashguard attack
ATTACK_FIELDS = ("method", "targeted", "n_queries", "eps", "steps", "topk", "clean_map", "map", "theory_map",
                 "perceptibility", "seconds_per_query", "success_rate")
TARGETED_FIELDS = ("clean_t_map", "t_map", "theory_t_map")


def _attack(checkpoint, out, *extra):
    return main(["attack", "--model", str(checkpoint), "--queries", "10", "--steps", "5",
                 "--json", str(out), "--quiet", *extra])


def test_attack_writes_the_record_and_reuses_the_protocol(checkpoint, tmp_path, capsys):
    out = tmp_path / "pga.json"
    assert _attack(checkpoint, out, "--method", "pga") == 0
    record = json.loads(out.read_text())
    for key in ATTACK_FIELDS:
        assert key in record, key
    assert record["method"] == "pga" and record["targeted"] is False and record["n_queries"] == 10
    assert record["eps"] == pytest.approx(8 / 255) and record["steps"] == 5 and record["topk"] is None
    assert all(key not in record for key in TARGETED_FIELDS)
    assert set(record["perceptibility"]) == {"linf", "l2", "rmse"}
    assert 0 < record["perceptibility"]["linf"] <= 8 / 255 + 1e-6
    for key in ("clean_map", "map", "theory_map", "success_rate"):
        assert 0.0 <= record[key] <= 1.0
    assert record["seconds_per_query"] > 0
    printed = capsys.readouterr().out
    assert "clean mAP" in printed and "attacked mAP" in printed and "success rate" in printed

    protocol = tmp_path / "protocol-synthetic-seed0-q10.json"
    assert record["protocol_file"] == str(protocol) and protocol.exists()
    drawn = protocol.read_bytes()
    # the clean mAP is that of the protocol's queries
    from hashguard.data import create_dataset
    from hashguard.models import load_checkpoint
    from hashguard.retrieval import mean_average_precision

    model, _ = load_checkpoint(checkpoint, map_location="cpu")
    splits = create_dataset("synthetic", seed=0)
    idx = torch.as_tensor(json.loads(drawn)["query_indices"])
    db = splits.database
    expected = mean_average_precision(model.encode(splits.query.batch(idx)), model.encode(db.batch(slice(None))),
                                      torch.as_tensor(splits.query.labels)[idx], db.labels)
    assert record["clean_map"] == pytest.approx(expected, abs=1e-12)
    stamp = protocol.stat().st_mtime_ns

    out_t = tmp_path / "mainstay.json"
    assert _attack(checkpoint, out_t, "--method", "mainstay", "--targeted") == 0
    targeted = json.loads(out_t.read_text())
    for key in ATTACK_FIELDS + TARGETED_FIELDS:
        assert key in targeted, key
    assert targeted["method"] == "mainstay" and targeted["targeted"] is True
    for key in ("clean_t_map", "t_map", "theory_t_map"):
        assert 0.0 <= targeted[key] <= 1.0
    # the second run read the first run's queries instead of drawing them again
    assert targeted["protocol_file"] == str(protocol)
    assert protocol.read_bytes() == drawn and protocol.stat().st_mtime_ns == stamp
    assert targeted["clean_map"] == pytest.approx(record["clean_map"], abs=1e-12)
    assert "clean t-MAP" in capsys.readouterr().out

    # a protocol file drawn for another seed is refused, not silently overwritten
    altered = json.loads(drawn)
    altered["seed"] = 1
    protocol.write_text(json.dumps(altered))
    with pytest.raises(SystemExit, match="delete the file"):
        _attack(checkpoint, out, "--method", "pga")


@pytest.mark.parametrize("flag, value, message", [("--eps", "0", "--eps must be a number in (0, 1]"),
                                                  ("--eps", "-8/255", "--eps must be a number in (0, 1]"),
                                                  ("--eps", "eight", "8/255"),
                                                  ("--steps", "0", "--steps must be an integer >= 1"),
                                                  ("--queries", "0", "--queries must be >= 1")])
def test_attack_bad_budget_is_a_clear_error(checkpoint, tmp_path, flag, value, message):
    out = tmp_path / "r.json"
    args = ["attack", "--model", str(checkpoint), "--method", "pga", "--queries", "10", "--json", str(out), "--quiet"]
    with pytest.raises(SystemExit) as err:
        main(args + [f"{flag}={value}"])
    assert str(err.value).startswith("error:") and message in str(err.value)
    assert not out.exists()


def test_attack_unknown_method_lists_the_choices(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["attack", "--model", str(checkpoint), "--method", "pgaa", "--json", str(tmp_path / "r.json")])
    assert err.value.code != 0
    message = capsys.readouterr().err
    assert "pgaa" in message and "pga" in message and "mainstay" in message and "prosgan" in message


def test_attack_mode_the_method_lacks_lists_the_valid_methods(checkpoint, tmp_path):
    with pytest.raises(SystemExit, match="targeted only"):
        _attack(checkpoint, tmp_path / "r.json", "--method", "p2p")
    with pytest.raises(SystemExit, match="no targeted mode"):
        _attack(checkpoint, tmp_path / "r.json", "--method", "hag", "--targeted")
    with pytest.raises(SystemExit, match="steps must be 1"):  # a one-pass generator
        _attack(checkpoint, tmp_path / "r.json", "--method", "prosgan", "--targeted")


def test_attack_param_values_are_read_as_json(checkpoint, tmp_path):
    from hashguard.cli import _param

    assert _param("lr=0.5") == ("lr", 0.5)
    assert _param("random_start=true") == ("random_start", True)
    assert _param('gan={"epochs": 2, "width": 8}') == ("gan", {"epochs": 2, "width": 8})
    assert _param("code=mainstay") == ("code", "mainstay")  # not JSON: kept as text
    assert _param(" eps = 4/255") == ("eps", " 4/255")
    with pytest.raises(Exception, match="KEY=VALUE"):
        _param("lr")
    out = tmp_path / "r.json"
    assert _attack(checkpoint, out, "--method", "mainstay", "--param", "loss=margin", "--param", "step=0.01") == 0
    record = json.loads(out.read_text())
    assert record["params"] == {"loss": "margin", "step": 0.01, "steps": 5}


def test_attack_malformed_or_unknown_params_are_clear_errors(checkpoint, tmp_path, capsys):
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit):
        _attack(checkpoint, out, "--method", "pga", "--param", "lr")
    assert "KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="margin"):
        _attack(checkpoint, out, "--method", "pga", "--param", "margin=0.5")
    with pytest.raises(SystemExit, match="marginn") as err:
        _attack(checkpoint, out, "--method", "pga", "--param", "marginn=-0.5")
    assert "margin" in str(err.value) and "valid parameters" in str(err.value)
    assert not out.exists()
