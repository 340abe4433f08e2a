"""One writer per results folder: a lock file holding an ``flock`` and who holds it.

``hashguard bench`` (and :func:`hashguard.evaluate_robustness` with ``out``) resume from what a
folder already holds, so two of them on one folder would both run every missing run and pick up
each other's half-written resume files. :func:`folder_lock` takes an exclusive ``flock`` on
``FOLDER/.hashguard.lock`` for the whole run. The kernel releases it when the process ends, even
on SIGKILL, so a lock left by a dead process never blocks (a stale lock file is simply taken
over). The file's text (pid, host, start time) only serves the message a second process gets::

    results folder runs/quick is in use by pid 4242 on host gpu-1 since 2026-01-01 10:00:00 UTC;
    wait for it or use another --out

The file is removed when the holder finishes. Within one thread the lock is re-entrant, so a
function holding it may call another that takes it too; another thread of the same process is
refused (or waits) like another process.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
import threading
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

from ._atomic import current_umask
from .errors import BusyError

LOCK_NAME = ".hashguard.lock"
_held: Dict[Tuple[str, int], int] = {}  # (lock path, thread id) -> depth
_held_guard = threading.Lock()
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.EINVAL}


def _holder_text(path: Path) -> Dict[str, object]:
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(what: str, info: Dict[str, object]) -> str:
    pid, host, since = info.get("pid", "?"), info.get("host", "?"), info.get("since", "an unknown time")
    return f"{what} is in use by pid {pid} on host {host} since {since}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def folder_lock(
    folder: str | Path, *, wait: bool = False, log: Optional[Callable[[str], None]] = None,
    hint: str = "wait for it or use another results folder",
) -> Iterator[Path]:
    """Hold the results folder ``folder`` (created when missing) for the ``with`` block.

    Args:
        wait: block until the holder finishes, instead of raising :class:`BusyError`.
        log: told once when waiting starts.
        hint: the end of the busy message: what the user can do.

    Raises:
        BusyError: another process (or another thread of this one) holds the folder and ``wait``
            is False.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(Path(os.path.realpath(folder)) / LOCK_NAME, what=f"results folder {folder}", wait=wait, log=log,
                   hint=hint) as path:
        yield path


@contextlib.contextmanager
def file_lock(
    path: str | Path, *, what: str, wait: bool = False, log: Optional[Callable[[str], None]] = None,
    hint: str = "wait for it",
) -> Iterator[Path]:
    """Hold the lock file ``path`` (created, and removed when released) for the ``with`` block;
    ``what`` names the thing it guards in the busy message. See :func:`folder_lock`."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)  # a defended model's new folder, say
    me = (str(path), threading.get_ident())
    with _held_guard:
        if _held.get(me):
            _held[me] += 1
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        try:
            yield path
        finally:
            with _held_guard:
                _held[me] -= 1
        return
    fd = _acquire(path, what, wait=wait, log=log, hint=hint)
    with _held_guard:
        _held[me] = 1
    try:
        yield path
    finally:
        with _held_guard:
            _held.pop(me, None)
        _release(path, fd)


def _acquire(path: Path, what: str, *, wait: bool, log, hint: str) -> Optional[int]:
    import fcntl

    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder_text(path)
            if not wait:
                os.close(fd)
                raise BusyError(f"{describe_holder(what, info)}; {hint}") from None
            if log is not None and not told:
                log(f"{describe_holder(what, info)}; waiting for it to finish")
                told = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder ends
            except BaseException:
                os.close(fd)
                raise
        except OSError as err:
            os.close(fd)
            if err.errno not in _UNSUPPORTED:
                raise
            _acquire_without_flock(path, what, hint)
            return None
        # the holder removes the file when it finishes: make sure the locked file is still the one in place
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        _write_holder(fd)
        return fd


def _acquire_without_flock(path: Path, what: str, hint: str) -> None:
    """A file system without ``flock`` (some network mounts): the lock file's text alone decides.
    A holder on this host whose process is gone is stale and taken over; not race-free."""
    info = _holder_text(path)
    pid, host = info.get("pid"), info.get("host")
    if isinstance(pid, int) and pid != os.getpid() and (host != socket.gethostname() or _alive(pid)):
        raise BusyError(f"{describe_holder(what, info)}; {hint}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    _write_holder(fd)
    os.close(fd)


def _write_holder(fd: int) -> None:
    since = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}) + "\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _release(path: Path, fd: Optional[int]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # while still holding the lock, so no one locks a file about to vanish
    if fd is not None:
        os.close(fd)


__all__ = ["LOCK_NAME", "describe_holder", "file_lock", "folder_lock"]
