"""Run a test body as an ordinary user, also when the suite runs as root (as CI does).

Root ignores folder permissions, so a check that a read-only folder is refused cannot fail or pass
as root. Instead of skipping, the body runs in a child Python process: as root, the child runs
under util-linux's ``setpriv`` without the two capabilities that let root ignore permissions
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so it meets folder modes as any user does; otherwise it
runs as the current user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SRC = str(Path(__file__).resolve().parent.parent / "src")


def run_unprivileged(script: str, *, cwd: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run ``script`` (Python source) in a child process without root's rights, in ``cwd``
    (which the child must be able to enter); fails the test with the child's output if it fails."""
    if sys.platform == "win32":
        pytest.skip("folder permissions are POSIX modes")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-c", textwrap.dedent(script)]
    if AS_ROOT:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs util-linux's setpriv to drop CAP_DAC_OVERRIDE (apt-get install util-linux)"
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"] + command
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result
