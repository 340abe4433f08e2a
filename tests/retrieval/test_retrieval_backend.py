"""Choosing the kernel backend: argument, environment variable, numba missing."""

from __future__ import annotations

import pytest

from hashguard.retrieval import _backend, _kernels_numpy, mean_average_precision
from retrieval_reference import random_problem


def test_env_var_selects_numpy_fallback(monkeypatch):
    calls = []
    original = _kernels_numpy.ranked_stats

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(_kernels_numpy, "ranked_stats", spy)
    monkeypatch.setenv(_backend.ENV_VAR, "numpy")
    qc, dc, ql, dl = random_problem(1)
    value = mean_average_precision(qc, dc, ql, dl, topk=5)
    assert calls == [1]
    monkeypatch.delenv(_backend.ENV_VAR)
    mean_average_precision(qc, dc, ql, dl, topk=5, backend="numpy")
    assert calls == [1, 1]
    if _backend.NUMBA_AVAILABLE:
        assert mean_average_precision(qc, dc, ql, dl, topk=5) == pytest.approx(value, abs=1e-12)
        assert calls == [1, 1]  # auto used numba


def test_bad_env_var(monkeypatch):
    monkeypatch.setenv(_backend.ENV_VAR, "gpu")
    with pytest.raises(ValueError, match="HASHGUARD_RETRIEVAL_BACKEND"):
        _backend.resolve_backend(None)
    assert _backend.resolve_backend("numpy") == "numpy"  # the argument wins


def test_without_numba_auto_falls_back(monkeypatch):
    monkeypatch.setattr(_backend, "NUMBA_AVAILABLE", False)
    monkeypatch.setattr(_backend, "NUMBA_IMPORT_ERROR", ImportError("no numba"))
    assert _backend.resolve_backend("auto") == "numpy"
    assert _backend.resolve_backend(None) == "numpy"
    with pytest.raises(ImportError, match="backend='numpy'"):
        _backend.resolve_backend("numba")


def test_concurrent_calls_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    qc, dc, ql, dl = random_problem(2, n_db=500)
    want = mean_average_precision(qc, dc, ql, dl, topk=50)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda _: mean_average_precision(qc, dc, ql, dl, topk=50), range(8)))
    assert got == [want] * 8
