"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

Every result, checkpoint and cache file goes through here, so a run killed part-way never leaves a
truncated file that a later run would trust (docs/design.md#results-and-resuming). What a plain ``open``
would do is kept:

- a symbolic link stays a link: the content goes to the file it points to (atomically, beside the
  target), so ``--json results/latest.json`` pointing elsewhere is followed, not replaced;
- a device, FIFO or terminal (``/dev/stdout``, ``/dev/null``, a named pipe) is written directly,
  never renamed over;
- a new file gets ``0o666 & ~umask`` like ``open`` gives it; a replaced file keeps its mode;
- a full disk raises :class:`~hashguard.errors.DiskFullError` naming the file and the free space,
  and leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from .errors import DiskFullError, OutputPathError

_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# torch.save reports a failed write as a RuntimeError from its zip writer, not as an OSError
_FULL_TEXTS = ("pytorchstreamwriter", "file write failed", "failed writing", "failed to write", "no space left")
_umask_lock = threading.Lock()


def expected(cls, code: int | None, message: str):
    """``cls(message)`` (an :mod:`hashguard.errors` class deriving from ``OSError``) with ``errno``
    set, so its text is the message alone (no ``[Errno N]`` prefix) and ``err.errno`` still works."""
    err = cls(message)
    err.errno = code
    return err


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux's
    ``/proc/self/status``); elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def free_bytes(folder: str | Path) -> int | None:
    """Free space of the file system holding ``folder`` (its nearest existing ancestor), or None."""
    import shutil

    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the file system is full (``ENOSPC`` / ``EDQUOT``, or torch.save's
    ``RuntimeError`` from its stream writer)."""
    if isinstance(err, OSError):
        return err.errno in _FULL_ERRNOS
    if isinstance(err, RuntimeError):
        text = str(err).lower()
        return any(t in text for t in _FULL_TEXTS)
    return False


def disk_full_error(path: str | Path, err: BaseException) -> DiskFullError:
    folder = Path(os.path.abspath(path)).parent
    if isinstance(err, OSError) and err.strerror:
        reason = err.strerror
    else:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return expected(DiskFullError, errno.ENOSPC,
                    f"no space left to write {path}: {human_bytes(free_bytes(folder))} free in {folder} ({reason}); "
                    "free some space or write to another disk, then re-run")


_PROCESS_FILES = ("/dev/", "/proc/")  # /dev/stdout -> /proc/self/fd/1 -> "pipe:[...]": no real path


def write_target(path: str | Path) -> tuple[Path, bool]:
    """Where a write to ``path`` goes: ``(file, direct)``.

    ``file`` is ``path`` with every symbolic link followed; ``direct`` is True for a device, FIFO
    or a process's own file (``/dev/stdout``, ``/proc/self/fd/1``), which must be opened and
    written as they are, never replaced. Raises :class:`OutputPathError` for a directory, a
    socket or a path whose links cannot be followed."""
    given = os.path.abspath(path)
    try:
        mode = os.stat(given).st_mode  # follows the links
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise expected(OutputPathError, errno.ENOTDIR,
                       f"cannot write {path}: a folder on its path is a file; choose another path") from None
    except OSError as err:  # ELOOP, EACCES ...
        raise expected(OutputPathError, err.errno, f"cannot write {path}: {err.strerror}") from None
    real = os.path.realpath(given)
    if mode is not None and stat.S_ISDIR(mode):
        shown = f" ({path} points to {real})" if real != given else ""
        raise expected(OutputPathError, errno.EISDIR, f"{path} is a directory{shown}; give a file path to write")
    if mode is not None and stat.S_ISSOCK(mode):
        raise expected(OutputPathError, errno.ENXIO,
                       f"{path} is a socket, which cannot be written as a file; give a file path")
    if mode is not None and not stat.S_ISREG(mode):
        return Path(given), True
    if given.startswith(_PROCESS_FILES) or real.startswith(_PROCESS_FILES):
        return Path(given), True
    return Path(real), False


def _make_folder(folder: Path, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise expected(OutputPathError, errno.ENOTDIR, f"cannot write {path}: {err.filename} is not a folder") from None


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``'s target, then rename it into place.

    ``path`` may be a symbolic link (its target is written, the link stays) or a device / FIFO
    (written directly: renaming over one would replace the special file). Returns ``path``.
    """
    path = Path(path)
    real, direct = write_target(path)
    tmp = None
    try:
        if direct:
            write(str(real))
            return path
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)  # a replaced file keeps its mode
        except FileNotFoundError:
            mode = 0o666 & ~current_umask()  # what open() gives a new file
        _make_folder(real.parent, path)
        fd, tmp = tempfile.mkstemp(prefix=real.name + ".", suffix=".tmp", dir=real.parent)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        write(tmp)
        os.replace(tmp, real)
        tmp = None
    except BaseException as err:
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise disk_full_error(path, err) from err
        raise
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
