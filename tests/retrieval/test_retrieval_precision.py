"""precision_at_n, precision_within_radius and pr_curve against slow references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.retrieval import pr_curve, precision_at_n, precision_within_radius
from retrieval_reference import (
    hamming,
    random_problem,
    ref_pr_radius,
    ref_pr_rank,
    ref_precision_at_n,
    ref_precision_within_radius,
    relevance,
    tie_average_by_enumeration,
)


@pytest.mark.parametrize("relevance_mode", ["share", "exact"])
def test_precision_at_n_matches_reference(backend, relevance_mode):
    qc, dc, ql, dl = random_problem(11)
    ns = [1, 5, 20, 150, 400]  # 400 > database size 150
    got = precision_at_n(qc, dc, ql, dl, n=ns, relevance=relevance_mode, backend=backend)
    assert isinstance(got, np.ndarray) and got.shape == (len(ns),)
    want = [ref_precision_at_n(qc, dc, ql, dl, n, mode=relevance_mode) for n in ns]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_precision_at_n_scalar_default_and_order(backend):
    qc, dc, ql, dl = random_problem(12, n_db=1200, bits=12)
    one = precision_at_n(qc, dc, ql, dl, n=7, backend=backend)
    assert isinstance(one, float)
    assert one == pytest.approx(ref_precision_at_n(qc, dc, ql, dl, 7), abs=1e-12)
    default = precision_at_n(qc, dc, ql, dl, backend=backend)
    assert default.shape == (10,)
    np.testing.assert_allclose(default, [ref_precision_at_n(qc, dc, ql, dl, n) for n in range(100, 1001, 100)],
                               atol=1e-12)
    # unsorted and duplicated n come back in the order asked
    got = precision_at_n(qc, dc, ql, dl, n=(300, 100, 300), backend=backend)
    np.testing.assert_allclose(got, [default[2], default[0], default[2]], atol=1e-15)


def test_precision_at_n_tie_average(backend):
    for seed in range(4):
        qc, dc, ql, dl = random_problem(seed + 200, n_query=3, n_db=6, bits=2, classes=3, p_label=0.4)
        dist, rel = hamming(qc, dc), relevance(ql, dl)
        want = np.mean([tie_average_by_enumeration(dist[i], rel[i], 6)[2] for i in range(3)], axis=0)
        got = precision_at_n(qc, dc, ql, dl, n=[1, 2, 3, 4, 5, 6], ties="average", backend=backend)
        np.testing.assert_allclose(got, want / np.arange(1, 7), atol=1e-12)


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 8, 100])
@pytest.mark.parametrize("empty", ["zero", "skip"])
def test_precision_within_radius_matches_reference(backend, radius, empty):
    qc, dc, ql, dl = random_problem(13, n_db=40)  # small database: some queries retrieve nothing
    got = precision_within_radius(qc, dc, ql, dl, radius=radius, empty=empty, backend=backend)
    assert got == pytest.approx(ref_precision_within_radius(qc, dc, ql, dl, radius, empty), abs=1e-12)


def test_precision_within_radius_nothing_retrieved(backend):
    qc = np.array([[1, 1, 1, 1]])
    dc = np.array([[-1, -1, -1, -1]])
    lab = np.array([[1]])
    assert precision_within_radius(qc, dc, lab, lab, radius=2, backend=backend) == 0.0
    assert precision_within_radius(qc, dc, lab, lab, radius=2, empty="skip", backend=backend) == 0.0
    assert precision_within_radius(qc, dc, lab, lab, radius=4, backend=backend) == 1.0


@pytest.mark.parametrize("empty", ["zero", "skip"])
@pytest.mark.parametrize("relevance_mode", ["share", "exact"])
def test_pr_curve_by_radius_matches_reference(backend, empty, relevance_mode):
    qc, dc, ql, dl = random_problem(14, n_db=60)
    precision, recall = pr_curve(qc, dc, ql, dl, by="radius", empty=empty, relevance=relevance_mode,
                                 backend=backend)
    want_p, want_r = ref_pr_radius(qc, dc, ql, dl, empty, relevance_mode)
    assert precision.shape == recall.shape == (qc.shape[1] + 1,)
    np.testing.assert_allclose(precision, want_p, atol=1e-12)
    np.testing.assert_allclose(recall, want_r, atol=1e-12)
    assert np.isfinite(precision).all() and np.isfinite(recall).all()


@pytest.mark.parametrize("topk", [None, 1, 25, 1000])
@pytest.mark.parametrize("empty", ["zero", "skip"])
def test_pr_curve_by_rank_matches_reference(backend, topk, empty):
    qc, dc, ql, dl = random_problem(15, n_db=80)
    precision, recall = pr_curve(qc, dc, ql, dl, by="rank", topk=topk, empty=empty, backend=backend)
    want_p, want_r = ref_pr_rank(qc, dc, ql, dl, topk, empty)
    length = 80 if topk is None else min(topk, 80)
    assert precision.shape == recall.shape == (length,)
    np.testing.assert_allclose(precision, want_p, atol=1e-12)
    np.testing.assert_allclose(recall, want_r, atol=1e-12)


def test_pr_curve_no_relevant_anywhere_is_finite(backend):
    qc, dc, _, _ = random_problem(16, n_db=30)
    zeros_q, zeros_d = np.zeros((qc.shape[0], 3)), np.zeros((30, 3))
    for by in ("radius", "rank"):
        for empty in ("zero", "skip"):
            p, r = pr_curve(qc, dc, zeros_q, zeros_d, by=by, empty=empty, backend=backend)
            assert np.all(p == 0) and np.all(r == 0)


def test_pr_curve_endpoints(backend):
    qc, dc, ql, dl = random_problem(17, n_db=50)
    p, r = pr_curve(qc, dc, ql, dl, empty="skip", backend=backend)
    assert r[-1] == pytest.approx(1.0)  # radius K retrieves everything
    assert np.all(np.diff(r) >= -1e-12)  # recall never decreases with the radius
    p2, r2 = pr_curve(qc, dc, ql, dl, by="rank", empty="skip", backend=backend)
    assert r2[-1] == pytest.approx(1.0)


def test_metrics_accept_torch(backend):
    qc, dc, ql, dl = random_problem(18)
    t = [torch.tensor(a, dtype=torch.float32) for a in (qc, dc, ql, dl)]
    assert precision_within_radius(*t, backend=backend) == precision_within_radius(qc, dc, ql, dl, backend=backend)
    np.testing.assert_array_equal(precision_at_n(*t, n=[3, 9], backend=backend),
                                  precision_at_n(qc, dc, ql, dl, n=[3, 9], backend=backend))
    for by in ("radius", "rank"):
        a = pr_curve(*t, by=by, backend=backend)
        b = pr_curve(qc, dc, ql, dl, by=by, backend=backend)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
