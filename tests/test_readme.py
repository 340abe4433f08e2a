"""The README's Python examples run as written (on the tiny synthetic dataset, one epoch)."""

from __future__ import annotations

import re
from pathlib import Path

from hashguard.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch, single_thread):
    checkpoint = tmp_path / "runs" / "dpsh-32.pt"
    # the first README command's checkpoint, made quickly on the synthetic dataset
    assert main(["train", "--dataset", "synthetic", "--bits", "32", "--epochs", "1", "--warmup-epochs", "1",
                 "--out", str(checkpoint), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = "\n".join(b for b in blocks if not b.startswith(("from hashguard.bench", "import hashguard")))  # below
    assert "load_checkpoint" in code and "train_hash_model" in code
    code = code.replace("TrainConfig(epochs=6, warmup_epochs=2, lr_step=4)", "TrainConfig(epochs=1, warmup_epochs=1)")
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "runs" / "mine.pt").exists()


def test_readme_grid_file_and_bench_example_run(tmp_path, monkeypatch, single_thread):
    """The README's TOML grid is valid as written, and its bench example runs on a shrunken copy."""
    from hashguard.bench import load_spec_file
    from hashguard.bench.plan import plan

    text = README.read_text()
    grid = re.findall(r"```toml\n(.*?)```", text, re.S)[0]
    (tmp_path / "as-written.toml").write_text(grid)
    spec = load_spec_file(tmp_path / "as-written.toml")
    assert spec.n_models == 4 and len(plan(spec)) > 4
    small = (grid.replace('"mnist-mosaic"', '"synthetic"').replace("bits = [16, 32]", "bits = [16]")
             .replace("queries = 500", "queries = 8").replace("epochs = 6", "epochs = 1").replace("epochs = 5", "epochs = 1")
             .replace("steps = { hag = 200, dhta = 200 }", "steps = { hag = 2, dhta = 2, pga = 2, mainstay = 2 }")
             .replace("steps = [10, 20, 50, 100]", "steps = [1, 2]").replace("queries = 100", "queries = 4"))
    small = small.replace("[defenses]\n", "[defenses]\nsteps = { pga = 2, mainstay = 2 }\neval_queries = 4\neval_steps = 1\n")
    small = small.replace("[transfer]\n", "[transfer]\nsteps = { mainstay = 2 }\n")
    (tmp_path / "my-grid.toml").write_text(small)
    monkeypatch.chdir(tmp_path)
    code = re.findall(r"```python\n(from hashguard.bench.*?)```", text, re.S)[0]
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "runs" / "my-grid" / "report.html").is_file()


MINE_PY = """
import torch
from torch import nn


class MyHashNet(nn.Module):
    def __init__(self, bits=16):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(4))
        self.fc = nn.Linear(16 * 8 * 8, 128)
        self.hash_layer = nn.Linear(128, bits)

    def forward(self, x):
        return torch.tanh(self.hash_layer(torch.relu(self.fc(self.features(x).flatten(1)))))
"""


def test_readme_your_own_model_runs(tmp_path, monkeypatch, single_thread):
    """The "Your own model" section as a new user runs it: her class in mine.py, her state_dict,
    her list files; the Python lines (smaller budgets) and the command (fewer queries) as written."""
    import shlex
    import sys

    import torch

    from user_data import write_lists

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mine.py").write_text(MINE_PY)
    write_lists(tmp_path / "data" / "mine")
    namespace = {}
    exec(MINE_PY, namespace)
    torch.manual_seed(0)
    torch.save(namespace["MyHashNet"]().state_dict(), tmp_path / "mine.pth")
    section = README.read_text().split("## Your own model", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert len(code.strip().splitlines()) <= 5
    small = code.replace('out="runs/mine")', 'out="runs/mine", attacks="fast", queries=8, steps={"pga": 2, "mainstay": 2})')
    assert small != code
    exec(compile(small, str(README), "exec"), {})
    assert (tmp_path / "runs" / "mine" / "report.html").is_file()
    command = re.findall(r"```bash\n(.*?)```", section, re.S)[0].strip()
    assert "\n" not in command and command.startswith("hashguard bench")
    sys.modules.pop("mine", None)
    assert main(shlex.split(command)[1:] + ["--queries", "8", "--quiet"]) == 0
    out = tmp_path / "runs" / "mine-bench"
    assert (out / "report.html").is_file()
    defended = sorted((out / "models").glob("*.pt"))
    assert defended, "the quick preset's defenses wrote the defended copies"
    net = namespace["MyHashNet"]()
    net.load_state_dict(torch.load(defended[0], weights_only=True))
    # the README's [[models]] tables validate as written (files of this user, a checkpoint of hashguard)
    assert main(["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "1", "--warmup-epochs", "1",
                 "--out", "runs/dpsh-32.pt", "--quiet"]) == 0
    from hashguard.bench import load_spec_file

    grid = [b for b in re.findall(r"```toml\n(.*?)```", README.read_text(), re.S) if "[[models]]" in b][0]
    (tmp_path / "models.toml").write_text(grid + '[attacks]\nuntargeted = ["pga"]\n')
    spec = load_spec_file(tmp_path / "models.toml")
    assert [m["name"] for m in spec.models] == ["mine", "dpsh-32"] and spec.datasets == []
    assert spec.models[1]["dataset"] == "synthetic"
