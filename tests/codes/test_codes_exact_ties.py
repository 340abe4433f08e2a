"""Exact ties of the centre, mainstay and pharos codes (issue 14, item 8).

A bit whose weighted sum is exactly 0 must be +1 (sign(0) = +1, docs/methods.md#code-builders).
Summed in float32, weights such as 1/|P| and 1/|N| that cancel exactly can leave -1e-9 and flip
the bit to -1. The reference here is slow and exact: Python ``Fraction`` for the rational weights
(centre, pharos) and, for the cosine weights of the mainstay (square roots of label counts), the
sum written as ``sum_d Q_d sqrt(d)`` over square-free d with rational Q_d, which is 0 exactly when
every Q_d is 0 (square roots of distinct square-free integers are linearly independent over Q).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
import torch

from hashguard.codes import center_codes, mainstay_codes, pharos_codes
from hashguard.codes.center import center_weights
from hashguard.codes.mainstay import mainstay_weights
from hashguard.codes.pharos import pharos_weights
from hashguard.models.hash_model import sign_codes

BUILDERS = {"center": center_codes, "mainstay": mainstay_codes, "pharos": pharos_codes}
WEIGHTS = {"center": center_weights, "mainstay": mainstay_weights, "pharos": pharos_weights}


# ------------------------------------------------------------------------------ exact reference


def _squarefree(m):
    """``(a, d)`` with ``m = a^2 d`` and d square-free."""
    a, d, p = 1, m, 2
    while p * p <= d:
        while d % (p * p) == 0:
            d //= p * p
            a *= p
        p += 1
    return a, d


def _sign(q):
    """sign with sign(0) = +1 of a dict {d: Q_d} meaning sum_d Q_d sqrt(d)."""
    if all(v == 0 for v in q.values()):
        return 1.0
    with localcontext() as ctx:
        ctx.prec = 80
        total = sum(Decimal(v.numerator) / Decimal(v.denominator) * Decimal(d).sqrt() for d, v in q.items())
    assert total != 0
    return 1.0 if total > 0 else -1.0


def exact_codes(name, labels, ref_codes, ref_labels):
    """The builder's code computed exactly, one bit at a time (slow)."""
    y_all = np.asarray(labels).astype(int)
    r_lab = np.asarray(ref_labels).astype(int)
    r_codes = np.asarray(ref_codes).astype(int)
    out = np.empty((len(y_all), r_codes.shape[1]))
    for r, y in enumerate(y_all):
        overlap = r_lab @ y
        pos = [i for i in range(len(r_lab)) if overlap[i] > 0]
        neg = [j for j in range(len(r_lab)) if overlap[j] == 0]
        for k in range(r_codes.shape[1]):
            q = {1: Fraction(0)}
            if name == "center":
                if pos:
                    q[1] += Fraction(sum(int(r_codes[i, k]) for i in pos), len(pos))
                if neg:
                    q[1] -= Fraction(sum(int(r_codes[j, k]) for j in neg), len(neg))
            elif name == "pharos":
                m_pos = len(neg) if neg else 1
                m_neg = len(pos) if pos else 1
                for i in pos:
                    dice = Fraction(2 * int(overlap[i]), int(y.sum() + r_lab[i].sum()))
                    q[1] += dice * m_pos * int(r_codes[i, k])
                for j in neg:
                    q[1] -= m_neg * int(r_codes[j, k])  # Dice of a negative is 0
            else:  # mainstay: cos_i / |P| on positives, 1 / |N| on negatives
                for i in pos:
                    a, d = _squarefree(int(y.sum()) * int(r_lab[i].sum()))
                    # o / sqrt(a^2 d) = o sqrt(d) / (a d)
                    q[d] = q.get(d, Fraction(0)) + Fraction(int(overlap[i]) * int(r_codes[i, k]), a * d * len(pos))
                for j in neg:
                    q[1] -= Fraction(int(r_codes[j, k]), len(neg))
            out[r, k] = _sign(q)
    return torch.from_numpy(out).float()


def exact_ties(name, labels, ref_codes, ref_labels):
    """Boolean ``(B, K)``: where the exact weighted sum is 0."""
    flipped = exact_codes(name, labels, -ref_codes, ref_labels)  # negating the codes negates the sum
    return exact_codes(name, labels, ref_codes, ref_labels) == flipped  # both +1 only at 0


def float32_codes(name, labels, ref_codes, ref_labels):
    """The previous implementation: float32 weights, float32 sum."""
    w = WEIGHTS[name](labels.float(), ref_labels.float()).float()
    return sign_codes(w @ ref_codes.float())


# ------------------------------------------------------------------------------ random data


def random_problem(seed, n=60, b=40, k=32, c=6, p=0.3):
    rng = np.random.default_rng(seed)
    ref_labels = (rng.random((n, c)) < p).astype(np.float32)
    labels = (rng.random((b, c)) < p).astype(np.float32)
    ref_codes = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0).astype(np.float32)
    return torch.from_numpy(labels), torch.from_numpy(ref_codes), torch.from_numpy(ref_labels)


# ------------------------------------------------------------------------------ constructed ties


def _tie_problem(pos_label, pos_bits, neg_bits):
    """One-bit problem: query label {0}; positives carry ``pos_label``, negatives label {2}."""
    ref_codes = torch.tensor([[float(v)] for v in pos_bits + neg_bits])
    ref_labels = torch.tensor([pos_label] * len(pos_bits) + [[0.0, 0.0, 1.0, 0.0]] * len(neg_bits))
    return torch.tensor([[1.0, 0.0, 0.0, 0.0]]), ref_codes, ref_labels


# each: sum is exactly 0, but the float32 sum of the old code came out negative (bit -1)
TIES = [
    # centre: 1/1 - 3 * (1/3); float32 gives -6e-8
    ("center", [1.0, 0.0, 0.0, 0.0], [1], [1, 1, 1]),
    # centre: -1/1 + 5 * (1/5)
    ("center", [1.0, 0.0, 0.0, 0.0], [-1], [-1] * 5),
    # mainstay: cos = 1/sqrt(2) on a +1 and a -1 positive, negatives balanced
    ("mainstay", [1.0, 1.0, 0.0, 0.0], [1, -1], [1] * 5 + [-1] * 5),
    # pharos: Dice 2/3, 4 * (2/3) * (7 - 1) - 8 * (3 - 1) = 16 - 16; float32 gives -1e-6
    ("pharos", [1.0, 1.0, 0.0, 0.0], [1] * 7 + [-1], [1] * 3 + [-1]),
]


@pytest.mark.parametrize("name, pos_label, pos_bits, neg_bits", TIES)
def test_exact_tie_that_float32_rounded_negative_is_plus_one(name, pos_label, pos_bits, neg_bits):
    labels, ref_codes, ref_labels = _tie_problem(pos_label, pos_bits, neg_bits)
    assert bool(exact_ties(name, labels, ref_codes, ref_labels).all())
    assert float32_codes(name, labels, ref_codes, ref_labels).tolist() == [[-1.0]]  # the old bug
    assert BUILDERS[name](labels, ref_codes, ref_labels).tolist() == [[1.0]]
    # and the negated problem is a tie too (+1 again, not the negation of the code)
    assert BUILDERS[name](labels, -ref_codes, ref_labels).tolist() == [[1.0]]


@pytest.mark.parametrize("name", ["center", "mainstay", "pharos"])
def test_random_exact_ties_are_plus_one_and_the_rest_matches_the_exact_sign(name):
    """New codes equal the exact reference everywhere; the old float32 ones differ only at ties."""
    ties = 0
    for seed in range(6):
        labels, ref_codes, ref_labels = random_problem(seed, n=30, b=20, k=16)
        exact = exact_codes(name, labels, ref_codes, ref_labels)
        tie = exact_ties(name, labels, ref_codes, ref_labels)
        new = BUILDERS[name](labels, ref_codes, ref_labels)
        old = float32_codes(name, labels, ref_codes, ref_labels)
        assert torch.equal(new, exact), (name, seed)
        assert torch.equal(new[tie], torch.ones(int(tie.sum())))
        assert torch.equal(old[~tie], new[~tie]), (name, seed)
        ties += int(tie.sum())
    assert ties > 0  # the random data does exercise ties


def test_many_random_inputs_old_and_new_differ_only_at_exact_ties():
    """Larger fast check: wherever the float64 sum is clearly nonzero the codes did not change."""
    for name in BUILDERS:
        for seed in range(20):
            labels, ref_codes, ref_labels = random_problem(100 + seed, n=200, b=50, k=32, c=10)
            new = BUILDERS[name](labels, ref_codes, ref_labels)
            old = float32_codes(name, labels, ref_codes, ref_labels)
            w = WEIGHTS[name](labels.double(), ref_labels.double())
            s = w @ ref_codes.double()
            clear = s.abs() > 1e-6 * w.abs().sum(1, keepdim=True)
            assert torch.equal(old[clear], new[clear]), (name, seed)
            assert bool((new[s == 0] == 1).all())
