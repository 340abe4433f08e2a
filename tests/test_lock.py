"""One process per results folder (hashguard._lock): a second one is refused with who holds the
folder, or waits with ``wait=True``; a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from hashguard._lock import LOCK_NAME, folder_lock
from hashguard.errors import BusyError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

HOLDER = """
import sys
from hashguard._lock import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


class Holder:
    """Another process holding the lock of ``folder`` until :meth:`release`."""

    def __init__(self, folder):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_a_second_process_is_refused_with_who_holds_the_folder(tmp_path):
    with Holder(tmp_path / "runs") as holder:
        with pytest.raises(BusyError) as info:
            with folder_lock(tmp_path / "runs"):
                pass
        text = str(info.value)
        assert f"in use by pid {holder.proc.pid} on host {socket.gethostname()} since " in text
        assert "wait for it" in text
        holder.release()
    with folder_lock(tmp_path / "runs") as path:  # free again once the holder is done
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "runs" / LOCK_NAME).exists()


def test_a_killed_holder_leaves_no_lock(tmp_path):
    with Holder(tmp_path) as holder:
        holder.proc.kill()
        holder.proc.wait()
    with folder_lock(tmp_path) as path:  # BusyError here if the dead holder's lock had survived
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "since": "then"}))
    with folder_lock(tmp_path) as path:
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    assert not (tmp_path / LOCK_NAME).exists()


def test_wait_blocks_until_the_holder_finishes(tmp_path):
    waiting, acquired = threading.Event(), threading.Event()

    def second():
        with folder_lock(tmp_path, wait=True, log=lambda line: waiting.set()):
            acquired.set()

    with Holder(tmp_path) as holder:
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(120), "the waiting process never said it waits"
        assert not acquired.is_set()
        holder.release()
        thread.join()
    assert acquired.is_set()


def test_a_lock_file_in_a_new_folder(tmp_path):
    from hashguard._lock import file_lock

    with file_lock(tmp_path / "new" / "m.pt.lock", what="defended model m.pt") as path:
        assert path.is_file()
    assert list((tmp_path / "new").iterdir()) == []


def test_the_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path):
    errors = []

    def other():
        try:
            with folder_lock(tmp_path):
                pass
        except BusyError as err:
            errors.append(err)

    with folder_lock(tmp_path):
        with folder_lock(tmp_path):  # a function holding the folder calls another that takes it
            pass
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert (tmp_path / LOCK_NAME).exists()
    assert len(errors) == 1 and f"pid {os.getpid()}" in str(errors[0])


def _tiny_spec(tmp_path):
    from hashguard.bench import load_spec_file

    grid = tmp_path / "grid.toml"
    grid.write_text('name = "busy"\ndatasets = ["synthetic"]\nbits = [16]\nqueries = 5\n'
                    '[attacks]\nuntargeted = ["fgsm"]\ntargeted = []\n')
    return grid, load_spec_file(grid)


def test_bench_on_a_busy_folder_refuses_before_any_work(tmp_path, monkeypatch, capsys):
    import hashguard.bench.runner as runner
    from hashguard.bench import run_bench
    from hashguard.cli import main

    def ran(*args, **kwargs):
        raise AssertionError("a run started on a busy results folder")

    monkeypatch.setattr(runner, "run_grid", ran)
    grid, spec = _tiny_spec(tmp_path)
    out = tmp_path / "runs"
    with Holder(out) as holder:
        with pytest.raises(BusyError, match=f"pid {holder.proc.pid}"):
            run_bench(spec, out, progress=False)
        assert main(["bench", "--grid", str(grid), "--out", str(out), "--quiet", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: results folder") and f"pid {holder.proc.pid}" in err and "--wait" in err
        holder.release()
    assert not (out / "records").exists()


def test_bench_wait_runs_once_the_holder_finishes(tmp_path, monkeypatch):
    import hashguard.bench.runner as runner
    from hashguard.bench import run_bench
    from hashguard.cli import main

    started, waiting = [], threading.Event()
    monkeypatch.setattr(runner, "run_grid", lambda store, configs, run_one, progress: started.append(1) or [])
    grid, spec = _tiny_spec(tmp_path)
    out = tmp_path / "runs"
    with Holder(out) as holder:
        thread = threading.Thread(target=lambda: run_bench(spec, out, progress=False, report=False, wait=True,
                                                           log=lambda line: waiting.set()))
        thread.start()
        assert waiting.wait(120)
        assert not started
        holder.release()
        thread.join()
    assert started == [1]
    assert main(["bench", "--grid", str(grid), "--out", str(out), "--quiet", "--device", "cpu", "--no-report",
                 "--wait"]) == 0
    assert started == [1, 1]


def test_a_defense_into_an_out_another_process_is_writing_is_refused(tiny_victim, tmp_path, monkeypatch):
    import hashguard.defenses.run as run

    splits, model = tiny_victim
    monkeypatch.setattr(run, "defend_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    out = tmp_path / "defended.pth"
    code = HOLDER.replace("from hashguard._lock import folder_lock", "from hashguard._lock import file_lock")
    code = code.replace("folder_lock(sys.argv[1])", "file_lock(sys.argv[1], what='x')")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out) + ".lock"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match=f"defended model {out} is in use by pid {holder.pid}.*another --out"):
            run.defend_external(model, {}, "saat", out, splits)
    finally:
        holder.kill()
        holder.wait()


def test_without_flock_the_lock_file_text_decides(tmp_path, monkeypatch):
    """Some network file systems have no flock: a live holder on this host refuses, a dead one is
    taken over."""
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(BusyError, match=f"pid {sleeper.pid}"):
            with folder_lock(tmp_path):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    with folder_lock(tmp_path) as path:  # its process is gone now: stale
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
