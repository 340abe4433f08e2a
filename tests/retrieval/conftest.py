"""Fixtures for the retrieval tests: both kernel backends."""

from __future__ import annotations

import pytest

from hashguard.retrieval import _backend

BACKENDS = ["numba", "numpy"] if _backend.NUMBA_AVAILABLE else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each kernel backend in turn (numba only where it can be imported)."""
    return request.param
