"""The shared attack engine: alpha schedule, eps parsing, early stops, optimisers, input checks,
and the loss functions checked against direct per-bit / per-pair readings of the papers."""

from __future__ import annotations

import math

import pytest
import torch

from hashguard.attacks import (
    Database,
    create_attack,
    linear_code_loss,
    list_attacks,
    parse_eps,
    relative_alpha,
)
from hashguard.attacks.pga import pharos_margin_loss
from hashguard.attacks.mainstay import saat_margin_loss
from hashguard.attacks.registry import ATTACKS
from hashguard.models import create_hash_model
from hashguard.retrieval import per_query_scores

pytestmark = pytest.mark.usefixtures("single_thread")

BITS = 16
N = 16  # queries


@pytest.fixture(scope="module")
def victim(tiny_attack_setting):
    first = {k: tiny_attack_setting[k][:N] for k in ("x", "y", "targets")}  # the first N queries
    return {**tiny_attack_setting, **first}


# ---------------------------------------------------------------------------- schedule and eps
def test_relative_alpha_schedule_over_100_steps():
    expected = [0.1] * 50 + [0.2] * 10 + [0.3] * 10 + [0.5] * 10 + [0.7] * 10 + [1.0] * 10
    assert [relative_alpha(t, 100) for t in range(100)] == expected


def test_relative_alpha_schedule_for_steps_not_a_multiple_of_ten():
    # floor(10 t / 7) = 0, 1, 2, 4, 5, 7, 8
    assert [relative_alpha(t, 7) for t in range(7)] == [0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.7]
    assert relative_alpha(0, 1) == 0.1
    assert [relative_alpha(t, 2) for t in range(2)] == [0.1, 0.2]


@pytest.mark.parametrize("alpha, expected", [
    ("relative", [0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.7]),
    ("none", [1.0] * 7),
    (None, [1.0] * 7),
    (3.0, [3.0] * 7),
    (lambda t, steps: t / steps, [t / 7 for t in range(7)]),
])
def test_engine_feeds_the_alpha_schedule_to_the_model(victim, alpha, expected):
    attack = create_attack("mainstay", victim["model"], steps=7, alpha=alpha)
    seen = []
    objective = attack.objective
    attack.objective = lambda xa, ctx, *, t, alpha: (seen.append((t, alpha)), objective(xa, ctx, t=t, alpha=alpha))[1]
    attack(victim["x"][:2], victim["y"][:2], knowledge=victim["knowledge"])
    assert [t for t, _ in seen] == list(range(7))
    assert [a for _, a in seen] == pytest.approx(expected)


def test_parse_eps():
    assert parse_eps("8/255") == 8 / 255
    assert parse_eps(" 16 / 255 ") == 16 / 255
    assert parse_eps("0.03") == 0.03
    assert parse_eps(0.1) == 0.1 and parse_eps(8 / 255) == 8 / 255
    for bad in ("abc", "1/0", "8/", ""):
        with pytest.raises(ValueError, match="8/255"):
            parse_eps(bad)
    attack = create_attack("pga", create_hash_model("cnn", 8, backbone_kwargs={"width": 4}), eps="4/255", step="1/255")
    assert attack.eps == 4 / 255 and attack.step == 1 / 255


# ---------------------------------------------------------------------------- early stops
def goal_reached(model, x_adv, goal):
    with torch.no_grad():
        return (torch.where(model.logits(x_adv) >= 0, 1.0, -1.0) == goal).all(1)


@pytest.mark.parametrize("name, targeted", [("pga", False), ("ifgsm", False), ("mainstay", True)])
def test_code_early_stop_stops_queries_at_their_goal(victim, name, targeted):
    steps = 40
    model = victim["model"]
    step = 0.05
    # no random start: each sign step moves a pixel by at most `step`, so a query's perturbation
    # is bounded by its own iteration count (eps = 1 leaves the early stop the only limit)
    attack = create_attack(name, model, targeted=targeted, eps=1.0, step=step, steps=steps, early_stop="code",
                           random_start=False)
    tl = victim["targets"] if targeted else None
    result = attack(victim["x"], victim["y"], target_labels=tl, knowledge=victim["knowledge"])
    stopped = result.iterations < steps
    assert int(stopped.sum()) > N // 2, f"only {int(stopped.sum())} of {N} queries stopped early"
    assert bool((result.iterations >= 0).all()) and bool((result.iterations <= steps).all())
    goal = result.ideal_codes
    assert bool(goal_reached(model, result.x_adv, goal)[stopped].all())
    assert torch.equal(result.codes_adv[stopped], goal[stopped])
    moved = (result.x_adv - victim["x"]).abs().flatten(1).max(1).values
    assert bool((moved <= result.iterations.float() * step + 1e-6).all()), "a query moved more than its steps allow"
    assert bool((moved[result.iterations == 0] == 0).all()), "a query at its goal from the start was changed"
    # without the early stop every query runs all the steps
    full = create_attack(name, model, targeted=targeted, eps=1.0, step=step, steps=steps, random_start=False)
    plain = full(victim["x"], victim["y"], target_labels=tl, knowledge=victim["knowledge"])
    assert bool((plain.iterations == steps).all())


def test_code_early_stop_keeps_the_image_where_the_query_stopped(victim):
    # alpha = 1 throughout (ifgsm), so the run of a stopped query equals a run of that many steps
    model, kn = victim["model"], victim["knowledge"]
    result = create_attack("ifgsm", model, eps=1.0, step=0.05, steps=40, early_stop="code")(
        victim["x"], victim["y"], knowledge=kn)
    stopped = [i for i in range(N) if 0 < int(result.iterations[i]) < 40]  # stopped after some steps
    assert stopped, "no query stopped mid-run; the test needs a setting where some do"
    for i in stopped[:4]:
        t = int(result.iterations[i])
        alone = create_attack("ifgsm", model, eps=1.0, step=0.05, steps=t)(
            victim["x"][i : i + 1], victim["y"][i : i + 1], knowledge=kn, ids=[i])
        torch.testing.assert_close(alone.x_adv[0], result.x_adv[i], rtol=0, atol=1e-5)


@pytest.mark.parametrize("targeted", [False, True])
def test_code_early_stop_refuses_a_method_without_a_goal_code(victim, targeted):
    # SDHA pulls toward / pushes from every relevant reference code: no single code to reach
    attack = create_attack("sdha", victim["model"], targeted=targeted, steps=5, early_stop="code")
    tl = victim["targets"][:2] if targeted else None
    with pytest.raises(ValueError, match="early_stop='ap'"):
        attack(victim["x"][:2], victim["y"][:2], target_labels=tl, knowledge=victim["knowledge"])
    assert not victim["model"].training and all(p.requires_grad for p in victim["model"].parameters())


def test_ap_early_stop_needs_a_database(victim):
    attack = create_attack("sdha", victim["model"], steps=5, early_stop="ap")
    with pytest.raises(ValueError, match="database"):
        attack(victim["x"], victim["y"], knowledge=victim["knowledge"])


@pytest.mark.parametrize("name, targeted, topk", [("sdha", False, 10), ("pga", False, 10), ("sdha", True, None)])
def test_ap_early_stop_stops_queries_at_ap_0_or_1(victim, name, targeted, topk):
    steps, every = 30, 3
    database = Database(victim["db_codes"], victim["db_labels"], topk)
    attack = create_attack(name, victim["model"], targeted=targeted, eps=0.5, steps=steps,
                           early_stop="ap", check_every=every)
    tl = victim["targets"] if targeted else None
    result = attack(victim["x"], victim["y"], target_labels=tl, knowledge=victim["knowledge"], database=database)
    stopped = result.iterations < steps
    assert int(stopped.sum()) >= 3, "no query reached its AP goal; the test needs a stronger setting"
    assert bool((result.iterations[stopped] % every == 0).all()), "AP is only checked every check_every steps"
    ap, _ = per_query_scores(result.codes_adv, victim["db_codes"], tl if targeted else victim["y"],
                             victim["db_labels"], topk=topk)
    ap = torch.as_tensor(ap)[stopped]
    if targeted:
        assert bool((ap == 1.0).all()), ap
    else:
        assert bool((ap == 0.0).all()), ap


# ---------------------------------------------------------------------------- engine settings
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sgd_and_adam_need_a_positive_learning_rate(victim, optimizer):
    model = victim["model"]
    for lr in (None, 0.0, -1.0):
        with pytest.raises(ValueError, match="lr"):
            create_attack("pga", model, optimizer=optimizer, lr=lr)
    result = create_attack("pga", model, optimizer=optimizer, lr=0.01, steps=3, eps=0.1)(
        victim["x"][:2], victim["y"][:2], knowledge=victim["knowledge"])
    assert float((result.x_adv - victim["x"][:2]).abs().max()) <= 0.1 + 1e-6


@pytest.mark.parametrize("setting, value, choices", [
    ("optimizer", "rmsprop", ["sign", "sgd", "adam"]),
    ("early_stop", "loss", ["none", "code", "ap"]),
    ("alpha", "cosine", ["relative", "none"]),
])
def test_unknown_engine_choices_list_the_valid_ones(victim, setting, value, choices):
    with pytest.raises(ValueError) as err:
        create_attack("pga", victim["model"], **{setting: value})
    message = str(err.value)
    assert value in message and all(c in message for c in choices)


ALL_MODES = [
    pytest.param(name, targeted, id=f"{name}-{'targeted' if targeted else 'untargeted'}")
    for name in list_attacks()
    for targeted in (False, True)
    if getattr(ATTACKS.get(name), "supports_targeted" if targeted else "supports_untargeted")
]


@pytest.mark.parametrize("name, targeted", ALL_MODES)
@pytest.mark.parametrize("eps", [0, 0.0, -0.1, "0/255", math.inf, math.nan])
def test_non_positive_eps_is_rejected(victim, name, targeted, eps):
    with pytest.raises(ValueError, match="eps"):
        create_attack(name, victim["model"], targeted=targeted, eps=eps)


@pytest.mark.parametrize("steps", [0, -1, 1.5])
def test_bad_steps_are_rejected(victim, steps):
    for name in list_attacks(False) + ["p2p"]:
        with pytest.raises(ValueError, match="steps"):
            create_attack(name, victim["model"], targeted=name == "p2p", steps=steps)


def test_other_engine_settings_are_checked(victim):
    model = victim["model"]
    for kwargs, word in [({"step": 0}, "step"), ({"check_every": 0}, "check_every"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ValueError, match=word):
            create_attack("pga", model, **kwargs)
    with pytest.raises(ValueError, match="HashModel"):
        create_attack("pga", "not a model")


# ---------------------------------------------------------------------------- bad inputs
def test_images_outside_0_1_or_with_wrong_channels_are_rejected(victim):
    attack = create_attack("pga", victim["model"], steps=1)
    x, y, kn = victim["x"][:2], victim["y"][:2], victim["knowledge"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(x * 2, y, knowledge=kn)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(x - 0.5, y, knowledge=kn)
    with pytest.raises(ValueError, match="channels"):
        attack(x[:, :1], y, knowledge=kn)
    with pytest.raises(ValueError, match="4-D"):
        attack(x[0], y[:1], knowledge=kn)
    with pytest.raises(ValueError, match="floating point"):
        attack((x * 255).to(torch.uint8), y, knowledge=kn)


@pytest.mark.parametrize("bad", ["tanh", "binary"])
def test_given_codes_must_be_sign_codes(victim, bad):
    x, y = victim["x"][:4], victim["y"][:4]
    codes = torch.tanh(torch.randn(4, BITS)) if bad == "tanh" else (torch.rand(4, BITS) < 0.5).float()
    attack = create_attack("mainstay", victim["model"], steps=1)
    with pytest.raises(ValueError, match="±1"):
        attack(x, y, codes=codes)


def test_labels_must_match_the_images_and_the_knowledge(victim):
    attack = create_attack("pga", victim["model"], steps=1)
    x, y, kn = victim["x"][:2], victim["y"][:2], victim["knowledge"]
    with pytest.raises(ValueError, match="columns"):
        attack(x, y[:, :3], knowledge=kn)
    with pytest.raises(ValueError, match="label rows"):
        attack(x, y[:1], knowledge=kn)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        attack(x, y[:, 0], knowledge=kn)
    with pytest.raises(ValueError, match="ids"):
        attack(x, y, knowledge=kn, ids=[0])


def test_targeted_needs_target_labels_and_untargeted_refuses_them(victim):
    x, y, kn = victim["x"][:2], victim["y"][:2], victim["knowledge"]
    targeted = create_attack("mainstay", victim["model"], targeted=True, steps=1)
    with pytest.raises(ValueError, match="target_labels"):
        targeted(x, y, knowledge=kn)
    with pytest.raises(ValueError, match="target_labels"):
        targeted(x, y, target_labels=victim["targets"][:2, :3], knowledge=kn)
    with pytest.raises(ValueError, match="target label rows"):
        targeted(x, y, target_labels=victim["targets"][:1], knowledge=kn)
    untargeted = create_attack("mainstay", victim["model"], steps=1)
    with pytest.raises(ValueError, match="targeted=True"):
        untargeted(x, y, target_labels=victim["targets"][:2], knowledge=kn)


def test_unsupported_modes_list_the_valid_attacks(victim):
    model = victim["model"]
    with pytest.raises(ValueError, match="no targeted mode") as err:
        create_attack("hag", model, targeted=True)
    assert all(name in str(err.value) for name in list_attacks(True))
    with pytest.raises(ValueError, match="targeted only") as err:
        create_attack("p2p", model)
    assert all(name in str(err.value) for name in list_attacks(False))
    assert "hag" not in list_attacks(True) and "p2p" not in list_attacks(False)
    assert set(list_attacks(True)) | set(list_attacks(False)) == set(list_attacks())


def test_unknown_method_lists_the_valid_ones(victim):
    with pytest.raises(ValueError, match="valid choices") as err:
        create_attack("pgaa", victim["model"])
    assert all(name in str(err.value) for name in list_attacks())


@pytest.mark.parametrize("name, targeted", ALL_MODES)
def test_unknown_parameter_lists_the_valid_ones(victim, name, targeted):
    # a ValueError (the CLI prints it), not a TypeError from deep inside the constructors
    with pytest.raises(ValueError, match="valid parameters") as err:
        create_attack(name, victim["model"], targeted=targeted, stepz=5)
    message = str(err.value)
    assert "stepz" in message and all(p in message for p in ("eps", "seed", "batch_size", "targeted"))


def test_prosgan_has_no_steps_to_set(victim):
    with pytest.raises(ValueError, match="steps must be 1"):
        create_attack("prosgan", victim["model"], targeted=True, steps=100)
    assert create_attack("prosgan", victim["model"], targeted=True, steps=1).steps == 1


@pytest.mark.parametrize("name, targeted", ALL_MODES)
def test_missing_knowledge_says_how_to_get_it_when_needed(victim, name, targeted):
    attack = create_attack(name, victim["model"], targeted=targeted, steps=1) if name != "prosgan" else \
        create_attack(name, victim["model"], targeted=True)
    tl = victim["targets"][:2] if targeted else None
    if not attack.needs_knowledge:  # e.g. HAG, or FGSM away from the clean code: runs without one
        result = attack(victim["x"][:2], victim["y"][:2], target_labels=tl)
        assert result.x_adv.shape == victim["x"][:2].shape
        return
    with pytest.raises(ValueError, match=r"Knowledge\.from_model"):
        attack(victim["x"][:2], victim["y"][:2], target_labels=tl)


def test_prosgan_without_fit_says_to_fit(victim):
    attack = create_attack("prosgan", victim["model"], targeted=True,
                           prototype={"epochs": 1, "steps_per_epoch": 5, "hidden": 16})
    with pytest.raises(ValueError, match="fit"):
        attack(victim["x"][:2], victim["y"][:2], target_labels=victim["targets"][:2], knowledge=victim["knowledge"])
    with pytest.raises(ValueError, match="splits.train"):
        attack.fit(victim["knowledge"])


# ---------------------------------------------------------------------------- loss functions
def random_codes(b, k, seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(b, k, generator=g) * 2 - 1
    goal = torch.where(torch.rand(b, k, generator=g) < 0.5, -1.0, 1.0)
    return h, goal


def test_pharos_margin_loss_matches_pga_eq_12_to_14():
    """PgA: u_k = b*_k h_k, m_k = 1[u_k > t], omega_k = u_k - 2t, L_a = -(1/pi) sum m_k omega_k u_k
    (maximised); the library minimises -L_a with goal = -b* (untargeted)."""
    h, goal = random_codes(6, 12, 0)
    h[0] = -0.95 * goal[0]  # every bit agrees with b* = -goal: all bits in the mask
    h[1] = 0.9 * goal[1]  # every bit already past the margin: pi = 0
    for t in (-0.8, -0.5, -0.1):
        pharos = -goal
        expected = torch.zeros(h.shape[0])
        for b in range(h.shape[0]):
            total, pi = 0.0, 0
            for k in range(h.shape[1]):
                u = float(pharos[b, k] * h[b, k])
                if u > t:  # Eq. 12
                    total += (u - 2 * t) * u  # Eq. 14 weight times agreement
                    pi += 1
            la = -total / pi if pi else 0.0  # Eq. 13
            expected[b] = -la
        torch.testing.assert_close(pharos_margin_loss(h, goal, t), expected, rtol=1e-6, atol=1e-6)
    assert float(pharos_margin_loss(h, goal)[1]) == 0.0


def test_pharos_margin_loss_pushes_the_most_agreeing_bits_hardest():
    h = torch.tensor([[0.9, 0.2, -0.5, -0.9]], requires_grad=True)
    goal = -torch.ones(1, 4)  # pharos code +1 everywhere: u = h
    pharos_margin_loss(h, goal, -0.8).sum().backward()
    grad = h.grad[0]
    assert grad[3] == 0  # u = -0.9 is below the margin: masked out
    assert grad[0] > grad[1] > grad[2] > 0  # d/du (u - 2t) u / pi = 2 (u - t) / pi


@pytest.mark.parametrize("targeted", [False, True])
def test_saat_margin_loss_matches_a_per_bit_reading(targeted):
    h, goal = random_codes(5, 10, 1)
    expected = torch.zeros(5)
    for b in range(5):
        total, count = 0.0, 0
        for k in range(10):
            if targeted:
                s = float(goal[b, k] * h[b, k])  # agreement with the target code
                if s < 0.5:
                    total, count = total - (s + 2) * s, count + 1
            else:
                s = float(-goal[b, k] * h[b, k])  # agreement with the mainstay code
                if s > -0.5:
                    total, count = total + (s + 2) * s, count + 1
        expected[b] = total / count if count else 0.0
    torch.testing.assert_close(saat_margin_loss(h, goal, targeted), expected, rtol=1e-6, atol=1e-6)


def test_linear_code_loss_is_the_negated_mean_agreement():
    h, goal = random_codes(4, 8, 2)
    expected = torch.tensor([-sum(float(goal[b, k] * h[b, k]) for k in range(8)) / 8 for b in range(4)])
    torch.testing.assert_close(linear_code_loss(h, goal), expected, rtol=1e-6, atol=1e-6)
    assert float(linear_code_loss(goal, goal)[0]) == -1.0 and float(linear_code_loss(-goal, goal)[0]) == 1.0


def sdha_slow(h, ref, ref_labels, labels, own, targeted, sigma, z, weight):
    """SDHA Eq. 4-8, one (query, reference) pair and one bit at a time."""
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    b_count, k = h.shape
    out = []
    for b in range(b_count):
        q = [float(v) for v in h[b]]
        q_sign = [1.0 if v >= 0 else -1.0 for v in q]

        def distance(r):
            if targeted:  # Eq. 7
                return 0.5 * sum(abs(q[j] - r[j]) * sig(-sigma * q[j] * r[j]) for j in range(k))
            return (0.5 * sum(abs(q[j] - r[j]) * sig(sigma * q[j] * r[j]) for j in range(k))  # Eq. 4
                    + sum(1 - sig(sigma * q[j] * r[j]) for j in range(k)))

        def weight_of(r):  # Eq. 5 / 8: Hamming distance of the signs, 0 counted as 0.5
            d = sum(1 for j in range(k) if q_sign[j] != r[j])
            return (d if d > 0 else 0.5) ** (-z)

        relevant = [[float(v) for v in ref[i]] for i in range(ref.shape[0])
                    if float((labels[b] * ref_labels[i]).sum()) > 0]
        if relevant:
            f = sum(distance(r) * weight_of(r) for r in relevant) / len(relevant)
        elif targeted:
            f = 0.0
        else:  # no relevant reference: the query's own clean code
            r = [float(v) for v in own[b]]
            f = distance(r) * weight_of(r)
        out.append(weight / k * (-f if not targeted else f))  # Eq. 6: F_u = -mean d_u w
    return torch.tensor(out)


@pytest.mark.parametrize("targeted", [False, True])
def test_sdha_code_loss_matches_the_per_pair_equations(victim, targeted):
    from hashguard.attacks import AttackContext, Knowledge
    from hashguard.codes.similarity import shares

    attack = create_attack("sdha", victim["model"], targeted=targeted)
    assert (attack.sigma, attack.z) == ((10.0, -0.3) if targeted else (5.0, 0.5))
    g = torch.Generator().manual_seed(3)
    b, n, k = 4, 7, 6
    h = torch.rand(b, k, generator=g) * 1.8 - 0.9
    ref = torch.where(torch.rand(n, k, generator=g) < 0.5, -1.0, 1.0)
    ref[0] = torch.where(h[0] >= 0, 1.0, -1.0)  # a reference at Hamming distance 0 (counted as 0.5)
    ref_labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]]).float()
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]).float()  # query 2 has no relevant reference
    own = torch.where(torch.rand(b, k, generator=g) < 0.5, -1.0, 1.0)
    ctx = AttackContext(x=torch.zeros(b, 3, 2, 2), labels=labels, ids=torch.arange(b), knowledge=Knowledge(ref, ref_labels),
                        per_query={"positives": shares(labels, ref_labels)})
    if not targeted:
        ctx.per_query["own"] = own
    got = attack.code_loss(h, ctx)
    expected = sdha_slow(h, ref, ref_labels, labels, own, targeted, attack.sigma, attack.z, attack.weight)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the weights are constants: the gradient is that of sum_i w_i d(q, r_i) with w fixed
    h_grad = h.clone().requires_grad_(True)
    attack.code_loss(h_grad, ctx).sum().backward()
    eps = 1e-3
    for j in range(k):  # finite differences on one query, away from sign changes
        if abs(float(h[1, j])) < 2 * eps:
            continue
        up, down = h.clone(), h.clone()
        up[1, j] += eps
        down[1, j] -= eps
        settings = (ref, ref_labels, labels, own, targeted, attack.sigma, attack.z, attack.weight)
        fd = (sdha_slow(up, *settings)[1] - sdha_slow(down, *settings)[1]) / (2 * eps)
        assert float(h_grad.grad[1, j]) == pytest.approx(float(fd), rel=1e-2, abs=1e-4)
