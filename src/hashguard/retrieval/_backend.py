"""Choice between the numba kernels and the pure numpy fallback.

Both backends return the same values (the numpy one sums in a different order, so results agree to
about 1e-15). The numba kernels are used whenever numba can be imported; the choice can be forced

* per call, with ``backend="numba"`` or ``backend="numpy"`` on every public function, or
* for the whole process, with the environment variable ``HASHGUARD_RETRIEVAL_BACKEND`` set to
  ``auto`` (default), ``numba`` or ``numpy`` (read at each call, so tests can monkeypatch it).

Asking for ``numba`` explicitly when it cannot be imported raises ``ImportError``.

numba's ``workqueue`` threading layer (its fallback when neither OpenMP nor TBB is usable) aborts
the process if two Python threads launch parallel kernels at the same time, so calls into the
numba kernels are serialised with a lock; each call is itself parallel over queries.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import _kernels_numpy

ENV_VAR = "HASHGUARD_RETRIEVAL_BACKEND"
BACKENDS = ("auto", "numba", "numpy")

_NUMBA_LOCK = threading.Lock()

try:
    from . import _kernels_numba as numba_kernels

    NUMBA_AVAILABLE = True
    NUMBA_IMPORT_ERROR: BaseException | None = None
except Exception as exc:  # pragma: no cover - only without a working numba
    numba_kernels = None  # type: ignore[assignment]
    NUMBA_AVAILABLE = False
    NUMBA_IMPORT_ERROR = exc


def resolve_backend(backend: str | None) -> str:
    """Return ``"numba"`` or ``"numpy"`` for a ``backend`` argument (None means the env variable)."""
    choice = backend if backend is not None else os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        source = "backend" if backend is not None else f"environment variable {ENV_VAR}"
        raise ValueError(f"{source} must be one of {', '.join(repr(b) for b in BACKENDS)}; got {choice!r}")
    if choice == "auto":
        return "numba" if NUMBA_AVAILABLE else "numpy"
    if choice == "numba" and not NUMBA_AVAILABLE:
        raise ImportError(
            f"backend 'numba' was requested but numba could not be imported ({NUMBA_IMPORT_ERROR!r}); "
            "install numba or use backend='numpy'"
        )
    return choice


def run_kernel(backend: str | None, name: str, *args: Any) -> Any:
    """Call kernel ``name`` (same signature in both backends) of the backend chosen for ``backend``."""
    if resolve_backend(backend) == "numba":
        with _NUMBA_LOCK:
            return getattr(numba_kernels, name)(*args)
    return getattr(_kernels_numpy, name)(*args)
