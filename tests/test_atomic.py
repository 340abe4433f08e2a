"""Atomic writes: a failed write leaves the previous file intact and no temporary file behind; links
are written through, devices and FIFOs written directly, modes follow the umask, a full disk is a
DiskFullError."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading

import pytest

from hashguard._atomic import (
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    current_umask,
)
from hashguard.errors import DiskFullError, OutputPathError


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "record.json"
    atomic_write_json(target, {"map": 0.5})

    def crash(tmp):
        with open(tmp, "w") as f:
            f.write('{"map": 0.')  # half a record, then the process "dies"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"map": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "r.json"
    atomic_write_json(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]


# ------------------------------------------------------------------ links, devices, modes, full disks
posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX links, FIFOs and modes")


@posix
def test_a_symlink_stays_a_link_and_its_target_gets_the_content(tmp_path):
    target = tmp_path / "real" / "result.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    atomic_write_json(link, {"map": 0.7})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"map": 0.7}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temp file left
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "new.json")
    atomic_write_text(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "real" / "new.json").read_text() == "x"


@posix
def test_devices_and_pipes_are_written_directly_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    atomic_write_json(fifo, {"a": 1})
    reader.join()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and json.loads(got[0]) == {"a": 1}
    # /dev/fd/N (what /dev/stdout is): a process's own file, written as it is
    r, w = os.pipe()
    try:
        atomic_write_text(f"/dev/fd/{w}", "through the pipe\n")
        os.close(w)
        w = None
        assert os.read(r, 100) == b"through the pipe\n"
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
    atomic_write_bytes("/dev/null", b"ignored")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_directory_or_a_file_in_the_way_is_an_output_path_error(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        atomic_write_json(tmp_path / "dir.json", {})
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputPathError, match="file"):
        atomic_write_json(tmp_path / "file.txt" / "x.json", {})
    with pytest.raises(OutputPathError, match="file"):
        atomic_write_json(tmp_path / "file.txt" / "sub" / "x.json", {})


@posix
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_honour_the_umask_and_replaced_files_keep_their_mode(tmp_path, mask):
    import torch

    from hashguard.bench import RecordStore

    old = os.umask(mask)
    try:
        assert current_umask() == mask
        atomic_write_json(tmp_path / "r.json", [1])
        atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "m.pt")
        store = RecordStore(tmp_path / "runs", protocol={"eps": 0.1})
        record = store.put({"a": 1}, {"map": 0.5}, {})
        for path in (tmp_path / "r.json", tmp_path / "m.pt", tmp_path / "runs" / "store.json", record):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask, path
        os.chmod(tmp_path / "r.json", 0o640)
        atomic_write_json(tmp_path / "r.json", [2])
        assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/0: "
                 "file write failed"),
])
def test_a_full_disk_is_a_disk_full_error_naming_the_file_and_the_free_space(tmp_path, failure):
    def full(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise failure

    target = tmp_path / "model.pt"
    with pytest.raises(DiskFullError, match=r"model\.pt.* free in ") as info:
        atomic_write(target, full)
    assert info.value.errno == errno.ENOSPC and "[Errno" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_torch_save_failing_on_a_full_disk_is_a_disk_full_error(tmp_path, monkeypatch):
    import torch

    def full(obj, f, *args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match="ckpt.pt"):
        atomic_torch_save({"x": 1}, tmp_path / "ckpt.pt")
    assert list(tmp_path.iterdir()) == []


def test_other_failures_are_not_called_a_full_disk(tmp_path):
    def broken(tmp):
        raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(RuntimeError, match="CUDA error"):
        atomic_write(tmp_path / "x", broken)
    assert list(tmp_path.iterdir()) == []
