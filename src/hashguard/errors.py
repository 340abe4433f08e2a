"""The errors hashguard raises on purpose: bad input, unusable paths, a busy results folder.

Each one is an *expected* failure whose message names the problem and the fix. The command line
prints such an error as one ``error: ...`` line and exits with status 2; anything else is a bug
and keeps its traceback. Subclasses also derive from the matching built-in (``ValueError``,
``OSError``, ...) so that code catching the built-in keeps working.
"""

from __future__ import annotations


class HashguardError(Exception):
    """An expected failure: the message says what was wrong and how to fix it."""


class InputError(HashguardError, ValueError):
    """A value, file or tensor given by the user that hashguard cannot use."""


class MissingFileError(HashguardError, FileNotFoundError):
    """A file or folder the user named (a dataset list, an image, a checkpoint) does not exist."""


class UnreadableFileError(HashguardError, OSError):
    """A file exists but cannot be read as what it should be (a truncated or corrupt image)."""


class OutputPathError(HashguardError, OSError):
    """An output path that cannot be written (checked before any work starts)."""


class DiskFullError(HashguardError, OSError):
    """A write failed because the file system is full."""


class BusyError(HashguardError, RuntimeError):
    """A results folder already in use by another hashguard process."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (what the command line prints after ``error:``).

    An error raised inside a ``DataLoader`` worker comes back with the worker's traceback in its
    message ("Caught ImageReadError in DataLoader worker process 0. Original Traceback ..."); only
    the original error's own message is kept. Blank lines are dropped and the rest joined by "; ".
    """
    text = str(err)
    if isinstance(err, (KeyError,)) and len(err.args) == 1:
        text = str(err.args[0])
    lines = text.splitlines()
    if "Traceback (most recent call last)" in text:
        last = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1)
        lines = lines[last + 1 :]
        if lines:
            head, sep, rest = lines[0].partition(": ")
            if sep and head.replace(".", "").replace("_", "").isalnum():
                lines[0] = rest  # "hashguard.data.image_list.ImageReadError: cannot read ..." -> the message
    return "; ".join(line.strip() for line in lines if line.strip()) or type(err).__name__
