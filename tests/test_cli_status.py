"""``hashguard bench --dry-run`` and ``hashguard status DIR`` (issue 16): the plan and a results
folder's progress, read without writing a file or taking the folder lock."""

from __future__ import annotations

import json
import os
import re
import socket

import pytest

from hashguard._atomic import atomic_write_json
from hashguard._lock import LOCK_NAME, folder_lock
from hashguard.bench.plan import plan
from hashguard.bench.presets import quick
from hashguard.bench.results import SPEC_FILE, open_store
from hashguard.bench.status import count_runs, distinct_runs
from hashguard.cli import main


def tree(path):
    """Every file and folder under ``path`` with its size and modification time."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns)
    return out


def kind_rows(text):
    """``{kind: (runs, done, pending)}`` of the printed table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)", line)
        if m:
            rows[m.group(1)] = tuple(int(m.group(i)) for i in (2, 3, 4))
    return rows


@pytest.fixture
def folder(tmp_path):
    """A results folder of the quick preset with 5 finished runs (fake records with timings)."""
    out = tmp_path / "runs" / "quick"
    spec = quick()
    store = open_store(spec, out)
    atomic_write_json(out / SPEC_FILE, spec.to_dict())
    done = distinct_runs(plan(spec))[:5]
    for run in done:
        store.put(run.config, {"map": 0.5}, {"wall_seconds": 3.0})
    return out, done


def test_dry_run_of_the_quick_preset_prints_47_runs_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "runs" / "quick"
    assert main(["bench", "--preset", "quick", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    runs = plan(quick())
    assert len(distinct_runs(runs)) == 47 and len(runs) == 54  # 7 re-attack "none" rows are table runs
    assert text.startswith("quick: 47 runs")
    rows = kind_rows(text)
    assert rows.pop("total") == (47, 0, 47)
    assert rows == {kind: (n, 0, n) for kind, n in count_runs(runs).items()}
    assert "rough estimate" in text and "nothing was run or written" in text
    assert not out.exists() and not out.parent.exists()
    assert list(tmp_path.iterdir()) == []


def test_dry_run_counts_the_done_runs_and_leaves_the_folder_unchanged(folder, capsys):
    out, done = folder
    before = tree(out)
    assert main(["bench", "--preset", "quick", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert tree(out) == before  # no lock file, no spec.json or store.json rewritten
    assert kind_rows(text)["total"] == (47, 5, 42)
    assert f"estimated from the timings of {len(done)} records" in text or "priced from the timings" in text


def test_dry_run_reports_a_folder_the_run_would_refuse(folder, capsys, monkeypatch):
    import hashguard

    out, _ = folder
    monkeypatch.setattr(hashguard, "__version__", "9.9.9")
    assert main(["bench", "--preset", "quick", "--out", str(out), "--dry-run"]) == 0
    assert "would refuse this folder" in capsys.readouterr().out


def test_dry_run_keeps_the_usage_errors_of_bench(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--out", str(tmp_path / "x"), "--dry-run"])
    assert stop.value.code == 2 and "--preset" in str(stop.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--preset", "quick", "--out", str(tmp_path / "file"), "--dry-run"])
    assert stop.value.code == 2 and "is a file" in str(stop.value)
    # a bad value is an InputError, which main turns into its return value 2
    assert main(["bench", "--preset", "quick", "--out", str(tmp_path / "y"), "--dry-run", "--queries", "-1"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_status_shows_progress_lock_and_report(folder, capsys):
    out, done = folder
    before = tree(out)
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert tree(out) == before
    assert "grid 'quick'" in text and kind_rows(text)["total"] == (47, 5, 42)
    assert "lock: free" in text and "report: not written yet" in text
    assert re.search(r"last record: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)

    (out / "report.html").write_text("<html></html>")
    assert main(["status", str(out), "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["report"] == "up to date" and state["done"] == 5 and state["pending"] == 42
    assert state["by_kind"]["train"] == {"runs": 1, "done": 1, "pending": 0}
    assert state["spec"]["name"] == "quick" and state["lock"] is None

    newer = out / "records" / f"{done[0].key}.json"
    stamp = os.stat(out / "report.html").st_mtime + 10
    os.utime(newer, (stamp, stamp))
    assert main(["status", str(out)]) == 0
    assert "report: stale" in capsys.readouterr().out


def test_status_names_the_process_holding_the_folder_without_taking_the_lock(folder, capsys):
    out, _ = folder
    with folder_lock(out):
        assert main(["status", str(out)]) == 0  # does not wait for, or take, the lock
        text = capsys.readouterr().out
        assert f"lock: held by pid {os.getpid()} on host {socket.gethostname()}" in text and "(running)" in text
    assert not (out / LOCK_NAME).exists()
    # a lock file left by a process that is gone (killed before it could remove it)
    (out / LOCK_NAME).write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": socket.gethostname(),
                                             "since": "2026-01-01 10:00:00 UTC"}))
    assert main(["status", str(out)]) == 0
    assert "no longer running" in capsys.readouterr().out


def test_status_of_a_folder_that_is_not_a_results_folder_is_one_error_line_and_exit_2(tmp_path, capsys):
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(SystemExit) as stop:
            main(["status", str(path)])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ exit status 2 everywhere
USAGE_ERRORS = {
    "train": ["train", "--dataset", "nus-wide", "--out", "{tmp}/m.pt"],
    "evaluate": ["evaluate"],
    "attack": ["attack", "--model", "{tmp}/m.pt", "--method", "pga", "--queries", "0", "--json", "{tmp}/r.json"],
    "defend": ["defend", "--method", "saat", "--out", "{tmp}/d.pt", "--device", "cpu"],
    "bench": ["bench", "--out", "{tmp}/runs"],
    "report": ["report", "{tmp}/nothing"],
    "status": ["status", "{tmp}/nothing"],
    "list": ["list", "everything"],
}


def _exit_status(argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("command", sorted(USAGE_ERRORS))
def test_the_usage_errors_of_every_command_exit_2_with_one_error_line(tmp_path, capsys, command):
    argv = [a.format(tmp=tmp_path) for a in USAGE_ERRORS[command]]
    assert _exit_status(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith(("error:", "hashguard")) and sum("error:" in line for line in err) == 1, err


def test_the_process_exit_status_of_a_usage_error_is_2(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "hashguard", "status", str(tmp_path / "nothing")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
