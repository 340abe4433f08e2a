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
    code = "\n".join(b for b in blocks if not b.startswith("from hashguard.bench"))  # the bench block: below
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
