"""Data-parallel training under torchrun (hashguard.data_parallel): two gloo ranks on CPU.

The two end-to-end tests launch ``python -m torch.distributed.run --nproc_per_node 2`` (what
``torchrun`` is) on a small script and compare with the same script run as one process:

- training a model without batch norm gives the single process's weights up to float rounding
  (the global batch, the gathered U buffer and the summed, share-weighted gradients are those of
  one process);
- a 2-rank SAAT epoch writes its resume file once, from rank 0: every write is logged per rank on
  the ``hashguard.data_parallel`` logger, and rank 1's log has none.

The unit tests check the sharding arithmetic and the refusal of batches too small to split.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hashguard import data_parallel as dp
from hashguard.errors import InputError

SRC = str(Path(__file__).resolve().parents[1] / "src")

# builds a hash model without batch norm (conv, ReLU, pooling, linear) on the synthetic dataset
MODEL = textwrap.dedent("""
    import torch
    from torch import nn
    from hashguard.models.backbones import Backbone
    from hashguard.models.hash_model import HashModel

    def plain_model(bits=16):
        torch.manual_seed(0)
        features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                 nn.Linear(128, 32), nn.ReLU())
        return HashModel(Backbone(features, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), bits)
""")

TRAIN_SCRIPT = MODEL + textwrap.dedent("""
    import sys
    from hashguard import data_parallel as dp
    from hashguard.data import create_dataset
    from hashguard.hashing import TrainConfig, create_hashing, train_hash_model

    def train(out):
        torch.set_num_threads(1)
        ranks, device = dp.init_from_env("cpu")
        splits = create_dataset("synthetic", seed=0)
        model = plain_model()
        objective = create_hashing("dpsh", bits=16, train_labels=splits.train.labels)
        # 120 items in batches of 25: the last batch (20) splits 10 / 10, the others 13 / 12
        history = train_hash_model(model, objective, splits.train,
                                   TrainConfig(epochs=2, warmup_epochs=1, batch_size=25, lr=0.05, seed=0),
                                   progress=False)
        dp.write_on_rank_zero(lambda: torch.save({"model": model.state_dict(), "U": objective.U,
                                                  "losses": history.losses}, out), out, ranks)
        dp.shutdown()

    if __name__ == "__main__":
        train(sys.argv[1])
""")

DEFEND_SCRIPT = MODEL + textwrap.dedent("""
    import logging, os, sys
    from hashguard import data_parallel as dp
    from hashguard.data import create_dataset
    from hashguard.defenses import create_defense

    def defend(folder):
        torch.set_num_threads(1)
        ranks, device = dp.init_from_env("cpu")
        splits = create_dataset("synthetic", seed=0)
        defense = create_defense("saat", plain_model().eval(), "dpsh", epochs=1, batch_size=30, steps=2)
        defended = defense.fit(splits.train, resume_path=os.path.join(folder, "saat.resume.pt"), progress=False)
        out = os.path.join(folder, "defended.pt")
        dp.write_on_rank_zero(lambda: torch.save(defended.state_dict(), out), out, ranks)
        dp.shutdown()

    if __name__ == "__main__":  # each rank logs to its own file what it wrote
        logging.basicConfig(filename=os.path.join(sys.argv[1], "rank-" + os.environ["RANK"] + ".log"),
                            level=logging.INFO, format="%(name)s %(message)s")
        defend(sys.argv[1])
""")


def _in_process(script: str, function: str, *args) -> None:
    """The script's ``function`` run in this process: the single-process reference."""
    namespace: dict = {"__name__": "reference"}
    exec(compile(script, "<reference>", "exec"), namespace)
    namespace[function](*args)


def _run(script: str, args, tmp_path: Path, ranks: int) -> None:
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
               str(path), *args]
    # its own session, so that a hang kills the launcher and both ranks, not the launcher alone
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]


def test_two_gloo_ranks_train_the_single_process_weights(tmp_path, single_thread):
    _in_process(TRAIN_SCRIPT, "train", str(tmp_path / "one.pt"))
    _run(TRAIN_SCRIPT, [str(tmp_path / "two.pt")], tmp_path, ranks=2)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    assert one["model"].keys() == two["model"].keys()
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-4, msg=key)
    # U holds tanh codes of logits up to ~100: rounding moves a few entries by up to ~2e-3
    difference = (two["U"] - one["U"]).abs()
    assert float(difference.max()) < 1e-2 and float(difference.mean()) < 1e-4
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)


def test_a_two_rank_saat_epoch_writes_its_resume_file_once_from_rank_zero(tmp_path, single_thread):
    _run(DEFEND_SCRIPT, [str(tmp_path)], tmp_path, ranks=2)
    rank0 = (tmp_path / "rank-0.log").read_text().splitlines()
    rank1 = (tmp_path / "rank-1.log").read_text().splitlines()
    resume_writes = [line for line in rank0 if "wrote resume file" in line]
    assert len(resume_writes) == 1 and "saat.resume.pt" in resume_writes[0] and "rank 0 wrote" in resume_writes[0]
    assert not [line for line in rank1 if "wrote" in line]
    state = torch.load(tmp_path / "saat.resume.pt", weights_only=True)
    assert state["epoch"] == 1
    # rank 0's copy (the resume file) equals what the run returned, and the single process's run
    defended = torch.load(tmp_path / "defended.pt", weights_only=True)
    single = tmp_path / "single"
    single.mkdir()
    _in_process(DEFEND_SCRIPT, "defend", str(single))
    reference = torch.load(single / "defended.pt", weights_only=True)
    for key, value in defended.items():
        torch.testing.assert_close(state["model"][key], value)
        torch.testing.assert_close(value, reference[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("size,world", [(7, 2), (8, 3), (32, 4), (2, 2)])
def test_shards_are_contiguous_near_equal_and_cover_the_batch(size, world):
    parts = [dp.shard(size, dp.Ranks(r, world)) for r in range(world)]
    assert parts[0].start == 0 and parts[-1].stop == size
    assert all(a.stop == b.start for a, b in zip(parts[:-1], parts[1:], strict=True))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == [t.numel() for t in torch.tensor_split(torch.arange(size), world)]


def test_a_batch_smaller_than_the_ranks_is_refused_with_the_fix():
    dp.check_batch_sizes([32, 3], dp.Ranks(0, 3))
    with pytest.raises(InputError, match="--batch-size.*nproc_per_node"):
        dp.check_batch_sizes([32, 2], dp.Ranks(0, 3))


def test_a_single_process_is_left_alone(monkeypatch):
    for name in dp.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert dp.init_from_env("cpu") == (dp.SINGLE, "cpu")
    assert dp.current_ranks() == dp.SINGLE
    rows = torch.arange(6.0).view(3, 2)
    assert dp.gather_rows(rows, 3, dp.SINGLE) is rows


@pytest.mark.slow
def test_torchrun_runs_the_train_and_defend_commands(tmp_path):
    """``torchrun -m hashguard train`` then ``defend``: one summary line (rank 0), the rank count and
    the precision recorded, the resume and lock files gone at the end."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hashguard"]
    model, defended = tmp_path / "m.pt", tmp_path / "d.pt"
    for args in (["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "1", "--warmup-epochs", "1",
                  "--quiet", "--out", str(model)],
                 ["defend", "--model", str(model), "--method", "saat", "--epochs", "1", "--param", "steps=2",
                  "--eval-queries", "20", "--eval-steps", "2", "--precision", "bf16", "--quiet", "--out", str(defended)]):
        done = subprocess.run(launcher + args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len([line for line in done.stdout.splitlines() if "->" in line]) == 1
    import json

    config = json.loads((tmp_path / "d.pt.json").read_text())
    assert config["training"]["world_size"] == 2 and config["defense"]["world_size"] == 2
    assert config["defense"]["precision"] == "bf16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pt", "d.pt.json", "m.pt", "m.pt.json"]
