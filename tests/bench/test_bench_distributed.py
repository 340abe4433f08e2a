"""A benchmark grid on a local Dask cluster (``run_bench(..., workers=2)``, ``--scheduler``):
the same metrics as the sequential run at the same threads per run, a worker killed mid-run,
a grid already half done, and the errors given before any work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time

import pytest

from hashguard.bench import BenchSpec, run_bench
from hashguard.bench.distributed import PROBE_DIR, RUN_FILE, probe_folder
from hashguard.bench.plan import DEFENSE, REATTACK, plan
from hashguard.errors import InputError

pytest.importorskip("distributed", reason="the Dask tests need pip install 'hashguard[distributed]' (in [test])")

# one model, two attacks, one defense (with its re-attack): five runs, a few seconds sequentially
GRID = {
    "name": "tiny-dask", "datasets": ["synthetic"], "objectives": ["dpsh"], "bits": [16], "queries": 10, "eps": 0.1,
    "train": {"epochs": 2},
    "attacks": {"untargeted": ["pga"], "targeted": ["mainstay"], "steps": {"pga": 3, "mainstay": 3}},
    "defenses": {"methods": ["saat"], "epochs": 1, "untargeted": ["pga"], "targeted": [], "steps": {"pga": 3},
                 "eval_queries": 10, "eval_steps": 2},
}


def _spec() -> BenchSpec:
    return BenchSpec.from_dict(GRID)


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def _without_times(value):
    """Metrics less what measures time (``seconds``, ``seconds_per_query``, an epoch's ``seconds``)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The grid run in this process, one thread per run: the reference records."""
    out = tmp_path_factory.mktemp("sequential") / "out"
    result = run_bench(_spec(), out, progress=False, report=False, threads_per_run=1)
    assert len(result["ran"]) == len({r.key for r in plan(_spec())}) == 5
    return out, _records(out)


def _assert_same_metrics(records, reference):
    assert set(records) == set(reference)
    for key, record in records.items():
        assert record["timings"]["threads"] == reference[key]["timings"]["threads"] == 1, key
        assert _without_times(record["metrics"]) == _without_times(reference[key]["metrics"]), key
        assert record["config"] == reference[key]["config"]


def test_two_workers_give_the_sequential_metrics(tmp_path, sequential):
    _, reference = sequential
    out = tmp_path / "out"
    # with the progress bar: its per-worker postfix is fed by events on the client's event loop
    result = run_bench(_spec(), out, progress=True, report=False, workers=2)
    assert sorted(result["ran"]) == sorted(reference)
    assert [r["key"] for r in result["records"]] == [r.key for r in plan(_spec())]
    _assert_same_metrics(_records(out), reference)
    assert (out / "models").is_dir() and len(list((out / "models").glob("*.pt"))) == 2  # trained + defended
    assert not (out / RUN_FILE).exists() and not (out / PROBE_DIR).exists()  # the worker check cleans up
    assert not list((out / "records").glob("*.tmp")) and not (out / ".hashguard.lock").exists()


@pytest.mark.slow
def test_half_done_grid_runs_only_the_missing_runs(tmp_path, sequential):
    source, reference = sequential
    out = tmp_path / "out"
    shutil.copytree(source, out)
    runs = plan(_spec())
    missing = {r.key for r in runs if r.role in (DEFENSE, REATTACK) and r.defense == "saat"}
    missing.add(next(r.key for r in runs if r.config.get("method") == "mainstay"))
    for key in missing:
        (out / "records" / f"{key}.json").unlink()
    (out / "models" / f"{next(r.key for r in runs if r.role == DEFENSE)}.pt").unlink()  # the defense runs again
    kept = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}

    result = run_bench(_spec(), out, progress=False, report=False, workers=2)
    assert sorted(result["ran"]) == sorted(missing)
    for name, data in kept.items():
        assert (out / "records" / name).read_bytes() == data  # not run again: its timings would differ
    _assert_same_metrics(_records(out), reference)


class _KillOnce:
    """A Dask worker plugin: the first worker to start executing a task whose key holds ``pattern``
    kills its own process (SIGKILL) ``delay`` seconds later; ``marker`` (created exclusively)
    guards the once and keeps the dead process's pid."""

    def __init__(self, marker: str, pattern: str, delay: float):
        self.marker, self.pattern, self.delay = marker, pattern, delay

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or self.pattern not in str(key):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)

        def kill():
            time.sleep(self.delay)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill, daemon=True).start()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_worker_has_its_run_rerun_and_the_grid_completes(tmp_path, sequential):
    import cloudpickle
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import WorkerPlugin

    _, reference = sequential
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the plugin's class, on the workers
    plugin = type("KillOnce", (_KillOnce, WorkerPlugin), {})(str(tmp_path / "killed"), "_saat-", 0.5)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, processes=True) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.register_plugin(plugin)
        result = run_bench(_spec(), out, progress=False, report=False, scheduler=cluster.scheduler_address)
    killed = int((tmp_path / "killed").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # the worker that started the defense is gone
    assert sorted(result["ran"]) == sorted(reference)
    _assert_same_metrics(_records(out), reference)  # the defense ran again elsewhere, to the same result
    assert not list((out / "records").glob("*.tmp"))


def test_the_worker_check_names_a_folder_a_worker_cannot_see(tmp_path):
    answer = probe_folder(str(tmp_path), "abc")
    assert "does not exist there" in answer["error"]
    (tmp_path / RUN_FILE).write_text(json.dumps({"token": "other"}))
    assert "another grid's token" in probe_folder(str(tmp_path), "abc")["error"]
    (tmp_path / RUN_FILE).write_text(json.dumps({"token": "abc"}))
    answer = probe_folder(str(tmp_path), "abc")
    assert "error" not in answer and (tmp_path / PROBE_DIR / answer["file"]).is_file()


def test_cluster_options_are_checked_before_any_work(tmp_path, monkeypatch):
    from hashguard.cli import main

    out = tmp_path / "out"
    with pytest.raises(InputError, match="not both"):
        run_bench(_spec(), out, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(InputError, match="workers must be a whole number"):
        run_bench(_spec(), out, workers=0)
    with pytest.raises(InputError, match="threads_per_run must be"):
        run_bench(_spec(), out, threads_per_run=0)
    with pytest.raises(SystemExit, match="not both"):
        main(["bench", "--preset", "quick", "--out", str(out), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(SystemExit, match=r"--workers runs the grid on Dask.*pip install 'hashguard\[distributed\]'"):
        main(["bench", "--preset", "quick", "--out", str(out), "--workers", "2", "--quiet"])
    with pytest.raises(SystemExit, match=r"--scheduler .*hashguard\[distributed\]"):
        main(["bench", "--preset", "quick", "--out", str(out), "--scheduler", "tcp://127.0.0.1:1", "--quiet"])
    assert not out.exists()


def test_an_unreachable_scheduler_is_a_clear_error_before_any_run(tmp_path):
    from hashguard.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 5 s"):
        main(["bench", "--preset", "quick", "--out", str(out), "--scheduler", "tcp://127.0.0.1:1", "--quiet"])
    assert not (out / "records").exists() and not (out / "store.json").exists()


class _RecordingClient:
    """Stands in for a Dask client: two workers, and ``submit`` records each task's function,
    arguments and placement, returning the task's key as its future."""

    def __init__(self):
        self.tasks = {}

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"tcp://w0": {"name": 0}, "tcp://w1": {"name": 1}}}

    def submit(self, fn, job, *deps, key, **options):
        self.tasks[job.key] = {"deps": list(deps), "key": key, **options}
        return job.key


def test_each_run_waits_for_the_runs_it_needs_and_prefers_its_models_worker():
    from hashguard.bench.distributed import Job, _submit
    from hashguard.bench.plan import TRAIN, TRANSFER, model_id

    spec = BenchSpec.from_dict({**GRID, "objectives": ["dpsh", "dph"],
                                "transfer": {"targeted": ["mainstay"], "steps": {"mainstay": 3}}})
    runs = plan(spec)
    pending = {}
    for r in runs:
        pending.setdefault(r.key, r)
    client = _RecordingClient()
    _submit(client, pending, set(), Job(spec=spec, out="/x", data_dir=None, device="cpu", threads=1, token="t" * 32,
                                        protocol={}, key="", example=False))
    assert set(client.tasks) == set(pending)
    train_of = {model_id(r.model): r.key for r in runs if r.role == TRAIN}
    homes = {}
    for key, run in pending.items():
        task = client.tasks[key]
        expected = [] if run.role == TRAIN else [k for k in (run.config["model"], run.config.get("surrogate")) if k]
        assert task["deps"] == expected, (run.role, key)
        assert task["allow_other_workers"] is True and task["retries"] == 1
        homes.setdefault(model_id(run.model), set()).update(task["workers"])
        if run.role == DEFENSE:
            assert task["deps"] == [train_of[model_id(run.model)]]
    assert all(len(workers) == 1 for workers in homes.values())  # one preferred worker per model
    assert len(set().union(*homes.values())) == 2  # two models on two workers: one each
    assert any(r.role == TRANSFER and r.config.get("surrogate") for r in pending.values())
