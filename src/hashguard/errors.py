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


class OutputPathError(HashguardError, OSError):
    """An output path that cannot be written (checked before any work starts)."""


class DiskFullError(HashguardError, OSError):
    """A write failed because the file system is full."""


class BusyError(HashguardError, RuntimeError):
    """A results folder already in use by another hashguard process."""
