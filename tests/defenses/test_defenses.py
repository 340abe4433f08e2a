"""Every registered defense (registry-driven over ``list_defenses()``) on a tiny victim.

One victim (``cnn`` width 8, 16 bits, DPSH, a few epochs on ``synthetic``) is trained per module.
The end-to-end check defends it for a few epochs with a small budget (the tiny synthetic victim
shrugs off 8/255: eps 0.06, step 0.02) and attacks the defended model with PgA under the same
budget, its database codes recomputed from the defended model. The loop's bookkeeping (resume,
determinism, input model untouched) runs with a cheaper inner attack (2 PGD steps). The outer
loss of each defense is checked against a direct per-pair computation on hand-made tensors.
"""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
from torch import nn

from hashguard.attacks import Knowledge, create_attack
from hashguard.defenses import (
    DefenseConfig,
    create_defense,
    frozen_batchnorm_statistics,
    list_defenses,
    objective_from_config,
)
from hashguard.defenses.base import RESUME_FORMAT
from hashguard.hashing import create_hashing, list_hashing
from hashguard.retrieval import mean_average_precision

pytestmark = pytest.mark.usefixtures("single_thread")

BITS = 16
EPS, STEP = 0.06, 0.02  # small budget: the tiny victim shrugs off 8/255
ATTACK_STEPS = 20  # PgA iterations of the evaluation attack
MARGIN = 0.03  # required gain of the attacked mAP (measured over victim and defense seeds: +0.09 to +0.48)

# Per-defense settings beyond the shared ones (a smaller PrototypeNet and a higher lr for ATRDH).
EXTRA = {"atrdh": {"prototype_hidden": 64, "lr": 1e-3}}
METHOD_PARAMS = {"atrdh": {"adv_weight", "prototype_lr", "prototype_hidden"}, "saat": {"lam", "mu"}}


def params_for(name: str, **overrides):
    """The effective run: 3 epochs, PGD with eps 0.06 / step 0.02, the method's defaults otherwise."""
    return {"epochs": 3, "eps": EPS, "step": STEP, **EXTRA.get(name, {}), **overrides}


def cheap_params(name: str, **overrides):
    """The bookkeeping run: as ``params_for`` with a 2-step inner attack."""
    return params_for(name, steps=2, **overrides)


@pytest.fixture(scope="module")
def world(tiny_victim):
    splits, model = tiny_victim
    world = {
        "splits": splits,
        "model": model,
        "state": copy.deepcopy(model.state_dict()),
        "x": splits.query.batch(slice(None)),
        "y": torch.as_tensor(splits.query.labels).float(),
        "db_labels": torch.as_tensor(splits.database.labels).float(),
    }
    world["undefended"] = attacked_map(model, world)
    return world


def objective(world, labels=None):
    """A fresh L_ori for the training split (each fit owns its objective's buffers)."""
    labels = world["splits"].train.labels if labels is None else labels
    return create_hashing("dpsh", bits=BITS, train_labels=labels)


def attacked_map(model, world):
    """(clean mAP, mAP under PgA) of all queries; the database codes are ``model``'s own."""
    model.eval()
    splits = world["splits"]
    knowledge = Knowledge.from_model(model, splits.train)
    db = model.encode(splits.database.batch(slice(None)))
    result = create_attack("pga", model, eps=EPS, step=STEP, steps=ATTACK_STEPS, seed=0)(
        world["x"], world["y"], knowledge=knowledge)
    assert float((result.x_adv - world["x"]).abs().max()) <= EPS + 1e-6
    clean = mean_average_precision(model.encode(world["x"]), db, world["y"], world["db_labels"])
    return clean, mean_average_precision(result.codes_adv, db, world["y"], world["db_labels"])


@pytest.fixture(scope="module")
def defended(world):
    """name -> (defense, defended model), fitted once per defense with ``params_for``."""
    cache = {}

    def get(name):
        if name not in cache:
            defense = create_defense(name, world["model"], objective(world), **params_for(name))
            cache[name] = defense, defense.fit(world["splits"].train, progress=False)
        return cache[name]

    return get


def assert_same_state(a, b, atol=0.0):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if atol == 0.0 or not sa[key].is_floating_point():
            assert torch.equal(sa[key], sb[key]), key
        else:
            assert torch.allclose(sa[key], sb[key], atol=atol, rtol=0), (key, float((sa[key] - sb[key]).abs().max()))


# ---------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", list_defenses())
def test_defense_improves_attacked_map(world, defended, name):
    defense, model = defended(name)
    clean_before, attacked_before = world["undefended"]
    clean, attacked = attacked_map(model, world)
    assert attacked > attacked_before + MARGIN, (name, attacked_before, attacked)
    assert clean > clean_before - 0.1, "the defense destroyed clean retrieval"
    history = defense.history.epochs
    assert [rec["epoch"] for rec in history] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(rec["loss"])) for rec in history)
    assert not model.training


@pytest.mark.parametrize("name", list_defenses())
def test_fit_returns_a_new_model_and_leaves_the_input_alone(world, defended, name):
    defense, model = defended(name)
    source = world["model"]
    assert model is not source and defense.source is source
    for key, value in source.state_dict().items():
        assert torch.equal(value, world["state"][key]), f"fit changed the input model's {key}"
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, world["state"][k])]
    assert changed, "the defended model equals the input model"
    shared = {p.data_ptr() for p in source.parameters()} & {p.data_ptr() for p in model.parameters()}
    assert not shared, "the defended model shares parameter storage with the input model"


# ---------------------------------------------------------------------------- batch norm
def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.Flatten(),
                         nn.LazyLinear(6), nn.BatchNorm1d(6, momentum=None), nn.ReLU())


def _bn_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def test_frozen_batchnorm_statistics_blocks_running_stat_updates_and_restores_momentum():
    model = _bn_model().train()
    x = torch.randn(8, 3, 6, 6) * 3 + 1
    model(x)  # materialise the lazy layer; statistics now non-trivial
    before = _bn_state(model)
    assert before
    with frozen_batchnorm_statistics(model):
        assert model.training
        out = model(x * 2 + 5)
        out.sum().backward()  # gradients still flow
    after = _bn_state(model)
    for key in before:
        assert torch.equal(before[key], after[key]), f"{key} changed inside the block"
    assert model[1].momentum == 0.3 and model[4].momentum is None
    assert model[0].weight.grad is not None and model[1].weight.grad is not None

    model(x * 2 + 5)  # outside the block the statistics move again
    moved = _bn_state(model)
    for key in before:
        assert not torch.equal(before[key], moved[key]), f"{key} did not change outside the block"


def test_frozen_batchnorm_statistics_restores_after_an_error():
    model = _bn_model().train()
    model(torch.randn(8, 3, 6, 6))
    before = _bn_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with frozen_batchnorm_statistics(model):
            model(torch.randn(8, 3, 6, 6))
            raise RuntimeError("boom")
    assert model[1].momentum == 0.3 and model[4].momentum is None
    for key, value in _bn_state(model).items():
        assert torch.equal(before[key], value), key


@pytest.mark.parametrize("name", list_defenses())
def test_adversarial_forward_passes_leave_batchnorm_statistics_to_benign_images(world, name, monkeypatch):
    """Within fit, the adversarial forward runs under frozen statistics and in train mode."""
    import hashguard.defenses.base as base

    real = base.frozen_batchnorm_statistics
    seen = []

    @contextlib.contextmanager
    def spy(model):
        before = _bn_state(model)
        with real(model):
            yield
        seen.append(model.training)
        for key, value in _bn_state(model).items():
            assert torch.equal(before[key], value), f"the adversarial forward pass moved {key}"

    monkeypatch.setattr(base, "frozen_batchnorm_statistics", spy)
    defense = create_defense(name, world["model"], objective(world), **cheap_params(name, epochs=1))
    model = defense.fit(world["splits"].train, progress=False)
    assert seen == [True] * 4  # 120 training items in batches of 32, adversarial forward in train mode
    assert not model.training


# ---------------------------------------------------------------------------- determinism and resume
@pytest.mark.parametrize("name", list_defenses())
def test_same_seed_gives_identical_weights(world, name):
    train = world["splits"].train
    torch.manual_seed(123)  # the global random state must not matter
    first = create_defense(name, world["model"], objective(world), **cheap_params(name, epochs=2)).fit(train, progress=False)
    torch.manual_seed(456)
    torch.rand(17)
    second = create_defense(name, world["model"], objective(world), **cheap_params(name, epochs=2)).fit(train, progress=False)
    assert_same_state(first, second)


@pytest.mark.parametrize("name", list_defenses())
def test_interrupted_run_resumes_to_the_uninterrupted_weights(world, name, tmp_path):
    train = world["splits"].train
    params = cheap_params(name, epochs=3)

    def build(**overrides):
        return create_defense(name, world["model"], objective(world), **{**params, **overrides})

    straight_path = tmp_path / "straight.resume.pt"
    straight = build().fit(train, resume_path=straight_path, progress=False)
    assert torch.load(straight_path, weights_only=True)["epoch"] == 3

    # interrupted: epoch 1 finishes (and is saved), then the run dies during epoch 2's evaluation
    calls = []

    def interrupt(model):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"probe": 1.0}

    path = tmp_path / "run.resume.pt"
    with pytest.raises(KeyboardInterrupt):
        build().fit(train, evaluate=interrupt, resume_path=path, progress=False)
    saved = torch.load(path, weights_only=True)
    assert saved["format"] == RESUME_FORMAT and saved["epoch"] == 1

    lines, evaluated = [], []
    resumed_defense = build()
    resumed = resumed_defense.fit(train, evaluate=lambda m: evaluated.append(1) or {"probe": 2.0},
                                  resume_path=path, progress=False, log=lines.append)
    assert "resumed" in lines[0] and "after epoch 1" in lines[0]
    assert len(evaluated) == 2, "the resumed run did not continue at epoch 2"
    assert [r["epoch"] for r in resumed_defense.history.epochs] == [1, 2, 3]
    assert [r["probe"] for r in resumed_defense.history.epochs] == [1.0, 2.0, 2.0]
    assert_same_state(resumed, straight, atol=1e-6)

    # a finished run's file: nothing left to train, the saved model comes back
    again = build().fit(train, evaluate=lambda m: pytest.fail("trained again"), resume_path=straight_path, progress=False)
    assert_same_state(again, straight)

    # the file of another run is refused, not silently continued
    for other in ({"lr": params.get("lr", 0.05) * 2}, {"epochs": 4}):
        with pytest.raises(ValueError, match="delete it"):
            build(**other).fit(train, resume_path=path, progress=False)


def test_a_file_that_is_not_a_resume_file_is_refused(world, tmp_path):
    path = tmp_path / "junk.pt"
    torch.save({"format": "something else"}, path)
    defense = create_defense("saat", world["model"], objective(world), **cheap_params("saat", epochs=1))
    with pytest.raises(ValueError, match="delete it"):
        defense.fit(world["splits"].train, resume_path=path, progress=False)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", list_defenses())
@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_non_positive_epochs_are_rejected(world, name, epochs):
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        create_defense(name, world["model"], objective(world), epochs=epochs)


@pytest.mark.parametrize("field, value, message", [("batch_size", 1, "batch_size"), ("lr", 0.0, "lr must be a number > 0"),
                                                   ("eps", 0.0, r"eps must be a number in \(0, 1\]"), ("steps", 0, "steps"),
                                                   ("optimizer", "rmsprop", "valid choices")])
def test_bad_settings_are_rejected(world, field, value, message):
    with pytest.raises(ValueError, match=message):
        create_defense("saat", world["model"], objective(world), **{field: value})


def test_unknown_defense_lists_the_valid_choices(world):
    with pytest.raises(ValueError, match="valid choices") as err:
        create_defense("nope", world["model"], objective(world))
    assert "nope" in str(err.value)
    for name in list_defenses():
        assert name in str(err.value)


@pytest.mark.parametrize("name", list_defenses())
def test_unknown_parameter_lists_the_valid_parameters(world, name):
    with pytest.raises(ValueError, match="valid parameters") as err:
        create_defense(name, world["model"], objective(world), lamda=2.0)
    message = str(err.value)
    assert "lamda" in message and name in message
    for field in ("epochs", "lr", "eps", "steps", "seed", *METHOD_PARAMS.get(name, ())):
        assert field in message, field


def test_method_parameters_are_per_defense(world):
    assert create_defense("saat", world["model"], objective(world), lam=2.0).params == {"lam": 2.0, "mu": 1e-4, "weighting": "paper"}
    with pytest.raises(ValueError, match="no parameter 'lam'"):
        create_defense("cgat", world["model"], objective(world), lam=2.0)


def test_objective_from_config_rejects_an_unknown_hash_method(world):
    labels = torch.as_tensor(world["splits"].train.labels).float()
    for config in ({"hash_method": "nope", "bits": BITS}, {"bits": BITS}):
        with pytest.raises(ValueError, match="not a known objective") as err:
            objective_from_config(config, labels)
        for name in list_hashing():
            assert name in str(err.value)
    built = objective_from_config({"hash_method": "dpsh", "bits": BITS, "hash_params": {"eta": 10.0}}, labels)
    assert built.name == "dpsh" and built.bits == BITS and built.eta == 10.0 and built.num_train == len(labels)


def test_the_objective_must_be_a_hashing_objective(world):
    with pytest.raises(ValueError, match="hashing objective"):
        create_defense("saat", world["model"], nn.MSELoss())


def test_objective_of_another_training_set_is_rejected_by_fit(world):
    labels = torch.as_tensor(world["splits"].train.labels)[:50]
    defense = create_defense("saat", world["model"], objective(world, labels), **cheap_params("saat", epochs=1))
    with pytest.raises(ValueError, match="50 training items") as err:
        defense.fit(world["splits"].train, progress=False)
    assert "120" in str(err.value)


def test_dsdh_l_ori_updates_its_discrete_codes_after_every_epoch(world, monkeypatch):
    """DSDH as L_ori: the defense runs its W and B steps once per epoch (end_epoch), like the trainer."""
    train = world["splits"].train
    dsdh = create_hashing("dsdh", bits=BITS, train_labels=train.labels)
    calls = []
    step = dsdh.discrete_step
    monkeypatch.setattr(dsdh, "discrete_step", lambda: (calls.append(1), step())[1])
    create_defense("saat", world["model"], dsdh, **cheap_params("saat", epochs=2)).fit(train, progress=False)
    assert len(calls) == 1 + 2  # the lazy start at the first batch, then one per epoch
    assert set(dsdh.B.unique().tolist()) <= {-1.0, 1.0}


def test_config_defaults_are_the_papers():
    assert DefenseConfig().eps == pytest.approx(8 / 255) and DefenseConfig().steps == 7


# ---------------------------------------------------------------------------- outer losses
K, N, C = 8, 12, 3


@pytest.fixture
def tensors(world):
    """A hand-made training set (N codes / labels), a batch and its codes."""
    g = torch.Generator().manual_seed(31)  # a seed whose reference codes have no tied bit
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                           [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 0]]).float()
    B = torch.where(torch.rand(N, K, generator=g) < 0.5, -1.0, 1.0)
    U = torch.rand(N, K, generator=g) * 2 - 1
    idx = torch.tensor([0, 4, 7, 11])
    return {
        "labels": labels, "B": B, "U": U, "idx": idx, "y": labels[idx],
        "h_ben": (torch.rand(4, K, generator=g) * 2 - 1).requires_grad_(),
        "h_adv": (torch.rand(4, K, generator=g) * 2 - 1).requires_grad_(),
        "model": world["model"],
    }


def _defense(name, t, **params):
    obj = create_hashing("dpsh", bits=K, train_labels=t["labels"])
    obj.U.copy_(t["U"])
    defense = create_defense(name, t["model"], obj, **params)
    defense.B = t["B"].clone()
    return defense


def _shares(a, b):
    return float(a @ b) > 0


def _weighted_code(y, t, weight):
    """sign(sum_j w_j b_j) by a loop over the training items (sign(0) = +1, never hit here)."""
    pos = [j for j in range(N) if _shares(y, t["labels"][j])]
    neg = [j for j in range(N) if not _shares(y, t["labels"][j])]
    total = torch.zeros(K, dtype=torch.float64)
    for j in range(N):
        total += weight(y, t["labels"][j], j in pos, len(pos), len(neg)) * t["B"][j].double()
    assert float(total.abs().min()) > 1e-6, "a tie: pick other tensors"
    return torch.where(total >= 0, 1.0, -1.0)


def mainstay(y, t):  # SAAT Eq. 10-11: cosine / |P| on positives, 1 / |N| on negatives
    return _weighted_code(y, t, lambda y, yj, p, np_, nn_: float(y @ yj) / float(y.norm() * yj.norm()) / np_ if p else -1.0 / nn_)


def center(y, t):  # CgAT: mean of positives - mean of negatives
    return _weighted_code(y, t, lambda y, yj, p, np_, nn_: 1.0 / np_ if p else -1.0 / nn_)


def pharos(y, t):  # PgA Eq. 7-8: Dice * |N| on positives, |P| on negatives
    return _weighted_code(y, t, lambda y, yj, p, np_, nn_: 2 * float(y @ yj) / float(y.sum() + yj.sum()) * nn_ if p else -float(np_))


def _l_ori(t, h_ben):
    obj = create_hashing("dpsh", bits=K, train_labels=t["labels"])
    obj.U.copy_(t["U"])
    return obj(h_ben, t["y"], t["idx"])


def _check(defense, t, expected_fn):
    h_ben, h_adv = t["h_ben"], t["h_adv"]
    got = defense.outer_loss(h_ben, h_adv, t["y"], t["idx"], ref=None)
    g_ben, g_adv = torch.autograd.grad(got, (h_ben, h_adv))
    expected = expected_fn(h_ben, h_adv)
    e_ben, e_adv = torch.autograd.grad(expected, (h_ben, h_adv))
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-5, abs=1e-6)
    assert torch.allclose(g_adv, e_adv, atol=1e-6) and torch.allclose(g_ben, e_ben, atol=1e-6)
    assert float(g_adv.abs().sum()) > 0, "no gradient reaches the adversarial codes"


def _code_term(t, h_adv, builder):
    """(1/n) sum_i (1/K) <c_i, h(x'_i)>, c_i the reference code of the batch's i-th label."""
    total = 0.0
    for i in range(h_adv.shape[0]):
        c = builder(t["y"][i], t).to(h_adv.dtype)
        total = total + (c * h_adv[i]).sum() / K
    return total / h_adv.shape[0]


def test_saat_outer_loss_is_lambda_adv_plus_mu_qua_plus_ori(tensors):
    t, lam, mu = tensors, 2.0, 0.5
    defense = _defense("saat", t, lam=lam, mu=mu)

    def expected(h_ben, h_adv):
        l_adv = -_code_term(t, h_adv, mainstay)
        l_qua = sum((h_adv[i, k] - (1.0 if float(h_adv[i, k].detach()) >= 0 else -1.0)) ** 2
                    for i in range(h_adv.shape[0]) for k in range(K)) / (h_adv.shape[0] * K)
        return lam * l_adv + mu * l_qua + _l_ori(t, h_ben)

    _check(defense, t, expected)


def test_cgat_outer_loss_is_ori_minus_centre_agreement(tensors):
    t = tensors
    _check(_defense("cgat", t), t, lambda h_ben, h_adv: _l_ori(t, h_ben) - _code_term(t, h_adv, center))


def test_pga_at_outer_loss_is_ori_minus_pharos_agreement(tensors):
    t = tensors
    _check(_defense("pga-at", t), t, lambda h_ben, h_adv: _l_ori(t, h_ben) - _code_term(t, h_adv, pharos))


def test_atrdh_outer_loss_is_ori_plus_the_pairwise_adversarial_term(tensors):
    t, weight = tensors, 0.7
    defense = _defense("atrdh", t, adv_weight=weight)

    def expected(h_ben, h_adv):
        U = t["U"].clone()
        U[t["idx"]] = h_ben.detach()  # L_ori refreshes the benign buffer with the batch first
        total = 0.0
        for i in range(h_adv.shape[0]):
            for j in range(N):
                s = 1.0 if _shares(t["y"][i], t["labels"][j]) else -1.0
                total = total + ((h_adv[i] * U[j]).sum() / K - s) ** 2
        return _l_ori(t, h_ben) + weight * total / (h_adv.shape[0] * N)

    _check(defense, t, expected)


def test_code_guided_defenses_guide_with_codes_of_the_refreshed_buffer(tensors):
    """The reference used in the outer loss comes from the current B, not the one of the attack."""
    t = tensors
    for name, builder in (("saat", mainstay), ("cgat", center), ("pga-at", pharos)):
        defense = _defense(name, t)
        ref = defense.reference(t["y"], t["idx"])
        assert torch.equal(ref, torch.stack([builder(y, t) for y in t["y"]]).float()), name
