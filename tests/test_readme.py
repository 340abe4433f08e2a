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
    code = "\n".join(re.findall(r"```python\n(.*?)```", README.read_text(), re.S))
    assert "load_checkpoint" in code and "train_hash_model" in code
    code = code.replace("TrainConfig(epochs=6, warmup_epochs=2, lr_step=4)", "TrainConfig(epochs=1, warmup_epochs=1)")
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "runs" / "mine.pt").exists()
