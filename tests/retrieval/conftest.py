"""Fixtures for the retrieval tests: both kernel backends, and the package importable from src/."""

from __future__ import annotations

import os
import sys

import pytest

try:  # the package is normally installed (pip install -e .); fall back to the checkout's src/
    import hashguard.retrieval  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))

from hashguard.retrieval import _backend  # noqa: E402

BACKENDS = ["numba", "numpy"] if _backend.NUMBA_AVAILABLE else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each kernel backend in turn (numba only where it can be imported)."""
    return request.param
