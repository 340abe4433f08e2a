"""Mainstay code weightings: SAAT Eq. 11 (``"paper"``) vs SAAT's public code (``"code"``).

The reference below is written from the description of SAAT's ``generate_mainstay_code`` in
docs/methods.md (no code copied), one query and one reference sample at a time:

    cos_ij = <y_i, y_j> / (|y_i| |y_j|)           (0 for an all-zero row)
    positives: cos_ij > 0, weight cos_ij / sum_{j' positive} cos_ij'
    negatives: cos_ij = 0, weight 1 / (number of negatives)
    code_i = sign( sum_pos w_ij b_j - sum_neg w_ij b_j ),  sign(0) = +1

An empty side contributes nothing (the code replaces the infinite normaliser by 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashguard.attacks import Knowledge, create_attack
from hashguard.codes import hamming_objective, mainstay_codes
from hashguard.codes.mainstay import WEIGHTINGS, mainstay_weights

K = 8
C = 5


def _cos(a, b):
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    na = math.sqrt(sum(float(x) ** 2 for x in a))
    nb = math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


def _code_weighting_reference(labels, ref_codes, ref_labels):
    out = []
    for y in labels.tolist():
        cos = [_cos(y, r) for r in ref_labels.tolist()]
        pos = [j for j, c in enumerate(cos) if c > 0]
        neg = [j for j, c in enumerate(cos) if c == 0]
        total = sum(cos[j] for j in pos)
        acc = [0.0] * ref_codes.shape[1]
        for j in pos:
            for k in range(ref_codes.shape[1]):
                acc[k] += cos[j] / total * float(ref_codes[j, k])
        for j in neg:
            for k in range(ref_codes.shape[1]):
                acc[k] -= 1.0 / len(neg) * float(ref_codes[j, k])
        out.append([1.0 if v >= 0 else -1.0 for v in acc])
    return torch.tensor(out)


def _problem(seed, n=30):
    rng = np.random.default_rng(seed)
    ref_labels = (rng.random((n, C)) < 0.35).astype(np.float32)
    ref_labels[:2] = 0  # unlabelled reference rows: negatives of everything
    ref_codes = np.where(rng.random((n, K)) < 0.5, -1.0, 1.0).astype(np.float32)
    labels = (rng.random((12, C)) < 0.4).astype(np.float32)
    labels[0] = 0  # no positives
    labels[1] = 1  # positives only among the labelled rows
    return torch.from_numpy(labels), torch.from_numpy(ref_codes), torch.from_numpy(ref_labels)


@pytest.mark.parametrize("seed", range(10))
def test_code_weighting_equals_slow_reference(seed):
    labels, ref_codes, ref_labels = _problem(seed)
    want = _code_weighting_reference(labels, ref_codes, ref_labels)
    got = mainstay_codes(labels, ref_codes, ref_labels, weighting="code")
    # compare where the reference's weighted sum is not within rounding of 0 (a tie)
    w = mainstay_weights(labels, ref_labels, "code").double() @ ref_codes.double()
    clear = w.abs() > 1e-6
    assert torch.equal(got[clear], want[clear])


@pytest.mark.parametrize("seed", range(5))
def test_code_weighted_code_minimises_its_own_objective(seed):
    """sum_j w_j D_H(b, b_j) with the code's weights is minimised by the code (brute force, K = 8)."""
    labels, ref_codes, ref_labels = _problem(seed)
    everything = torch.tensor(np.array(np.meshgrid(*[[-1.0, 1.0]] * K)).reshape(K, -1).T, dtype=torch.float32)
    w = mainstay_weights(labels, ref_labels, "code")
    codes = mainstay_codes(labels, ref_codes, ref_labels, weighting="code")
    for r in range(labels.shape[0]):
        best = float(hamming_objective(everything, w[r : r + 1], ref_codes).min())
        assert float(hamming_objective(codes[r : r + 1], w[r : r + 1], ref_codes)) == pytest.approx(best, abs=1e-5)


def test_weightings_differ_only_in_the_positive_normaliser():
    labels, ref_codes, ref_labels = _problem(3)
    paper, code = mainstay_weights(labels, ref_labels, "paper"), mainstay_weights(labels, ref_labels, "code")
    neg = paper <= 0
    assert torch.equal(paper[neg], code[neg])  # negatives: 1/|N| in both
    pos_rows = (paper > 0).any(1)
    assert torch.allclose(code[pos_rows].clamp_min(0).sum(1), torch.ones(int(pos_rows.sum())))  # each side sums to 1
    # positives proportional within a row: code = paper * |P| / sum cos
    ratio = code[paper > 0] / paper[paper > 0]
    assert bool((ratio >= 1 - 1e-6).all())


def test_single_label_data_gives_the_same_codes():
    g = torch.Generator().manual_seed(0)
    ref_labels = torch.nn.functional.one_hot(torch.randint(C, (40,), generator=g), C).float()
    ref_codes = torch.where(torch.rand(40, K, generator=g) < 0.5, -1.0, 1.0)
    labels = torch.eye(C)
    assert torch.equal(mainstay_weights(labels, ref_labels, "paper"), mainstay_weights(labels, ref_labels, "code"))
    assert torch.equal(mainstay_codes(labels, ref_codes, ref_labels), mainstay_codes(labels, ref_codes, ref_labels, weighting="code"))


def test_unknown_weighting_raises():
    labels, ref_codes, ref_labels = _problem(0)
    assert WEIGHTINGS == ("paper", "code")
    with pytest.raises(ValueError, match="'paper'.*paper, code|valid choices: paper, code"):
        mainstay_codes(labels, ref_codes, ref_labels, weighting="paper-ish")


def test_mainstay_attack_and_saat_use_the_weighting(tiny_victim):
    from hashguard.defenses import create_defense
    from hashguard.hashing import create_hashing

    splits, model = tiny_victim
    knowledge = Knowledge.from_model(model, splits.train)
    y = torch.as_tensor(splits.query.labels[:6]).float()
    for weighting in WEIGHTINGS:
        attack = create_attack("mainstay", model, weighting=weighting)
        want = mainstay_codes(y, knowledge.codes, knowledge.labels, weighting=weighting)
        assert torch.equal(attack.target_codes(y, knowledge, list(range(6))), want)
        assert torch.equal(attack.reference_codes(None, y, knowledge, list(range(6))), want)
        objective = create_hashing("dpsh", bits=model.bits, train_labels=splits.train.labels)
        defense = create_defense("saat", model, objective, weighting=weighting)
        defense.B = knowledge.codes
        assert torch.equal(defense.reference(y, None), want)
    with pytest.raises(ValueError, match="weighting"):
        create_attack("mainstay", model, weighting="codes")
    with pytest.raises(ValueError, match="weighting"):
        create_defense("saat", model, "dpsh", weighting="codes")
