"""DSDH: the W and B steps against brute force, the network loss against a per-pair loop, and
learning on the built-in ``synthetic`` data.

The discrete part of DSDH's objective is mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2 over
B in {-1, +1}^{N x K} and W (K x C). The references below enumerate every sign vector of a bit
column of a tiny problem and minimise the ridge problem through its normal equations in Python
floats, so they share no code with hashguard.hashing.dsdh.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hashguard.errors import InputError
from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
from hashguard.hashing.dsdh import dcc_sweep, ridge_classifier
from hashguard.hashing.evaluation import validation_map
from hashguard.retrieval import mean_average_precision

N, K, C = 6, 3, 2


def _problem(seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = (torch.rand(N, C, generator=gen) < 0.5).float()
    y[torch.arange(N), torch.randint(0, C, (N,), generator=gen)] = 1.0
    u = torch.tanh(2 * torch.randn(N, K, generator=gen)).double()
    b = torch.where(torch.rand(N, K, generator=gen) < 0.5, 1.0, -1.0).double()
    w = torch.randn(K, C, generator=gen).double()
    return y.double(), u, b, w


def _discrete_objective(y, b, w, u, mu, nu, eta):
    """mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2, one entry at a time."""
    rows, cols = len(y), len(y[0])
    fit = sum((y[i][c] - sum(b[i][k] * w[k][c] for k in range(len(w)))) ** 2 for i in range(rows) for c in range(cols))
    reg = sum(v * v for row in w for v in row)
    quant = sum((b[i][k] - u[i][k]) ** 2 for i in range(rows) for k in range(len(w)))
    return mu * fit + nu * reg + eta * quant


# --- the W step ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [1.0, 0.1, 0.0])
def test_ridge_classifier_solves_the_normal_equations(ratio):
    y, _, b, _ = _problem()
    w = ridge_classifier(b, y, ratio).tolist()
    bl, yl = b.tolist(), y.tolist()
    # gradient of ||Y - B W||^2 + ratio ||W||^2 in W: 2 (B^T (B W - Y) + ratio W), zero at the minimiser
    for k in range(K):
        for c in range(C):
            grad = sum(bl[i][k] * (sum(bl[i][j] * w[j][c] for j in range(K)) - yl[i][c]) for i in range(N)) + ratio * w[k][c]
            assert abs(grad) < 1e-9, (k, c, grad)


def test_least_squares_classifier_survives_repeated_bit_columns():
    """nu = 0 and two equal bit columns: B^T B is singular, the W step still returns a minimiser."""
    y, _, b, _ = _problem(2)
    b[:, 1] = b[:, 0]
    w = ridge_classifier(b, y, 0.0)
    assert bool(torch.isfinite(w).all())
    best = float((y - b @ w).pow(2).sum())
    gen = torch.Generator().manual_seed(4)
    for _ in range(10):
        assert best <= float((y - b @ (w + 0.05 * torch.randn(K, C, generator=gen).double())).pow(2).sum()) + 1e-12


def test_ridge_classifier_beats_every_nearby_classifier():
    y, u, b, _ = _problem(1)
    w = ridge_classifier(b, y, 1.0)
    best = _discrete_objective(y.tolist(), b.tolist(), w.tolist(), u.tolist(), 1.0, 1.0, 0.0)
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        other = w + 0.05 * torch.randn(K, C, generator=gen).double()
        assert best < _discrete_objective(y.tolist(), b.tolist(), other.tolist(), u.tolist(), 1.0, 1.0, 0.0)


# --- the B step (discrete cyclic coordinate descent) -----------------------------------------------


def _brute_force_column(y, b, w, u, k, ratio):
    """The column k in {-1, +1}^N minimising ||Y - B W||^2 + ratio ||B - U||^2 with the other columns fixed."""
    best, best_value = None, math.inf
    for signs in itertools.product((-1.0, 1.0), repeat=len(b)):
        trial = [row[:k] + [s] + row[k + 1:] for row, s in zip(b, signs, strict=True)]
        value = _discrete_objective(y, trial, w, u, 1.0, 0.0, ratio)
        if value < best_value - 1e-12:
            best, best_value = trial, value
    return best


@pytest.mark.parametrize("seed, ratio", [(0, 55.0), (1, 1.0), (2, 0.0), (3, 0.3)])
def test_dcc_sweep_sets_each_column_to_its_brute_force_minimiser(seed, ratio):
    y, u, b, w = _problem(seed)
    p = y @ w.t() + ratio * u
    swept = dcc_sweep(b, w, p)
    expected = [list(r) for r in b.tolist()]
    for k in range(K):  # the sweep visits the columns in order, each given the already updated ones
        expected = _brute_force_column(y.tolist(), expected, w.tolist(), u.tolist(), k, ratio)
    assert swept.tolist() == expected
    assert set(swept.unique().tolist()) <= {-1.0, 1.0}


def test_dcc_sweep_leaves_its_input_untouched():
    y, u, b, w = _problem()
    before = b.clone()
    dcc_sweep(b, w, y @ w.t() + u)
    assert torch.equal(b, before)


def test_discrete_step_never_increases_the_discrete_objective():
    gen = torch.Generator().manual_seed(5)
    labels = torch.eye(4)[torch.randint(0, 4, (40,), generator=gen)]
    obj = create_hashing("dsdh", bits=8, train_labels=labels, dcc_iter=1)
    obj.U.copy_(torch.tanh(2 * torch.randn(40, 8, generator=gen)))
    obj.discrete_step()  # B = sign(U), then one W step and one sweep
    values = [float(obj.discrete_loss())]
    for _ in range(4):
        obj.discrete_step()
        values.append(float(obj.discrete_loss()))
    assert all(b <= a + 1e-6 for a, b in zip(values, values[1:], strict=False)), values


def test_discrete_codes_learn_the_labels_when_quantisation_is_off():
    """With eta = 0 the B and W steps fit a linear classifier of the labels on B: its error drops
    well below the one of random codes' ridge classifier."""
    gen = torch.Generator().manual_seed(7)
    labels = torch.eye(4)[torch.randint(0, 4, (60,), generator=gen)]
    obj = create_hashing("dsdh", bits=8, train_labels=labels, eta=0.0)
    obj.U.copy_(torch.tanh(torch.randn(60, 8, generator=gen)))
    random_b = torch.sign(obj.U)
    random_fit = float((labels - random_b @ ridge_classifier(random_b, labels, 1.0)).pow(2).sum())
    obj.discrete_step()
    fit = float((labels - obj.B @ obj.W).pow(2).sum())
    assert fit < 0.5 * random_fit


# --- the network loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [55.0, 0.0])
def test_loss_matches_a_per_pair_reference(eta):
    gen = torch.Generator().manual_seed(11)
    labels = (torch.rand(7, 3, generator=gen) < 0.4).float()
    labels[torch.arange(7), torch.randint(0, 3, (7,), generator=gen)] = 1.0
    obj = create_hashing("dsdh", bits=5, train_labels=labels, eta=eta)
    obj.U.copy_(torch.tanh(2 * torch.randn(7, 5, generator=gen)))
    obj.discrete_step()
    b_codes = obj.B.tolist()
    idx = torch.tensor([4, 0, 2])
    u = torch.tanh(2 * torch.randn(3, 5, generator=gen))
    loss = float(obj(u, labels[idx], idx))
    assert obj.B.tolist() == b_codes  # the network step keeps B (the W and B steps run per epoch)
    U = obj.U.tolist()
    ul, yl, tl = u.tolist(), labels[idx].tolist(), labels.tolist()
    pairs = []
    for i in range(3):
        for j in range(7):
            s = 1.0 if any(a > 0 and c > 0 for a, c in zip(yl[i], tl[j], strict=True)) else 0.0
            theta = 0.5 * sum(a * c for a, c in zip(ul[i], U[j], strict=True))
            pairs.append(math.log1p(math.exp(theta)) - s * theta)
    quant = sum((b_codes[int(r)][k] - ul[i][k]) ** 2 for i, r in enumerate(idx) for k in range(5))
    assert loss == pytest.approx(sum(pairs) / len(pairs) + eta * quant / (7 * 3), rel=1e-5)


def test_first_loss_initialises_discrete_codes_from_the_buffer():
    labels = torch.eye(3)[[0, 1, 2, 0, 1]]
    obj = create_hashing("dsdh", bits=4, train_labels=labels)
    assert not bool(obj.initialised)
    obj.U.copy_(torch.tanh(torch.randn(5, 4)))
    obj(torch.tanh(torch.randn(2, 4)), labels[:2], torch.tensor([0, 1]))
    assert bool(obj.initialised)
    assert set(obj.B.unique().tolist()) <= {-1.0, 1.0}
    assert obj.W.abs().sum() > 0


def test_state_round_trip_keeps_the_discrete_codes():
    labels = torch.eye(3)[[0, 1, 2, 0, 1]]
    obj = create_hashing("dsdh", bits=4, train_labels=labels, nu=0.5)
    obj.U.copy_(torch.tanh(torch.randn(5, 4)))
    obj.discrete_step()
    again = create_hashing("dsdh", bits=4, train_labels=labels, **obj.hparams())
    again.load_state_dict(obj.state_dict())
    assert torch.equal(again.B, obj.B) and torch.equal(again.W, obj.W) and bool(again.initialised)
    assert again.hparams() == {"mu": 1.0, "nu": 0.5, "eta": 55.0, "dcc_iter": 10}


@pytest.mark.parametrize("params", [{"mu": 0.0}, {"nu": -1.0}, {"eta": -0.5}, {"dcc_iter": 0}, {"dcc_iter": 1.5}])
def test_bad_hyper_parameters_raise_input_error(params):
    key = next(iter(params))
    with pytest.raises(InputError, match=key):
        create_hashing("dsdh", bits=4, train_labels=torch.eye(3), **params)


# --- learning on synthetic -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsdh_run(splits):
    from hashguard.models import create_hash_model

    torch.manual_seed(0)
    model = create_hash_model("cnn", 16, backbone_kwargs={"width": 8})
    objective = create_hashing("dsdh", bits=16, train_labels=splits.train.labels)
    history = train_hash_model(model, objective, splits.train, TrainConfig(epochs=3, batch_size=16, seed=0),
                               evaluate=lambda m: validation_map(m, splits), evaluate_every=1, progress=False)
    return model, objective, history


def test_dsdh_loss_falls(dsdh_run):
    losses = dsdh_run[2].losses
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_dsdh_codes_beat_random_codes(dsdh_run, splits):
    gen = torch.Generator().manual_seed(99)
    chance = []
    for _ in range(5):
        q = torch.where(torch.rand(len(splits.validation), 16, generator=gen) < 0.5, 1.0, -1.0)
        d = torch.where(torch.rand(len(splits.train), 16, generator=gen) < 0.5, 1.0, -1.0)
        chance.append(mean_average_precision(q, d, splits.validation.labels, splits.train.labels))
    assert dsdh_run[2].epochs[-1]["val_map"] > sum(chance) / len(chance) + 0.15


def test_training_keeps_discrete_codes_close_to_the_network_codes(dsdh_run):
    """The W / B steps ran every epoch: B is a sign matrix that mostly agrees with sign(U)."""
    _, objective, _ = dsdh_run
    assert set(objective.B.unique().tolist()) <= {-1.0, 1.0}
    assert float((objective.B == torch.where(objective.U >= 0, 1.0, -1.0)).float().mean()) > 0.9
