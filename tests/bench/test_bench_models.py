"""Grids with existing models (``[[models]]``): benchmarked without retraining, mixed with trained ones."""

from __future__ import annotations

import json

import pytest

from hashguard.bench import BenchSpec, load_spec_file, run_bench
from hashguard.bench.plan import TRANSFER, plan
from hashguard.cli import main
from hashguard.models import read_checkpoint_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("existing") / "dph-16.pt"
    assert main(["train", "--dataset", "synthetic", "--hash", "dph", "--bits", "16", "--epochs", "2",
                 "--warmup-epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out


def test_a_checkpoint_and_a_trained_model_share_one_grid(checkpoint, tmp_path, single_thread):
    grid = tmp_path / "grid.toml"
    grid.write_text(f"""
datasets = ["synthetic"]
bits = [16]
queries = 10
[train]
epochs = 1
[attacks]
untargeted = ["pga"]
steps = {{ pga = 3 }}
[transfer]
untargeted = ["pga"]
[[models]]
name = "old-dph"
checkpoint = "{checkpoint.name}"
""")
    (tmp_path / checkpoint.name).write_bytes(checkpoint.read_bytes())  # relative to the grid file
    spec = load_spec_file(grid)
    assert spec.n_models == 2 and spec.models[0]["dataset"] == "synthetic"
    transfers = [r for r in plan(spec) if r.role == TRANSFER]
    assert len(transfers) == 4  # both ordered pairs and both diagonals
    result = run_bench(spec, tmp_path / "out", progress=False)
    kinds = [r["config"]["kind"] for r in result["records"]]
    assert kinds.count("train") == 1 and kinds.count("external") == 1
    existing = next(r for r in result["records"] if r["config"]["kind"] == "external")
    assert existing["metrics"]["clean_map"] == pytest.approx(read_checkpoint_config(checkpoint)["clean_map"], abs=1e-12)
    assert len(list((tmp_path / "out" / "models").glob("*.pt"))) == 1  # only the trained one
    report = (tmp_path / "out" / "report.md").read_text()
    assert "old-dph" in report and "DPSH-16" in report and "existing model" in report
    cross = [r for r in result["records"] if r["config"].get("surrogate") and r["config"]["kind"] == "attack"]
    assert len(cross) == 2


def test_bench_cli_benchmarks_a_checkpoint_without_training(checkpoint, tmp_path, single_thread):
    grid = tmp_path / "g.toml"
    grid.write_text('queries = 6\n[attacks]\nuntargeted = ["fgsm"]\n')
    assert main(["bench", "--grid", str(grid), "--model", str(checkpoint), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "b" / "records").glob("*.json")]
    assert sorted(r["config"]["kind"] for r in records) == ["attack", "external"]


@pytest.mark.parametrize("entry, message", [
    ({"def": "x.py:Net", "dataset": "synthetic", "input_norm": "none"}, "needs name"),
    ({"name": "a", "def": "x.py:Net", "input_norm": "none"}, "needs dataset"),
    ({"name": "a", "def": "x.py:Net", "dataset": "nope", "input_norm": "none"}, "unknown dataset 'nope'"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic"}, "needs input_norm"),
    ({"name": "a", "def": "missing.py:Net", "dataset": "synthetic", "input_norm": "none"}, "does not exist"),
    ({"name": "a", "def": "net.py", "dataset": "synthetic", "input_norm": "none"}, "FILE.py:NAME"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "bogus"}, "input_norm"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "none", "output": "sigmoid"}, "output"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "none", "hash_method": "x"}, "hash_method"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "none", "wieghts": "w"}, "wieghts"),
    ({"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "none", "weights": "no.pth"}, "does not exist"),
    ({"name": "a", "checkpoint": "no.pt"}, "does not exist"),
])
def test_bad_model_entries_fail_before_any_work(tmp_path, monkeypatch, entry, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("import torch\nNet = lambda: torch.nn.Linear(2, 2)\n")
    with pytest.raises(ValueError, match=message):
        BenchSpec.from_dict({"models": [entry], "attacks": {"untargeted": ["pga"]}})


def test_model_names_must_be_unique_and_a_grid_needs_a_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("import torch\nNet = lambda: torch.nn.Linear(2, 2)\n")
    entry = {"name": "a", "def": "net.py:Net", "dataset": "synthetic", "input_norm": "none"}
    with pytest.raises(ValueError, match="unique"):
        BenchSpec.from_dict({"models": [entry, entry]})
    with pytest.raises(ValueError, match="no model"):
        BenchSpec.from_dict({"datasets": []})
    with pytest.raises(ValueError, match="bits is empty"):
        BenchSpec.from_dict({"bits": []})
