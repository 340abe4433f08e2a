"""CSQ: Hadamard and random balanced hash centres, multi-label item centres, and the loss value."""

from __future__ import annotations

import math

import pytest
import torch

from hashguard.hashing import create_hashing
from hashguard.hashing.csq import hadamard, hash_centers


def _hamming(c):
    return 0.5 * (c.shape[1] - c @ c.t())


def _assert_pm1(c):
    assert set(c.unique().tolist()) <= {-1.0, 1.0}


def _assert_distinct(c):
    assert torch.unique(c, dim=0).shape[0] == c.shape[0], "two classes share a hash centre"


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64])
def test_hadamard_is_orthogonal_pm1(n):
    h = hadamard(n)
    _assert_pm1(h)
    torch.testing.assert_close(h @ h.t(), n * torch.eye(n))


@pytest.mark.parametrize("n", [0, 3, 12, 48])
def test_hadamard_needs_power_of_two(n):
    with pytest.raises(ValueError, match="power-of-two"):
        hadamard(n)


@pytest.mark.parametrize("bits, classes", [(8, 8), (16, 10), (32, 21), (64, 64)])
def test_hadamard_centres_are_half_the_bits_apart(bits, classes):
    c = hash_centers(classes, bits)
    _assert_pm1(c)
    d = _hamming(c)
    off = d[~torch.eye(classes, dtype=torch.bool)]
    assert bool((off == bits / 2).all())


@pytest.mark.parametrize("bits, classes", [(8, 12), (16, 32)])
def test_hadamard_and_negation_centres(bits, classes):
    """K < C <= 2K: rows of [H; -H]: K/2 apart, except each row and its negation (K apart)."""
    c = hash_centers(classes, bits)
    _assert_pm1(c)
    _assert_distinct(c)
    d = _hamming(c)
    for i in range(classes):
        for j in range(classes):
            if i == j:
                continue
            expected = bits if abs(i - j) == bits else bits / 2
            assert float(d[i, j]) == expected, (i, j)


@pytest.mark.parametrize(
    "bits, classes",
    [
        (48, 4),  # not a power of two (the public CSQ code fails here)
        (48, 100),
        (12, 10),
        (16, 40),  # C > 2K: more classes than Hadamard rows
        (32, 80),  # COCO-like
        (64, 200),
    ],
)
def test_random_balanced_centres(bits, classes):
    c = hash_centers(classes, bits, seed=0)
    assert c.shape == (classes, bits)
    _assert_pm1(c)
    assert bool(((c == 1).sum(1) == bits // 2).all()), "every centre has half of its bits +1"
    _assert_distinct(c)
    off = _hamming(c)[~torch.eye(classes, dtype=torch.bool)]
    assert float(off.min()) >= 2  # balanced codes differ in an even number of bits
    assert float(off.mean()) == pytest.approx(bits / 2, rel=0.1)


def test_random_centres_depend_on_the_seed_only():
    assert torch.equal(hash_centers(10, 48, seed=3), hash_centers(10, 48, seed=3))
    assert not torch.equal(hash_centers(10, 48, seed=3), hash_centers(10, 48, seed=4))


def test_random_centres_are_distinct_for_every_seed():
    for seed in range(20):
        _assert_distinct(hash_centers(20, 8, seed=seed))


def test_objective_uses_the_hash_centres():
    obj = create_hashing("csq", bits=16, train_labels=torch.eye(5), center_seed=0)
    assert torch.equal(obj.centers, hash_centers(5, 16, 0))
    _assert_pm1(obj.tie_center)
    assert obj.hparams()["center_seed"] == 0


def test_single_label_item_centre_is_its_class_centre():
    obj = create_hashing("csq", bits=16, train_labels=torch.eye(5))
    y = torch.eye(5)[[3, 0, 4]]
    assert torch.equal(obj.item_centers(y), obj.centers[[3, 0, 4]])


@pytest.mark.parametrize("bits, classes", [(16, 4), (48, 6)])
def test_multi_label_item_centre_is_sign_of_sum_with_ties_filled(bits, classes):
    obj = create_hashing("csq", bits=bits, train_labels=torch.eye(classes))
    y = torch.tensor(
        [
            [1.0, 1, 0, 0, 0, 0][:classes],  # two labels: ties wherever the two centres disagree
            [1.0, 1, 1, 0, 0, 0][:classes],  # three labels: no ties
            [0.0, 1, 0, 1, 0, 0][:classes],
            [1.0, 1, 1, 1, 0, 0][:classes],
        ]
    )
    got = obj.item_centers(y)
    centres, tie = obj.centers.tolist(), obj.tie_center.tolist()
    ties_seen = 0
    for r, row in enumerate(y.tolist()):
        for k in range(bits):
            total = sum(centres[c][k] for c in range(classes) if row[c] > 0)
            if total == 0:
                ties_seen += 1
                expected = tie[k]
            else:
                expected = math.copysign(1.0, total)
            assert float(got[r, k]) == expected, (r, k)
    assert ties_seen > 0
    _assert_pm1(got)


def test_item_centre_of_an_unlabelled_item_is_the_tie_centre():
    obj = create_hashing("csq", bits=16, train_labels=torch.eye(4))
    assert torch.equal(obj.item_centers(torch.zeros(2, 4)), obj.tie_center.expand(2, 16))


@pytest.mark.parametrize("quantisation", [1e-4, 0.5])
def test_csq_loss_matches_reference(quantisation):
    gen = torch.Generator().manual_seed(5)
    labels = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]])
    bits = 8
    obj = create_hashing("csq", bits=bits, train_labels=labels, quantisation=quantisation)
    u = torch.tanh(2 * torch.randn(5, bits, generator=gen))
    loss = obj(u, labels, torch.arange(5))
    c = obj.item_centers(labels).tolist()
    bce, quant = 0.0, 0.0
    for i, row in enumerate(u.tolist()):
        for k, v in enumerate(row):
            p, t = (v + 1) / 2, (c[i][k] + 1) / 2
            bce -= t * math.log(p) + (1 - t) * math.log(1 - p)
            quant += (abs(v) - 1) ** 2
    n = 5 * bits
    assert float(loss) == pytest.approx(bce / n + quantisation * quant / n, rel=1e-5)


def test_csq_loss_is_smallest_at_the_item_centre():
    labels = torch.eye(4)[[0, 1, 2, 3]]
    obj = create_hashing("csq", bits=16, train_labels=labels)
    centres = obj.item_centers(labels)
    idx = torch.arange(4)
    at_centre = float(obj(0.99 * centres, labels, idx))
    halfway = float(obj(0.0 * centres, labels, idx))
    opposite = float(obj(-0.99 * centres, labels, idx))
    assert at_centre < halfway < opposite
