"""Command-line values are checked by type and range before anything is loaded or run (issue 12).

Before, ``--eps 300/255`` and ``--param eps=5`` ran an unbounded attack, a huge ``--bits`` tried to
allocate the hash layer, ``--device tpu`` gave a traceback and a truthy string was used as true.
Every test here replaces the loaders and runners with spies that must never be called.
"""

from __future__ import annotations

import pytest
import torch

import hashguard.defenses as defenses_module
import hashguard.hashing as hashing_module
from hashguard import cli
from hashguard.bench import runner as runner_module
from hashguard.cli import build_parser, main


class Started(Exception):
    """Raised by a spy: work began although a value was bad."""


@pytest.fixture
def spies(monkeypatch):
    calls = []

    def spy(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise Started(name)
        return record

    monkeypatch.setattr(cli, "_load_model", spy("load model"))
    monkeypatch.setattr(cli, "_load_splits", spy("load data"))
    monkeypatch.setattr(hashing_module, "train_checkpoint", spy("train"))
    monkeypatch.setattr(defenses_module, "defend_checkpoint", spy("defend"))
    monkeypatch.setattr(runner_module, "run_grid", spy("run grid"))
    return calls


def refused(argv, capsys) -> str:
    """The one-line error of a refused command (raised as SystemExit or returned as status 2)."""
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    text = code if isinstance(code, str) else capsys.readouterr().err
    assert code not in (0, None), "the command was accepted"
    assert "Traceback" not in text
    return text


ATTACK = ["attack", "--model", "m.pt", "--method", "pga", "--json", "r.json", "--quiet"]
DEFEND = ["defend", "--model", "m.pt", "--method", "saat", "--out", "d.pt", "--quiet"]
TRAIN = ["train", "--dataset", "synthetic", "--out", "m.pt", "--quiet"]

CASES = {
    "attack-eps-flag": (ATTACK + ["--eps", "300/255"], ["--eps", "300/255", "(0, 1]"]),
    "attack-eps-param": (ATTACK + ["--param", "eps=5"], ["pga.eps", "did you mean 5/255"]),
    "attack-lr-text": (ATTACK + ["--param", "lr=fast"], ["pga.lr", "fast"]),
    "attack-bool-text": (ATTACK + ["--param", "random_start=maybe"], ["pga.random_start", "true or false"]),
    "attack-optimizer": (ATTACK + ["--param", "optimizer=nadam"], ["pga.optimizer", "sign, sgd, adam"]),
    "attack-steps-fraction": (ATTACK + ["--param", "steps=10.5"], ["pga.steps", "integer"]),
    "attack-margin": (ATTACK + ["--param", "margin=0.5"], ["pga.margin", "(-1, 0)"]),
    "attack-nested": (["attack", "--model", "m.pt", "--method", "tha", "--targeted", "--json", "r.json",
                       "--param", 'prototype={"epochs": "5"}'], ["tha.prototype.epochs"]),
    "attack-batch-size": (ATTACK + ["--batch-size", "0"], ["--batch-size"]),
    "attack-device-tpu": (ATTACK + ["--device", "tpu"], ["--device", "tpu", "auto, cpu, cuda, cuda:N"]),
    "defend-lam-text": (DEFEND + ["--param", "lam=abc"], ["saat.lam", '"abc"', "lam=1.0"]),
    "defend-optimizer": (DEFEND + ["--param", "optimizer=nadam"], ["saat.optimizer", "sgd, adam"]),
    "defend-eps": (DEFEND + ["--param", "eps=5"], ["saat.eps", "5/255"]),
    "defend-epochs-text": (DEFEND + ["--param", "epochs=five"], ["saat.epochs"]),
    "defend-lr-flag": (DEFEND + ["--lr", "-1"], ["--lr", "> 0"]),
    "defend-eval-steps": (DEFEND + ["--eval-steps", "0"], ["--eval-steps"]),
    "defend-device": (DEFEND + ["--device", "tpu"], ["--device", "tpu"]),
    "train-bits-huge": (TRAIN + ["--bits", "100000000"], ["--bits", "4096", "12 to 128"]),
    "train-bits-4097": (TRAIN + ["--bits", "4097"], ["--bits", "4096"]),
    "train-lr": (TRAIN + ["--lr", "-0.1"], ["--lr"]),
    "train-lr-nan": (TRAIN + ["--lr", "nan"], ["--lr"]),
    "train-epochs": (TRAIN + ["--epochs", "0"], ["--epochs", ">= 1"]),
    "train-batch-size": (TRAIN + ["--batch-size", "1"], ["--batch-size", ">= 2"]),
    "train-warmup": (TRAIN + ["--warmup-epochs", "-1"], ["--warmup-epochs"]),
    "train-device-tpu": (TRAIN + ["--device", "tpu"], ["--device", "tpu"]),
    "bench-queries": (["bench", "--preset", "quick", "--out", "runs", "--queries", "-3"], ["--queries", ">= 0"]),
    "bench-device": (["bench", "--preset", "quick", "--out", "runs", "--device", "tpu"], ["--device", "tpu"]),
}


@pytest.mark.parametrize("argv, words", list(CASES.values()), ids=list(CASES))
def test_bad_values_are_refused_before_any_work(tmp_path, monkeypatch, capsys, spies, argv, words):
    monkeypatch.chdir(tmp_path)
    message = refused(argv, capsys)
    for word in words:
        assert word in message, (word, message)
    assert spies == []
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "runs").exists()


def test_mps_and_missing_gpus_are_one_line_errors(tmp_path, monkeypatch, capsys, spies):
    monkeypatch.chdir(tmp_path)
    if not torch.backends.mps.is_available():
        assert "mps" in refused(TRAIN + ["--device", "mps"], capsys)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    message = refused(TRAIN + ["--device", "cuda:3"], capsys)
    assert "GPU 3" in message and "1 CUDA device" in message
    assert spies == []


def test_a_bad_grid_file_is_refused_before_any_run(tmp_path, capsys, spies):
    grid = tmp_path / "grid.toml"
    grid.write_text('datasets = ["synthetic"]\n[attacks]\nuntargeted = ["pga"]\n[defenses]\nmethods = ["saat"]\n'
                    'untargeted = ["pga"]\nparams = { saat = { lam = "abc" } }\n')
    out = tmp_path / "runs"
    message = refused(["bench", "--grid", str(grid), "--out", str(out), "--quiet"], capsys)
    assert "saat.lam" in message and '"abc"' in message
    assert spies == [] and not list(out.glob("records/*.json"))


def test_good_values_are_read_with_their_types():
    args = build_parser().parse_args(ATTACK + ["--eps", "4/255", "--steps", "7", "--param", "random_start=yes",
                                               "--param", "check_every=5.0", "--param", "lr=none"])
    assert cli._attack_params(args) == {"eps": pytest.approx(4 / 255), "steps": 7, "random_start": True,
                                        "check_every": 5, "lr": None}
    args = build_parser().parse_args(DEFEND + ["--epochs", "3", "--param", "random_start=0", "--param", "lam=2"])
    assert cli._defense_params(args) == {"seed": 0, "epochs": 3, "random_start": False, "lam": 2}
