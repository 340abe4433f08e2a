"""`hashguard bench` killed with SIGKILL part-way: the re-run finishes only the missing records and
leaves the finished ones byte-for-byte unchanged; then `hashguard report` and the CLI's errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hashguard.bench import load_spec_file
from hashguard.bench.plan import plan

GRID = """
name = "kill"
datasets = ["synthetic"]
bits = [16]
queries = 40
eps = 0.1
[train]
epochs = 2
[attacks]
untargeted = ["pga", "mainstay", "ifgsm", "pga-dagger"]
targeted = ["mainstay", "dhta", "p2p"]
steps = { pga = 60, mainstay = 60, ifgsm = 60, pga-dagger = 60, dhta = 60, p2p = 60 }
"""


def _bench(args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "hashguard", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_bench_resumes_and_keeps_finished_records(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "out"
    records = out / "records"
    expected = {r.key for r in plan(load_spec_file(grid))}

    first = _bench(["bench", "--grid", str(grid), "--out", str(out), "--quiet", "--no-report", "--device", "cpu"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if records.is_dir() and len(list(records.glob("*.json"))) >= 3:  # the model and two attacks
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL, "the grid finished before it could be killed"
    finished = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert 3 <= len(finished) < len(expected)

    second = _bench(["bench", "--grid", str(grid), "--out", str(out), "--quiet", "--device", "cpu"])
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr
    after = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert {Path(name).stem for name in after} == expected
    for name, data in finished.items():
        assert after[name] == data  # not run again: timings would differ
    assert not list(records.glob("*.tmp"))
    assert (out / "report.html").is_file() and "report:" in stdout

    third = _bench(["report", str(out)])
    stdout, stderr = third.communicate(timeout=300)
    assert third.returncode == 0, stderr and "report.html" in stdout


def test_cli_bench_errors_before_any_work(tmp_path):
    from hashguard.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="unknown preset 'slow'"):
        main(["bench", "--preset", "slow", "--out", str(out)])
    with pytest.raises(SystemExit, match="exactly one of --preset"):
        main(["bench", "--out", str(out)])
    bad = tmp_path / "bad.toml"
    bad.write_text('datasets = ["cifar100"]\n')
    with pytest.raises(SystemExit, match="unknown dataset 'cifar100'"):
        main(["bench", "--grid", str(bad), "--out", str(out)])
    with pytest.raises(SystemExit, match="--data-dir"):
        main(["bench", "--preset", "paper", "--out", str(out)])
    assert not out.exists()
    with pytest.raises(SystemExit, match="not a directory written by `hashguard bench`"):
        main(["report", str(tmp_path)])
