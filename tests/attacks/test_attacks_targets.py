"""Target labels of targeted attacks: zero overlap, drawn from the pool, per-(seed, id) determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.attacks.targets import draw_target_labels, unique_labels

C = 6


def _pool(seed=0, n=300):
    """Multi-label pool with duplicates and some all-zero rows; contains every single-class row."""
    rng = np.random.default_rng(seed)
    rows = (rng.random((n, C)) < 0.25).astype(np.float32)
    rows[:C] = np.eye(C, dtype=np.float32)
    rows[C : C + 5] = 0
    return torch.from_numpy(rows[rng.permutation(n)])


def _queries(seed=1, q=60):
    """Non-empty query labels that leave at least one class free (so a valid target exists)."""
    rng = np.random.default_rng(seed)
    rows = (rng.random((q, C)) < 0.35).astype(np.float32)
    rows[rows.sum(1) == 0, 0] = 1
    rows[rows.sum(1) == C, C - 1] = 0
    return torch.from_numpy(rows)


def _row_set(t):
    return {tuple(r) for r in t.tolist()}


def _valid_candidates(y, pool):
    return {r for r in _row_set(pool) if any(r) and not any(a * b for a, b in zip(r, y.tolist()))}


def test_unique_labels_are_the_distinct_nonzero_rows_sorted():
    pool = _pool()
    u = unique_labels(pool)
    assert u.dtype == torch.float32
    assert len(_row_set(u)) == u.shape[0], "no duplicates"
    assert _row_set(u) == {r for r in _row_set(pool) if any(r)}
    assert bool((u.sum(1) > 0).all())
    assert [tuple(r) for r in u.tolist()] == sorted(tuple(r) for r in u.tolist())
    # integer / bool input is accepted
    assert torch.equal(unique_labels(pool.long()), u)
    assert torch.equal(unique_labels(pool.bool()), u)


def test_targets_have_zero_overlap_are_nonzero_and_come_from_the_pool():
    pool, q = _pool(), _queries()
    for seed in range(3):
        t = draw_target_labels(q, pool, seed=seed)
        assert t.shape == q.shape and t.dtype == torch.float32
        assert bool((t.sum(1) > 0).all())
        assert bool(((t * q).sum(1) == 0).all())
        assert _row_set(t) <= _row_set(pool)


def test_targets_are_deterministic_under_a_seed():
    pool, q = _pool(), _queries()
    a = draw_target_labels(q, pool, seed=11)
    assert torch.equal(a, draw_target_labels(q, pool, seed=11))
    assert torch.equal(a, draw_target_labels(q, pool, seed=11, ids=range(q.shape[0])))  # default ids 0..Q-1
    others = [draw_target_labels(q, pool, seed=s) for s in (12, 13)]
    assert any(not torch.equal(a, o) for o in others)
    # a different seed changes many of the draws, not just one
    assert float((a != others[0]).any(1).float().mean()) > 0.3


def test_target_of_query_i_depends_only_on_seed_and_its_id():
    pool, q = _pool(), _queries(q=12)
    ids = [5, 900, 3, 3, 77, 12, 0, 41, 8, 2024, 6, 19]
    batch = draw_target_labels(q, pool, seed=4, ids=ids)
    for i in range(q.shape[0]):
        single = draw_target_labels(q[i : i + 1], pool, seed=4, ids=[ids[i]])
        assert torch.equal(single[0], batch[i])
    # another batch composition (reversed order, a subset, ids given as a tensor) agrees per row
    rev = draw_target_labels(q.flip(0), pool, seed=4, ids=torch.tensor(ids[::-1]))
    assert torch.equal(rev, batch.flip(0))
    sub = draw_target_labels(q[::3], pool, seed=4, ids=ids[::3])
    assert torch.equal(sub, batch[::3])
    # the pool's row order does not matter either (targets are drawn among its distinct rows)
    perm = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw_target_labels(q, pool[perm], seed=4, ids=ids), batch)


def test_targets_cover_every_valid_candidate_roughly_uniformly():
    pool = _pool()
    y = torch.zeros(1, C)
    y[0, 0] = 1
    cands = _valid_candidates(y[0], pool)
    assert len(cands) >= 5
    n = 40 * len(cands)
    t = draw_target_labels(y.expand(n, C), pool, seed=0)
    counts = {}
    for r in t.tolist():
        counts[tuple(r)] = counts.get(tuple(r), 0) + 1
    assert set(counts) == cands, "every valid candidate appears and nothing else does"
    assert max(counts.values()) < 3 * 40  # no candidate takes a grossly outsized share


def test_targets_are_uniform_over_distinct_rows_not_pool_frequency():
    pool = torch.tensor([[0, 1, 0, 0, 0, 0]] * 200 + [[0, 0, 1, 0, 0, 0]] + [[1, 0, 0, 0, 0, 0]] * 5,
                        dtype=torch.float32)
    y = torch.zeros(400, C)
    y[:, 0] = 1
    t = draw_target_labels(y, pool, seed=3)
    rare = float((t[:, 2] == 1).float().mean())
    assert 0.3 < rare < 0.7  # one of two distinct candidates, whatever its multiplicity in the pool


def test_all_zero_pool_rows_are_never_targets():
    pool = torch.tensor([[0] * C] * 50 + [[0, 0, 0, 0, 0, 1]], dtype=torch.float32)
    q = torch.zeros(20, C)
    q[:, 0] = 1
    t = draw_target_labels(q, pool, seed=0)
    assert bool((t == pool[-1]).all())


def test_query_overlapping_every_pool_label_raises_naming_it():
    pool, q = _pool(), _queries(q=5)
    q[2] = 1  # carries every class
    with pytest.raises(ValueError, match="query 2") as err:
        draw_target_labels(q, pool)
    assert "no valid target" in str(err.value)


def test_label_width_mismatch_raises():
    pool, q = _pool(), _queries(q=4)
    with pytest.raises(ValueError, match="same C"):
        draw_target_labels(q[:, :4], pool)
    with pytest.raises(ValueError, match="same C"):
        draw_target_labels(q[0], pool)


def test_wrong_number_of_ids_raises():
    pool, q = _pool(), _queries(q=4)
    with pytest.raises(ValueError, match="sample ids"):
        draw_target_labels(q, pool, ids=[1, 2, 3])
