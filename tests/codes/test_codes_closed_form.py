"""Closed-form codes (centre, mainstay, pharos, anchor) and the label similarities they weigh by.

The key property: for K = 8 each closed-form code attains the minimum of the objective its paper
states, found by brute force over all 2^8 codes. The objectives are written here literally, one
reference sample (or one positive/negative pair) at a time, from the papers' formulas:

    centre (CgAT):    sum_P D_H(b, b_i)/|P| - sum_N D_H(b, b_j)/|N|
    mainstay (SAAT):  sum_P (cos_i/|P|) D_H(b, b_i) - sum_N ((1 - cos_j)/|N|) D_H(b, b_j)   (Eq. 2-3, 11)
    pharos (PgA):     sum_{i in P} sum_{j in N} [ w_i D_H(b, b_i) - w_j D_H(b, b_j) ],
                      w_i = Dice(y, y_i), w_j = 1 - Dice(y, y_j)                            (Eq. 6, 8)
    anchor (DHTA):    sum_{j in samples} D_H(a, b_j)                                        (Eq. 4)

We compare objective *values* (not codes): a bit whose weighted sum is 0 is a tie.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hashguard.codes import CLOSED_FORM, anchor_codes, center_codes, hamming_objective, mainstay_codes, pharos_codes
from hashguard.codes import weighted_sign
from hashguard.codes.center import center_weights
from hashguard.codes.mainstay import mainstay_weights
from hashguard.codes.pharos import pharos_weights
from hashguard.codes.similarity import cosine, dice, jaccard, shares

K = 8
C = 5
ALL_CODES = np.array(list(itertools.product((-1.0, 1.0), repeat=K)))  # (256, K)
SEEDS = range(20)


# ------------------------------------------------------------------------------ literal helpers


def _set(row):
    """Indices of the labels a multi-hot row carries."""
    return {c for c, v in enumerate(np.asarray(row).tolist()) if v > 0}


def _lit_shares(a, b):
    return 1.0 if _set(a) & _set(b) else 0.0


def _lit_cosine(a, b):
    sa, sb = _set(a), _set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / math.sqrt(len(sa) * len(sb))


def _lit_dice(a, b):
    sa, sb = _set(a), _set(b)
    if not sa and not sb:
        return 0.0
    return 2 * len(sa & sb) / (len(sa) + len(sb))


def _lit_jaccard(a, b):
    sa, sb = _set(a), _set(b)
    if not sa | sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def _hamming_all(ref_codes):
    """(256, N): number of differing bits between every candidate code and every reference code."""
    ref = np.asarray(ref_codes, dtype=np.float64)
    return (ALL_CODES[:, None, :] != ref[None, :, :]).sum(-1).astype(np.float64)


def _split(y, ref_labels):
    pos = [j for j in range(len(ref_labels)) if _lit_shares(y, ref_labels[j])]
    neg = [j for j in range(len(ref_labels)) if not _lit_shares(y, ref_labels[j])]
    return pos, neg


def center_objective(y, ref_codes, ref_labels):
    """CgAT: sum_P D_H/|P| - sum_N D_H/|N| for all 256 codes (an empty side contributes nothing)."""
    d = _hamming_all(ref_codes)
    pos, neg = _split(y, ref_labels)
    psi = np.zeros(len(ALL_CODES))
    for i in pos:
        psi += d[:, i] / len(pos)
    for j in neg:
        psi -= d[:, j] / len(neg)
    return psi


def mainstay_objective(y, ref_codes, ref_labels):
    """SAAT Eq. 2-3 with the weights of Eq. 11, for all 256 codes."""
    d = _hamming_all(ref_codes)
    pos, neg = _split(y, ref_labels)
    psi = np.zeros(len(ALL_CODES))
    for i in pos:
        psi += _lit_cosine(y, ref_labels[i]) / len(pos) * d[:, i]
    for j in neg:
        psi -= (1.0 - _lit_cosine(y, ref_labels[j])) / len(neg) * d[:, j]
    return psi


def pharos_objective(y, ref_codes, ref_labels):
    """PgA Eq. 6: the double sum over positive/negative pairs, Dice weights (Eq. 8).

    With one side empty the double sum is identically 0; the library documents falling back to the
    side that exists, so then we return that single sum (sum_P w_i D_H or -sum_N w_j D_H).
    """
    d = _hamming_all(ref_codes)
    pos, neg = _split(y, ref_labels)
    psi = np.zeros(len(ALL_CODES))
    if pos and neg:
        for i in pos:
            w_i = _lit_dice(y, ref_labels[i])
            for j in neg:
                w_j = 1.0 - _lit_dice(y, ref_labels[j])
                psi += w_i * d[:, i] - w_j * d[:, j]
    elif pos:
        for i in pos:
            psi += _lit_dice(y, ref_labels[i]) * d[:, i]
    else:
        for j in neg:
            psi -= (1.0 - _lit_dice(y, ref_labels[j])) * d[:, j]
    return psi


OBJECTIVES = {"center": center_objective, "mainstay": mainstay_objective, "pharos": pharos_objective}
WEIGHTS = {"center": center_weights, "mainstay": mainstay_weights, "pharos": pharos_weights}


def _code_index(code):
    """Row of ALL_CODES equal to ``code``."""
    matches = np.nonzero((ALL_CODES == np.asarray(code, dtype=np.float64)).all(1))[0]
    assert len(matches) == 1, code
    return int(matches[0])


# ------------------------------------------------------------------------------ random problems


def _reference_set(seed, n=None, zero_rows=True):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 41)) if n is None else n
    labels = (rng.random((n, C)) < 0.3).astype(np.float32)
    empty = labels.sum(1) == 0
    labels[empty, rng.integers(0, C, size=int(empty.sum()))] = 1
    if zero_rows:
        labels[rng.choice(n, size=min(2, n - 2), replace=False)] = 0  # some unlabelled rows
    codes = np.where(rng.random((n, K)) < 0.5, -1.0, 1.0).astype(np.float32)
    return torch.from_numpy(codes), torch.from_numpy(labels), rng


def _queries_with_both_sides(rng, ref_labels, count=5):
    """Random multi-label rows that have at least one positive and one negative in the reference set."""
    out = []
    for _ in range(1000):
        y = (rng.random(C) < 0.35).astype(np.float32)
        pos, neg = _split(y, ref_labels.numpy())
        if pos and neg:
            out.append(y)
            if len(out) == count:
                break
    assert len(out) == count
    return torch.from_numpy(np.stack(out))


def _check_minimises(name, labels, ref_codes, ref_labels):
    codes = CLOSED_FORM[name](labels, ref_codes, ref_labels)
    assert codes.shape == (labels.shape[0], K)
    assert codes.dtype == torch.float32
    assert bool(((codes == 1) | (codes == -1)).all())
    lib_weights = WEIGHTS[name](labels, ref_labels)
    for r in range(labels.shape[0]):
        psi = OBJECTIVES[name](labels[r].numpy(), ref_codes.numpy(), ref_labels.numpy())
        got = psi[_code_index(codes[r].numpy())]
        assert got == pytest.approx(psi.min(), abs=1e-9), (name, r, labels[r].tolist())
        # the library's own objective (sum_j w_j D_H with its expanded weights) is the same function
        lib = hamming_objective(torch.from_numpy(ALL_CODES).float(), lib_weights[r : r + 1], ref_codes)
        np.testing.assert_allclose(lib.double().numpy(), psi, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------ brute force: the key test


@pytest.mark.parametrize("name", ["center", "mainstay", "pharos"])
@pytest.mark.parametrize("seed", SEEDS)
def test_closed_form_code_is_brute_force_minimiser(name, seed):
    ref_codes, ref_labels, rng = _reference_set(seed)
    labels = _queries_with_both_sides(rng, ref_labels)
    labels = torch.cat([labels, torch.zeros(1, C)])  # an all-zero label: no positives at all
    _check_minimises(name, labels, ref_codes, ref_labels)


@pytest.mark.parametrize("name", ["center", "mainstay", "pharos"])
@pytest.mark.parametrize("seed", range(5))
def test_closed_form_edge_cases_one_side_empty(name, seed):
    ref_codes, ref_labels, _ = _reference_set(100 + seed, n=25, zero_rows=False)
    ref_labels[:, C - 1] = 0  # the last class never occurs in the reference set
    ref_labels[ref_labels.sum(1) == 0, 0] = 1
    no_pos = torch.zeros(1, C)
    no_pos[0, C - 1] = 1
    no_neg = torch.ones(1, C)  # shares a label with every (non-empty) reference row
    assert not _split(no_pos[0].numpy(), ref_labels.numpy())[0]
    assert not _split(no_neg[0].numpy(), ref_labels.numpy())[1]
    _check_minimises(name, torch.cat([no_pos, no_neg]), ref_codes, ref_labels)


def test_pharos_double_sum_expansion_is_not_the_single_sum():
    """Pharos weighs positives by |N| and negatives by |P| (the double sum); with |P| != |N| this
    differs from the plain single-sum weighting, and the brute force sees the difference."""
    ref_labels = torch.tensor([[1, 0, 0, 0, 0]] * 1 + [[0, 1, 0, 0, 0]] * 3, dtype=torch.float32)
    ref_codes = torch.tensor(
        [[1.0] * K, [-1.0] * K, [-1.0] * K, [-1.0] * K]
    )
    # P = {0} with w = 1 counted 3 times; N = 3 rows with w = 1 counted once -> sum 3*b_0 - 3*(-1) > 0
    y = torch.tensor([[1, 0, 0, 0, 0]], dtype=torch.float32)
    code = pharos_codes(y, ref_codes, ref_labels)
    assert code.tolist() == [[1.0] * K]
    _check_minimises("pharos", y, ref_codes, ref_labels)


def test_weighted_sign_minimises_hamming_objective_for_arbitrary_weights():
    g = torch.Generator().manual_seed(3)
    ref = torch.where(torch.rand(12, K, generator=g) < 0.5, -1.0, 1.0)
    w = torch.randn(6, 12, generator=g)
    codes = weighted_sign(w, ref)
    everything = torch.from_numpy(ALL_CODES).float()
    for r in range(6):
        psi = hamming_objective(everything, w[r : r + 1], ref)
        got = hamming_objective(codes[r : r + 1], w[r : r + 1], ref)
        assert float(got) == pytest.approx(float(psi.min()), abs=1e-5)
    # sign(0) = +1: zero weights give the all-ones code
    assert weighted_sign(torch.zeros(1, 12), ref).tolist() == [[1.0] * K]


# ------------------------------------------------------------------------------ anchor (DHTA / P2P)


def _anchor_reference(seed=0):
    """60 rows over C = 5: label A x 20, B x 12, C x 5, D x 1, and 22 assorted rows."""
    rng = np.random.default_rng(seed)
    palette = {
        "A": [1, 0, 0, 0, 0],
        "B": [0, 1, 1, 0, 0],
        "C": [0, 0, 0, 1, 0],
        "D": [1, 0, 0, 1, 0],
    }
    rows = [palette["A"]] * 20 + [palette["B"]] * 12 + [palette["C"]] * 5 + [palette["D"]]
    rows += [[0, 1, 0, 0, 0]] * 10 + [[0, 0, 1, 0, 0]] * 6 + [[0, 0, 0, 0, 0]] * 6
    order = rng.permutation(len(rows))
    labels = torch.tensor(np.asarray(rows, dtype=np.float32)[order])
    codes = torch.from_numpy(np.where(rng.random((len(rows), K)) < 0.5, -1.0, 1.0).astype(np.float32))
    return codes, labels, {k: torch.tensor(v, dtype=torch.float32) for k, v in palette.items()}


def _exact_rows(y, ref_labels):
    return {j for j in range(ref_labels.shape[0]) if ref_labels[j].tolist() == y.tolist()}


def test_anchor_dhta_minimises_distance_to_its_distinct_exact_label_samples():
    ref_codes, ref_labels, pal = _anchor_reference()
    targets = torch.stack([pal["A"], pal["B"], pal["C"], pal["D"]] * 5)
    codes, idx = anchor_codes(targets, ref_codes, ref_labels, n_anchors=9, seed=4, return_indices=True)
    assert codes.shape == (targets.shape[0], K) and idx.shape == (targets.shape[0], 9)
    d = _hamming_all(ref_codes.numpy())
    for r in range(targets.shape[0]):
        exact = _exact_rows(targets[r], ref_labels)
        samples = [int(j) for j in idx[r] if j >= 0]
        assert len(samples) == min(9, len(exact))
        assert len(set(samples)) == len(samples), "sampled without replacement"
        assert set(samples) <= exact, "every sample carries exactly the target label"
        assert (idx[r, len(samples) :] == -1).all()
        psi = np.zeros(len(ALL_CODES))
        for j in samples:
            psi += d[:, j]
        assert psi[_code_index(codes[r].numpy())] == pytest.approx(psi.min(), abs=1e-9)
        if len(samples) % 2 == 1:  # an odd vote never ties: the minimiser is unique
            assert int((psi == psi.min()).sum()) == 1


def test_anchor_p2p_is_one_reference_code_with_the_exact_label():
    ref_codes, ref_labels, pal = _anchor_reference(1)
    targets = torch.stack([pal["A"], pal["B"], pal["C"], pal["D"]] * 3)
    codes, idx = anchor_codes(targets, ref_codes, ref_labels, n_anchors=1, seed=0, return_indices=True)
    assert idx.shape == (targets.shape[0], 1)
    for r in range(targets.shape[0]):
        j = int(idx[r, 0])
        assert j >= 0
        assert ref_labels[j].tolist() == targets[r].tolist()
        assert torch.equal(codes[r], ref_codes[j])


def test_anchor_falls_back_to_samples_sharing_a_label():
    ref_codes, ref_labels, _ = _anchor_reference(2)
    target = torch.tensor([[0, 1, 0, 1, 1]], dtype=torch.float32)  # no exact match in the set
    assert not _exact_rows(target[0], ref_labels)
    sharing = {j for j in range(ref_labels.shape[0]) if _lit_shares(target[0].numpy(), ref_labels[j].numpy())}
    for seed in range(5):
        codes, idx = anchor_codes(target, ref_codes, ref_labels, n_anchors=9, seed=seed, return_indices=True)
        samples = [int(j) for j in idx[0] if j >= 0]
        assert len(samples) == min(9, len(sharing)) and len(set(samples)) == len(samples)
        assert set(samples) <= sharing
        assert torch.equal(codes[0], torch.where(ref_codes[samples].sum(0) >= 0, 1.0, -1.0))
    # a label nobody shares has no candidate at all: every index slot reports -1
    lonely = torch.tensor([[0, 0, 0, 0, 1]], dtype=torch.float32)
    _, idx = anchor_codes(lonely, ref_codes, ref_labels, n_anchors=9, return_indices=True)
    assert (idx == -1).all()


def test_anchor_depends_only_on_seed_and_id():
    ref_codes, ref_labels, pal = _anchor_reference(3)
    targets = torch.stack([pal["A"], pal["B"], pal["A"], pal["C"], pal["B"], pal["A"]])
    ids = [41, 7, 1000, 3, 7, 12]
    for n_t in (1, 9):
        codes, idx = anchor_codes(targets, ref_codes, ref_labels, n_anchors=n_t, seed=5, ids=ids, return_indices=True)
        for r in range(targets.shape[0]):
            c1, i1 = anchor_codes(
                targets[r : r + 1], ref_codes, ref_labels, n_anchors=n_t, seed=5, ids=[ids[r]], return_indices=True
            )
            assert torch.equal(c1[0], codes[r]) and torch.equal(i1[0], idx[r])
        # a different batch composition (reversed, ids as a tensor) changes nothing per row
        rc, ri = anchor_codes(
            targets.flip(0), ref_codes, ref_labels, n_anchors=n_t, seed=5,
            ids=torch.tensor(ids[::-1]), return_indices=True,
        )
        assert torch.equal(rc, codes.flip(0)) and torch.equal(ri, idx.flip(0))
        # rows 1 and 4 have the same label and the same id: the same draw
        assert torch.equal(idx[1], idx[4])


def test_anchor_seeds_and_ids_change_the_draw():
    ref_codes, ref_labels, pal = _anchor_reference(4)
    exact = _exact_rows(pal["A"], ref_labels)  # 20 candidates
    targets = pal["A"].expand(300, C)
    _, idx0 = anchor_codes(targets, ref_codes, ref_labels, n_anchors=1, seed=0, return_indices=True)
    _, idx0b = anchor_codes(targets, ref_codes, ref_labels, n_anchors=1, seed=0, return_indices=True)
    _, idx1 = anchor_codes(targets, ref_codes, ref_labels, n_anchors=1, seed=1, return_indices=True)
    assert torch.equal(idx0, idx0b)
    # with 20 equally likely candidates two seeds agree on ~5% of rows
    assert float((idx0 != idx1).float().mean()) > 0.8
    # over many ids every candidate gets drawn
    assert set(idx0.flatten().tolist()) == exact


@pytest.mark.parametrize("bad", [0, -1])
def test_anchor_rejects_non_positive_n_anchors(bad):
    ref_codes, ref_labels, pal = _anchor_reference()
    with pytest.raises(ValueError, match="n_anchors"):
        anchor_codes(pal["A"][None], ref_codes, ref_labels, n_anchors=bad)


# ------------------------------------------------------------------------------ vectorisation


@pytest.mark.parametrize("name", ["center", "mainstay", "pharos", "anchor1", "anchor9"])
def test_batch_equals_row_by_row(name):
    ref_codes, ref_labels, rng = _reference_set(7, n=40)
    labels = torch.cat([_queries_with_both_sides(rng, ref_labels, 8), torch.zeros(1, C), torch.ones(1, C)])
    if name.startswith("anchor"):
        n_t = int(name[len("anchor") :])
        build = lambda y, ids: anchor_codes(y, ref_codes, ref_labels, n_anchors=n_t, seed=2, ids=ids)  # noqa: E731
        batch = build(labels, None)  # default ids 0..B-1
        rows = [build(labels[r : r + 1], [r]) for r in range(labels.shape[0])]
    else:
        batch = CLOSED_FORM[name](labels, ref_codes, ref_labels)
        rows = [CLOSED_FORM[name](labels[r : r + 1], ref_codes, ref_labels) for r in range(labels.shape[0])]
    assert torch.equal(batch, torch.cat(rows))


def test_closed_form_accepts_integer_and_bool_labels():
    ref_codes, ref_labels, rng = _reference_set(8)
    labels = _queries_with_both_sides(rng, ref_labels)
    for fn in (center_codes, mainstay_codes, pharos_codes):
        want = fn(labels, ref_codes, ref_labels)
        assert torch.equal(fn(labels.long(), ref_codes, ref_labels.long()), want)
        assert torch.equal(fn(labels.bool(), ref_codes, ref_labels.bool()), want)


# ------------------------------------------------------------------------------ input errors

BUILDERS = {
    "center": center_codes,
    "mainstay": mainstay_codes,
    "pharos": pharos_codes,
    "anchor": lambda y, c, l: anchor_codes(y, c, l, n_anchors=3),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_input_errors_have_helpful_messages(name):
    fn = BUILDERS[name]
    ref_codes, ref_labels, rng = _reference_set(9, n=20)
    labels = _queries_with_both_sides(rng, ref_labels, 2)
    fn(labels, ref_codes, ref_labels)  # the well-formed call works
    with pytest.raises(ValueError, match="columns"):
        fn(labels[:, :3], ref_codes, ref_labels)
    with pytest.raises(ValueError, match="model.encode"):
        fn(labels, torch.tanh(3 * ref_codes), ref_labels)
    with pytest.raises(ValueError, match="sign codes"):
        fn(labels, ref_codes * 0.5, ref_labels)
    with pytest.raises(ValueError, match="label rows"):
        fn(labels, ref_codes, ref_labels[:-1])
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        fn(labels[0], ref_codes, ref_labels)


# ------------------------------------------------------------------------------ similarities


def _label_rows(seed, n):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, C)) < 0.4).astype(np.float32)
    y[0] = 0  # all-zero rows
    y[-1] = 1
    return torch.from_numpy(y)


@pytest.mark.parametrize(
    "fn, lit",
    [(shares, _lit_shares), (cosine, _lit_cosine), (dice, _lit_dice), (jaccard, _lit_jaccard)],
    ids=["shares", "cosine", "dice", "jaccard"],
)
def test_similarities_match_per_pair_loops(fn, lit):
    for seed in range(3):
        y, ref = _label_rows(seed, 9), _label_rows(50 + seed, 13)
        got = fn(y, ref)
        assert got.shape == (9, 13)
        assert torch.isfinite(got).all()
        want = np.array([[lit(y[a].numpy(), ref[b].numpy()) for b in range(13)] for a in range(9)])
        np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-6, atol=1e-7)
        assert float(got.min()) >= 0 and float(got.max()) <= 1 + 1e-6
    # zero rows: similarity 0 to everything, including another zero row, never NaN
    z = torch.zeros(2, C)
    for other in (torch.zeros(3, C), _label_rows(1, 3)):
        out = fn(z, other)
        assert not torch.isnan(out).any() and torch.equal(out, torch.zeros(2, 3))
        out = fn(other, z)
        assert not torch.isnan(out).any() and torch.equal(out, torch.zeros(3, 2))


def test_similarities_of_identical_nonzero_rows_are_one():
    y = _label_rows(5, 6)[1:]
    y = y[y.sum(1) > 0]
    for fn in (shares, cosine, dice, jaccard):
        np.testing.assert_allclose(torch.diagonal(fn(y, y)).numpy(), 1.0, rtol=1e-6)
