"""Make ``hashguard`` importable from the source tree when the package is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

try:  # pragma: no cover - depends on how the environment was set up
    import hashguard.data.registry  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
