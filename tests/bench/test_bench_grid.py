"""expand_grid and run_grid, including the kill test: SIGKILL mid-grid, re-run, nothing redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hashguard
import hashguard.bench.grid as grid_module
from hashguard.bench import RecordStore, expand_grid, run_grid

PROTOCOL = {"eps": 8 / 255, "steps": 100}


def test_expand_grid_product_in_order():
    configs = expand_grid({"dataset": ["mnist-mosaic"], "bits": [16, 32], "method": ["pga", "mainstay"], "seed": 0})
    assert configs == [
        {"dataset": "mnist-mosaic", "bits": 16, "method": "pga", "seed": 0},
        {"dataset": "mnist-mosaic", "bits": 16, "method": "mainstay", "seed": 0},
        {"dataset": "mnist-mosaic", "bits": 32, "method": "pga", "seed": 0},
        {"dataset": "mnist-mosaic", "bits": 32, "method": "mainstay", "seed": 0},
    ]
    assert [list(c) for c in configs] == [["dataset", "bits", "method", "seed"]] * 4  # spec's field order
    assert expand_grid({"dataset": ["mnist-mosaic"], "bits": [16, 32], "method": ["pga", "mainstay"], "seed": 0}) == configs


def test_expand_grid_scalars_nested_and_errors():
    assert expand_grid({"bits": 16, "eps": 0.03}) == [{"bits": 16, "eps": 0.03}]
    assert expand_grid({}) == [{}]
    assert expand_grid({"topk": [[10, 100]], "bits": (16, 32)}) == [{"topk": [10, 100], "bits": 16}, {"topk": [10, 100], "bits": 32}]
    nested = {"attack": {"steps": 10}, "bits": [16, 32]}
    configs = expand_grid(nested)
    configs[0]["attack"]["steps"] = 99  # each config is its own copy
    assert configs[1]["attack"] == {"steps": 10} and nested["attack"] == {"steps": 10}
    with pytest.raises(ValueError, match="'bits'"):
        expand_grid({"bits": []})
    with pytest.raises(ValueError, match="dict"):
        expand_grid([{"bits": 16}])


def fake_run(config):
    return {"map": config["bits"] / 100, "method": config["method"]}, {"attack_seconds": 0.0}


def test_run_grid_runs_only_missing_configs(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    configs = expand_grid({"bits": [16, 32], "method": ["pga", "mainstay"]})
    store.put(configs[1], *fake_run(configs[1]))
    store.put(configs[2], *fake_run(configs[2]))
    calls = []

    def run_one(config):
        calls.append(config)
        return fake_run(config)

    records = run_grid(store, configs, run_one, progress=False)
    assert calls == [configs[0], configs[3]]
    assert [r["config"] for r in records] == configs
    assert [r["metrics"]["map"] for r in records] == [0.16, 0.16, 0.32, 0.32]
    assert [r["key"] for r in records] == [store.key_of(c) for c in configs]
    assert records[0]["timings"]["attack_seconds"] == 0.0 and records[0]["timings"]["wall_seconds"] >= 0
    assert "wall_seconds" not in records[1]["timings"]  # skipped: the stored record, untouched
    assert len(store.records()) == 4

    calls.clear()
    assert run_grid(store, configs, run_one, progress=False) == records
    assert calls == []


def test_run_grid_duplicates_and_config_copies(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    configs = [{"bits": 16, "method": "pga"}, {"method": "pga", "bits": 16}]
    calls = []

    def run_one(config):
        calls.append(dict(config))
        config["bits"] = 64  # mutating its copy does not change what is stored
        return fake_run({"bits": 16, "method": "pga"})

    records = run_grid(store, configs, run_one, progress=False)
    assert len(calls) == 1 and records[0] == records[1]
    assert records[0]["config"] == {"bits": 16, "method": "pga"} and configs[0]["bits"] == 16


def test_run_grid_progress_bar_counts_finished_runs(tmp_path, monkeypatch):
    seen = {}
    real_tqdm = grid_module.tqdm

    def spy(*args, **kwargs):
        seen.update(kwargs)
        bar = real_tqdm(*args, **{**kwargs, "disable": True})
        return bar

    monkeypatch.setattr(grid_module, "tqdm", spy)
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    configs = expand_grid({"bits": [16, 32, 64], "method": ["pga"]})
    store.put(configs[0], *fake_run(configs[0]))
    run_grid(store, configs, fake_run)
    assert seen["total"] == 3 and seen["initial"] == 1 and seen["disable"] is False


def test_run_grid_failure_keeps_finished_records_and_resumes(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    configs = expand_grid({"bits": [16, 32, 64], "method": ["pga"]})

    def crash_on_32(config):
        if config["bits"] == 32:
            raise RuntimeError("out of memory")
        return fake_run(config)

    with pytest.raises(RuntimeError, match="out of memory"):
        run_grid(store, configs, crash_on_32, progress=False)
    assert [store.has(c) for c in configs] == [True, False, False]
    calls = []
    run_grid(store, configs, lambda c: (calls.append(c), fake_run(c))[1], progress=False)
    assert calls == configs[1:]


def test_run_grid_checks_results_and_records_before_running(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    configs = expand_grid({"bits": [16, 32], "method": ["pga"]})
    with pytest.raises(TypeError, match="metrics, timings"):
        run_grid(store, configs, lambda c: {"map": 0.5}, progress=False)
    assert not any(store.has(c) for c in configs)

    store.put(configs[1], *fake_run(configs[1]))
    store.path_of(configs[1]).write_text("{trunc")
    calls = []
    with pytest.raises(ValueError, match=store.key_of(configs[1])):
        run_grid(store, configs, lambda c: (calls.append(c), fake_run(c))[1], progress=False)
    assert calls == []  # a corrupt record stops the grid before any work


# -- the kill test ------------------------------------------------------------------------------

GRID_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from hashguard.bench import RecordStore, expand_grid, run_grid

    directory, ran_log = sys.argv[1], sys.argv[2]
    store = RecordStore(directory, protocol={"eps": 8 / 255, "steps": 100})
    configs = expand_grid({"dataset": "synthetic", "bits": [16, 32, 48, 64], "method": ["pga", "mainstay", "dhta"]})

    def run_one(config):
        with open(ran_log, "a") as log:
            log.write(json.dumps(config, sort_keys=True) + "\\n")
        time.sleep(0.2)
        return {"map": config["bits"] / 1000, "method": config["method"]}, {"attack_seconds": 0.2}

    run_grid(store, configs, run_one, progress=False)
    """
)


def start_grid(script, directory, ran_log):
    env = dict(os.environ)
    src = str(Path(hashguard.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, str(script), str(directory), str(ran_log)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_grid_resumes_without_redoing_finished_runs(tmp_path):
    script = tmp_path / "grid_run.py"
    script.write_text(GRID_SCRIPT)
    results = tmp_path / "results"
    records_dir = results / "records"
    configs = expand_grid({"dataset": "synthetic", "bits": [16, 32, 48, 64], "method": ["pga", "mainstay", "dhta"]})
    assert len(configs) == 12

    first = start_grid(script, results, tmp_path / "ran-1.log")
    try:
        deadline = time.monotonic() + 30
        while len(list(records_dir.glob("*.json"))) < 3:
            if first.poll() is not None:
                pytest.fail(f"the grid exited ({first.returncode}) before 3 records:\n{first.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("no 3 records within 30 s")
            time.sleep(0.01)
        first.kill()
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        first.stdout.close()
        first.stderr.close()
    assert first.returncode == -signal.SIGKILL  # killed mid-grid, not finished

    finished = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in records_dir.glob("*.json")}
    header = (results / "store.json").read_bytes()
    store = RecordStore(results, protocol={"eps": 8 / 255, "steps": 100})
    done = [c for c in configs if store.has(c)]
    missing = [c for c in configs if not store.has(c)]
    assert len(finished) == len(done) >= 3 and missing
    assert done == configs[: len(done)]  # the grid runs in order
    assert read_log(tmp_path / "ran-1.log")[: len(done)] == done

    second = start_grid(script, results, tmp_path / "ran-2.log")
    try:
        out, err = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, err.decode()

    assert read_log(tmp_path / "ran-2.log") == missing  # exactly the missing runs, in order
    assert all(store.has(c) for c in configs)
    assert sorted(r["key"] for r in store.records()) == sorted(store.key_of(c) for c in configs)
    for name, (data, mtime_ns) in finished.items():
        path = records_dir / name
        assert path.read_bytes() == data, f"{name} was rewritten"
        assert path.stat().st_mtime_ns == mtime_ns, f"{name} was touched"
    assert (results / "store.json").read_bytes() == header
    assert [store.get(c)["metrics"]["map"] for c in configs] == [c["bits"] / 1000 for c in configs]
