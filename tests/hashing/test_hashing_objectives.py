"""Hashing objectives: registry, the common contract, and values against per-pair reference loops.

The reference formulas are the ones written in the objectives' module docstrings (docs/methods.md#objectives),
re-implemented here naively in Python floats, one pair at a time.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from hashguard.hashing import HashingObjective, create_hashing, list_hashing, similarity

PAIRWISE = ["dph", "dpsh", "dsdh", "hashnet"]  # compare the batch with the buffer U of the training set
N_TRAIN, BATCH, BITS, CLASSES = 7, 4, 6, 3


def _labels(n, c, gen):
    y = (torch.rand(n, c, generator=gen) < 0.4).float()
    y[torch.arange(n), torch.randint(0, c, (n,), generator=gen)] = 1.0  # at least one label each
    return y


@pytest.fixture
def problem():
    """Tiny random problem: training labels, a batch of codes u, its labels and indices."""
    gen = torch.Generator().manual_seed(2024)
    train_labels = _labels(N_TRAIN, CLASSES, gen)
    idx = torch.tensor([5, 1, 3, 6])
    u = torch.tanh(2 * torch.randn(BATCH, BITS, generator=gen))
    u_buffer = torch.tanh(2 * torch.randn(N_TRAIN, BITS, generator=gen))
    return train_labels, u, train_labels[idx], idx, u_buffer


def _build(name, train_labels, u_buffer=None, **params):
    obj = create_hashing(name, bits=BITS, train_labels=train_labels, **params)
    if u_buffer is not None:
        obj.U.copy_(u_buffer)
    return obj


def _buffer_after(u_buffer, u, idx):
    """The rows of U as the objective sees them: the batch's codes written at idx first."""
    rows = [list(map(float, r)) for r in u_buffer]
    for b, i in enumerate(idx.tolist()):
        rows[i] = list(map(float, u[b]))
    return rows


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _shares(a, b):
    return any(x > 0 and y > 0 for x, y in zip(a, b))


def _softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


# --- registry ------------------------------------------------------------------------------------


def test_registry_names():
    assert list_hashing() == ["csq", "dch", "dph", "dpsh", "dsdh", "hashnet"]


def test_unknown_objective_lists_valid_choices():
    with pytest.raises(ValueError) as info:
        create_hashing("dsh", bits=8, train_labels=torch.eye(3))
    msg = str(info.value)
    assert "dsh" in msg
    for name in list_hashing():
        assert name in msg


@pytest.mark.parametrize("name", list_hashing())
def test_create_builds_an_objective_with_buffers(name):
    obj = create_hashing(name.upper(), bits=8, train_labels=torch.eye(3)[[0, 1, 2, 1, 0]])
    assert isinstance(obj, HashingObjective)
    assert obj.name == name
    assert obj.bits == 8 and obj.num_train == 5
    assert obj.U.shape == (5, 8) and obj.Y.shape == (5, 3)
    json.dumps(obj.hparams())  # recorded in checkpoint configs


@pytest.mark.parametrize("name", list_hashing())
def test_train_labels_must_be_a_matrix(name):
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        create_hashing(name, bits=8, train_labels=torch.tensor([0, 1, 2]))


def test_similarity_is_shared_label():
    y1 = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0]])
    y2 = torch.tensor([[1.0, 1, 0], [0, 0, 1]])
    assert similarity(y1, y2).tolist() == [[1, 0], [1, 1], [0, 0]]


# --- the contract every objective keeps ----------------------------------------------------------


@pytest.mark.parametrize("name", list_hashing())
def test_loss_is_finite_differentiable_scalar(name, problem):
    train_labels, u, y, idx, u_buffer = problem
    obj = _build(name, train_labels, u_buffer)
    raw = torch.atanh(u.clamp(-0.999, 0.999)).requires_grad_(True)
    loss = obj(torch.tanh(raw), y, idx)
    assert loss.dim() == 0
    assert math.isfinite(float(loss.detach()))
    loss.backward()
    assert raw.grad is not None and bool(torch.isfinite(raw.grad).all())
    assert float(raw.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", list_hashing())
def test_loss_is_finite_at_saturated_and_zero_codes(name, problem):
    train_labels, _, y, idx, _ = problem
    for u in (torch.ones(BATCH, BITS), -torch.ones(BATCH, BITS), torch.zeros(BATCH, BITS)):
        obj = _build(name, train_labels)
        u = u.clone().requires_grad_(True)
        loss = obj(u, y, idx)
        loss.backward()
        assert math.isfinite(float(loss.detach())), (name, u[0, 0])
        assert bool(torch.isfinite(u.grad).all())


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_objectives_update_buffer_rows_at_idx(name, problem):
    train_labels, u, y, idx, u_buffer = problem
    obj = _build(name, train_labels, u_buffer)
    obj(u.clone().requires_grad_(True), y, idx)
    assert not obj.U.requires_grad
    others = [i for i in range(N_TRAIN) if i not in idx.tolist()]
    assert torch.equal(obj.U[idx], u)
    assert torch.equal(obj.U[others], u_buffer[others])


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_loss_depends_on_the_rest_of_the_training_set(name, problem):
    train_labels, u, y, idx, u_buffer = problem
    a = _build(name, train_labels, u_buffer)(u, y, idx)
    b = _build(name, train_labels, -u_buffer)(u, y, idx)
    assert not torch.isclose(a, b)


@pytest.mark.parametrize("name", list_hashing())
def test_integer_labels_give_the_same_loss(name, problem):
    train_labels, u, y, idx, u_buffer = problem
    a = _build(name, train_labels, u_buffer)(u, y, idx)
    b = _build(name, train_labels, u_buffer)(u, y.long(), idx)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", list_hashing())
def test_code_width_and_rank_errors(name, problem):
    train_labels, u, y, idx, _ = problem
    obj = _build(name, train_labels)
    with pytest.raises(ValueError, match=rf"\(N, {BITS}\)"):
        obj(u[:, :-1], y, idx)
    with pytest.raises(ValueError, match=rf"\(N, {BITS}\)"):
        obj(u[0], y, idx)


@pytest.mark.parametrize("name", list_hashing())
def test_label_width_error(name, problem):
    train_labels, u, y, idx, _ = problem
    obj = _build(name, train_labels)
    with pytest.raises(ValueError, match=rf"{CLASSES} columns"):
        obj(u, torch.cat([y, y], 1), idx)


@pytest.mark.parametrize("name", list_hashing())
def test_class_index_labels_raise_value_error(name, problem):
    train_labels, u, _, idx, _ = problem
    obj = _build(name, train_labels)
    with pytest.raises(ValueError, match="multi-hot"):
        obj(u, torch.tensor([0, 1, 2, 1]), idx)


@pytest.mark.parametrize("name", list_hashing())
def test_row_count_mismatch_raises_value_error(name, problem):
    train_labels, u, y, idx, _ = problem
    obj = _build(name, train_labels)
    with pytest.raises(ValueError):
        obj(u, y[:-1], idx)
    with pytest.raises(ValueError):
        obj(u, y, idx[:-1])


@pytest.mark.parametrize("name", ["csq", "dch", "dph", "dpsh", "dsdh"])
def test_alpha_is_constant_one_without_continuation(name):
    obj = _build(name, torch.eye(CLASSES))
    assert [obj.alpha(s) for s in (0, 1, 200, 10_000)] == [1.0] * 4


# --- values against per-pair reference loops -----------------------------------------------------


def test_dph_matches_reference(problem):
    train_labels, u, y, idx, u_buffer = problem
    loss = _build("dph", train_labels, u_buffer)(u, y, idx)
    U = _buffer_after(u_buffer, u, idx)
    u, y, train_labels = u.tolist(), y.tolist(), train_labels.tolist()
    terms = []
    for i in range(BATCH):
        for j in range(N_TRAIN):
            s = 1.0 if _shares(y[i], train_labels[j]) else -1.0
            terms.append((_dot(u[i], U[j]) / BITS - s) ** 2)
    assert float(loss) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


@pytest.mark.parametrize("eta", [50.0, 0.0, 3.0])
def test_dpsh_matches_reference(problem, eta):
    train_labels, u, y, idx, u_buffer = problem
    loss = _build("dpsh", train_labels, u_buffer, eta=eta)(u, y, idx)
    U = _buffer_after(u_buffer, u, idx)
    u, y, train_labels = u.tolist(), y.tolist(), train_labels.tolist()
    likelihood = []
    for i in range(BATCH):
        for j in range(N_TRAIN):
            s = 1.0 if _shares(y[i], train_labels[j]) else 0.0
            theta = 0.5 * _dot(u[i], U[j])
            likelihood.append(math.log(1.0 + math.exp(theta)) - s * theta)
    quant = sum((math.copysign(1.0, float(v)) - float(v)) ** 2 for row in u for v in row)
    expected = sum(likelihood) / len(likelihood) + eta * quant / (N_TRAIN * BATCH)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_dpsh_likelihood_sits_at_log2_at_the_zero_saddle(problem):
    train_labels, _, y, idx, _ = problem
    loss = _build("dpsh", train_labels, eta=0.0)(torch.zeros(BATCH, BITS), y, idx)
    assert float(loss) == pytest.approx(math.log(2.0), rel=1e-6)


@pytest.mark.parametrize("scale", [None, 0.1, 1.0])
def test_hashnet_matches_reference(problem, scale):
    train_labels, u, y, idx, u_buffer = problem
    loss = _build("hashnet", train_labels, u_buffer, scale=scale)(u, y, idx)
    sc = 10.0 / BITS if scale is None else scale
    U = _buffer_after(u_buffer, u, idx)
    u, y, train_labels = u.tolist(), y.tolist(), train_labels.tolist()
    pairs = [
        (1.0 if _shares(y[i], train_labels[j]) else 0.0, sc * _dot(u[i], U[j]))
        for i in range(BATCH)
        for j in range(N_TRAIN)
    ]
    n_all = len(pairs)
    n_pos = sum(s for s, _ in pairs)
    n_neg = n_all - n_pos
    assert 0 < n_pos < n_all  # both weights are exercised
    total = 0.0
    for s, dp in pairs:
        w = n_all / n_pos if s else n_all / n_neg
        total += w * (_softplus(dp) - s * dp)
    assert float(loss) == pytest.approx(total / n_all, rel=1e-5)


@pytest.mark.parametrize("gamma, quantisation", [(20.0, 0.1), (5.0, 1.0)])
def test_dch_matches_reference(problem, gamma, quantisation):
    train_labels, u, y, idx, u_buffer = problem
    loss = _build("dch", train_labels, u_buffer, gamma=gamma, quantisation=quantisation)(u, y, idx)
    rows = u.tolist()
    y = y.tolist()

    def distance(a, b):
        cos = _dot(a, b) / (math.sqrt(_dot(a, a)) * math.sqrt(_dot(b, b)))
        return BITS / 2.0 * (1.0 - min(cos, 0.99))

    pairs = [
        (1.0 if _shares(y[i], y[j]) else 0.0, distance(rows[i], rows[j]))
        for i in range(BATCH)
        for j in range(BATCH)  # within-batch pairs only, the diagonal included
    ]
    n_all = len(pairs)
    n_pos = sum(s for s, _ in pairs)
    n_neg = n_all - n_pos
    assert 0 < n_neg  # both weights are exercised
    cauchy = 0.0
    for s, d in pairs:
        w = n_all / n_pos if s else n_all / n_neg
        # -log p for similar pairs, -log(1 - p) for dissimilar ones, p = gamma / (gamma + d)
        p = gamma / (gamma + d)
        cauchy += w * (-math.log(p) if s else -math.log(1.0 - p))
    quant = sum(math.log(1.0 + distance([abs(v) for v in r], [1.0] * BITS) / gamma) for r in rows)
    expected = cauchy / n_all + quantisation * quant / BATCH
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_dch_ignores_the_rest_of_the_training_set(problem):
    train_labels, u, y, idx, u_buffer = problem
    a = _build("dch", train_labels, u_buffer)(u, y, idx)
    b = _build("dch", train_labels, -u_buffer)(u, y, idx)
    torch.testing.assert_close(a, b)


# --- the objectives pull codes the right way ------------------------------------------------------


@pytest.mark.parametrize("name", list_hashing())
def test_agreeing_codes_cost_less_than_disagreeing_codes(name):
    """Two classes; codes that follow the labels score better than the same codes shuffled."""
    labels = torch.eye(2)[[0, 0, 1, 1, 0, 1]]
    idx = torch.arange(6)
    a, b = torch.ones(BITS), -torch.ones(BITS)
    a[: BITS // 2] = -1  # a balanced code and its opposite (far apart in Hamming distance)
    b = -a
    good = 0.9 * torch.stack([a, a, b, b, a, b])
    bad = 0.9 * torch.stack([a, b, a, b, b, a])
    obj = create_hashing(name, bits=BITS, train_labels=labels)
    if name == "csq":  # CSQ pulls towards its own class centres, not towards any agreeing pair
        good = 0.9 * obj.item_centers(labels)
        bad = -good
    loss_good = float(create_hashing(name, bits=BITS, train_labels=labels)(good, labels, idx))
    loss_bad = float(create_hashing(name, bits=BITS, train_labels=labels)(bad, labels, idx))
    assert loss_good < loss_bad


# --- HashNet continuation ------------------------------------------------------------------------


def test_hashnet_default_continuation_schedule():
    obj = _build("hashnet", torch.eye(CLASSES))
    expected = {
        0: 1.0,
        1: 1.0,
        199: 1.0,
        200: math.sqrt(2.0),
        399: math.sqrt(2.0),
        400: math.sqrt(3.0),
        1000: math.sqrt(6.0),
        1999: math.sqrt(1.0 + 0.005 * 1800),
        2000: math.sqrt(11.0),
    }
    for step, value in expected.items():
        assert obj.alpha(step) == pytest.approx(value, rel=1e-12), step


def test_hashnet_custom_continuation_schedule():
    obj = _build("hashnet", torch.eye(CLASSES), continuation_gamma=0.1, continuation_power=1.0, continuation_step=10)
    assert [obj.alpha(s) for s in (0, 9, 10, 25, 100)] == pytest.approx([1.0, 1.0, 2.0, 3.0, 11.0])


def test_hashnet_hparams_record_the_whole_schedule():
    obj = _build("hashnet", torch.eye(CLASSES), continuation_power=1.0, continuation_step=10)
    hp = obj.hparams()
    assert hp.get("continuation_power") == 1.0 and hp.get("continuation_step") == 10


def test_hashnet_alpha_is_non_decreasing():
    obj = _build("hashnet", torch.eye(CLASSES))
    values = [obj.alpha(s) for s in range(0, 5000, 50)]
    assert values == sorted(values)
    assert values[-1] > values[0]
