"""The ``hashguard`` command end to end on the tiny synthetic dataset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hashguard.cli import main
from hashguard.models import read_checkpoint_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model.pt"
    code = main(["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "2", "--warmup-epochs", "1",
                 "--seed", "0", "--out", str(out), "--quiet"])
    assert code == 0
    return out


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
