"""Hypothesis properties of the ranking metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashguard.retrieval import _backend, mean_average_precision, pr_curve, precision_at_n
from retrieval_reference import ref_map

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_query = draw(st.integers(1, 6))
    n_db = draw(st.integers(1, 40))
    bits = draw(st.sampled_from([1, 3, 8, 16, 65]))
    classes = draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    qc = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_query, bits))
    dc = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_db, bits))
    ql = rng.integers(0, 2, size=(n_query, classes))
    dl = rng.integers(0, 2, size=(n_db, classes))
    topk = draw(st.one_of(st.none(), st.integers(1, 50)))
    return qc, dc, ql, dl, topk


@SETTINGS
@given(problems(), st.sampled_from(["zero", "skip"]), st.sampled_from(["index", "average"]))
def test_map_in_unit_interval_and_backends_agree(problem, empty, ties):
    qc, dc, ql, dl, topk = problem
    values = [mean_average_precision(qc, dc, ql, dl, topk=topk, empty=empty, ties=ties, backend=b)
              for b in (["numba", "numpy"] if _backend.NUMBA_AVAILABLE else ["numpy"])]
    assert 0.0 <= values[0] <= 1.0 + 1e-12
    assert values[-1] == pytest.approx(values[0], abs=1e-12)
    if ties == "index":
        assert values[0] == pytest.approx(ref_map(qc, dc, ql, dl, topk, empty), abs=1e-9)


@SETTINGS
@given(problems())
def test_invariant_under_bit_permutation_and_global_flip(problem):
    qc, dc, ql, dl, topk = problem
    base = mean_average_precision(qc, dc, ql, dl, topk=topk)
    perm = np.random.default_rng(0).permutation(qc.shape[1])
    assert mean_average_precision(qc[:, perm], dc[:, perm], ql, dl, topk=topk) == pytest.approx(base, abs=1e-12)
    assert mean_average_precision(-qc, -dc, ql, dl, topk=topk) == pytest.approx(base, abs=1e-12)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 60), st.sampled_from(["index", "average"]))
def test_perfect_codes_give_one(seed, classes, n_db, ties):
    """One distinct code per class, every item coded by its class: every relevant item is at
    distance 0 and every other item farther away, so AP = 1 for every query with relevant items."""
    rng = np.random.default_rng(seed)
    bits = 8
    class_codes = np.array([[1 if (c >> b) & 1 else -1 for b in range(bits)] for c in range(classes)])
    db_class = rng.integers(0, classes, size=n_db)
    q_class = rng.integers(0, classes, size=5)
    eye = np.eye(classes, dtype=np.int64)
    value = mean_average_precision(class_codes[q_class], class_codes[db_class], eye[q_class], eye[db_class],
                                   empty="skip", ties=ties)
    present = np.isin(q_class, db_class)
    assert value == pytest.approx(1.0 if present.any() else 0.0, abs=1e-12)


@SETTINGS
@given(problems())
def test_precision_and_recall_bounds(problem):
    qc, dc, ql, dl, topk = problem
    for by in ("radius", "rank"):
        p, r = pr_curve(qc, dc, ql, dl, by=by, topk=topk)
        assert np.all((p >= 0) & (p <= 1 + 1e-12)) and np.all((r >= 0) & (r <= 1 + 1e-12))
        assert np.all(np.diff(r) >= -1e-12)
    pn = precision_at_n(qc, dc, ql, dl, n=[1, 2, 3])
    assert np.all((pn >= 0) & (pn <= 1 + 1e-12))
