"""Output paths checked before any work, and paths read from records kept inside their folder.

A long run (training, an attack, a grid) must not end by failing to save what it computed, so every
command and every API function that writes files calls :func:`check_output_file` /
:func:`check_output_dir` on its outputs first: a file path must not be a directory, its folder
must exist or be creatable and writable (tried by creating and removing a temporary file, which
is right for root and for network file systems where ``os.access`` is not), and the disk must not
be nearly full. Nothing is created by a check, so a refused command leaves no trace.

:func:`path_inside` guards the other direction: a file named in a record (a figure, a checkpoint)
is read only when it resolves, links followed, inside the results folder, so an edited record
cannot pull another file of the machine into a report.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Optional

from ._atomic import expected, free_bytes, human_bytes, write_target
from .errors import DiskFullError, OutputPathError

MIN_FREE_BYTES = 16 * 1024 * 1024  # refuse to start with less than this free: clearly not enough


def _existing_ancestor(folder: Path, shown: str | Path) -> Path:
    """The nearest folder of ``folder`` (itself included) that exists; an error when that is a file."""
    folder = Path(os.path.abspath(folder))
    probe = folder
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise expected(OutputPathError, errno.ENOTDIR,
                       f"cannot write {shown}: {probe} is a file, not a folder; choose another path")
    return probe


def _check_writable(folder: Path, shown: str | Path) -> None:
    """Create and remove a temporary file in ``folder`` (an existing directory)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hashguard-check-", suffix=".tmp", dir=folder)
    except OSError as err:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise expected(DiskFullError, err.errno, f"cannot write {shown}: the disk holding {folder} is full") from None
        raise expected(OutputPathError, err.errno,
                       f"cannot write {shown}: {folder} is not writable ({err.strerror}); choose another path") from None
    os.close(fd)
    os.remove(tmp)


def _check_space(folder: Path, shown: str | Path, min_free: int) -> None:
    free = free_bytes(folder)
    if free is not None and free < min_free:
        raise expected(DiskFullError, errno.ENOSPC,
                       f"cannot write {shown}: only {human_bytes(free)} free in {folder} (at least "
                       f"{human_bytes(min_free)} needed); free some space or choose another disk")


def check_output_file(path: str | Path, *, min_free: int = MIN_FREE_BYTES) -> Path:
    """Raise :class:`OutputPathError` / :class:`DiskFullError` unless ``path`` can be written.

    ``path`` may exist (it is replaced, or written through when a link, device or FIFO); it must
    not be a directory; the folder of the file it names must exist or be creatable and be
    writable, with at least ``min_free`` bytes free. Returns ``path`` unchanged.
    """
    real, direct = write_target(path)  # refuses a directory or a socket
    if direct:
        return Path(path)
    folder = _existing_ancestor(real.parent, path)
    _check_writable(folder, path)
    _check_space(folder, path, min_free)
    return Path(path)


def check_output_dir(
    path: str | Path, *, files: Iterable[str] = (), subdirs: Iterable[str] = (), min_free: int = MIN_FREE_BYTES
) -> Path:
    """Raise unless ``path`` is (or can be created as) a writable folder with ``min_free`` bytes free.

    ``files``: names inside it that will be written (each must not be a directory); ``subdirs``:
    folders inside it that will be written into (each, when it exists, must be a writable folder).
    """
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise expected(OutputPathError, errno.ENOTDIR,
                       f"{path} is a file, not a folder; give a folder for the results")
    folder = _existing_ancestor(path, path)
    _check_writable(folder, path)
    _check_space(folder, path, min_free)
    if path.is_dir():
        for name in subdirs:
            sub = path / name
            if os.path.lexists(sub):
                if not sub.is_dir():
                    raise expected(OutputPathError, errno.ENOTDIR, f"{sub} is a file, not a folder; move it away")
                _check_writable(sub, sub)
        for name in files:
            write_target(path / name)
    return path


def path_inside(root: str | Path, relative: object, what: str = "file") -> Optional[Path]:
    """``root / relative`` when it resolves (links followed) inside ``root``; otherwise None, with a
    warning. For paths read from records, which anyone who can edit a JSON file controls."""
    if not isinstance(relative, (str, os.PathLike)) or not str(relative):
        if relative is not None:
            warnings.warn(f"skipping the {what} {relative!r} named in a record of {root}: not a path", stacklevel=2)
        return None
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / relative))
    if target != base and base not in target.parents:
        warnings.warn(
            f"skipping the {what} {str(relative)!r} named in a record of {root}: it is outside the results "
            "folder (an edited or foreign record)",
            stacklevel=2,
        )
        return None
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            return None
    except OSError:
        return None
    return target


__all__ = ["MIN_FREE_BYTES", "check_output_dir", "check_output_file", "path_inside"]
