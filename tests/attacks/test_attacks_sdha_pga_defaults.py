"""Issue 14 items 4-5: SDHA's Eq. 1 (unsquared L2 norm), its AP early stop on by default, and PgA
without the tanh-scale schedule by default (each paper's own setting; the old forms as options)."""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks import Database, create_attack
from hashguard.attacks.context import AttackContext

N = 12


@pytest.fixture(scope="module")
def victim(tiny_attack_setting):
    return {**tiny_attack_setting, **{k: tiny_attack_setting[k][:N] for k in ("x", "y", "targets")}}


def _context(attack, victim, x):
    ctx = AttackContext.of_batch(x, victim["y"], list(range(N)), device=x.device, knowledge=victim["knowledge"])
    with torch.no_grad():
        attack.prepare(ctx)
    return ctx


@pytest.mark.parametrize("perturbation", ["l2", "mse"])
def test_sdha_objective_is_eq1_with_the_chosen_size_term(victim, perturbation):
    model = victim["model"]
    kwargs = {} if perturbation == "l2" else {"perturbation": "mse"}
    attack = create_attack("sdha", model, **kwargs)
    assert attack.perturbation == perturbation
    x = victim["x"]
    x_adv = (x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    ctx = _context(attack, victim, x)
    loss, h = attack.objective(x_adv, ctx, t=0, alpha=1.0)
    # slow reference: one image at a time, the size term written out
    for i in range(N):
        d = (x_adv[i] - x[i]).double()
        size = float(d.pow(2).sum().sqrt()) if perturbation == "l2" else float(d.pow(2).mean())
        expected = size + float(attack.code_loss(h[i : i + 1].detach(), ctx.subset(torch.arange(N) == i))[0])
        assert float(loss[i].detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_sdha_l2_term_has_a_unit_gradient_and_none_at_the_clean_image(victim):
    x = victim["x"][:2]
    attack = create_attack("sdha", victim["model"], weight=0.0)  # the size term alone
    ctx = AttackContext.of_batch(x, victim["y"][:2], [0, 1], device=x.device, knowledge=victim["knowledge"])
    with torch.no_grad():
        attack.prepare(ctx)
    for start, norm in (((x + 0.02).clamp(0, 1), 1.0), (x, 0.0)):
        xa = start.clone().requires_grad_(True)
        g, = torch.autograd.grad(attack.objective(xa, ctx, t=0, alpha=1.0)[0].sum(), xa)
        assert g.flatten(1).norm(dim=1).tolist() == pytest.approx([norm, norm], abs=1e-5)


def test_sdha_refuses_an_unknown_size_term(victim):
    with pytest.raises(ValueError, match="perturbation"):
        create_attack("sdha", victim["model"], perturbation="l1")


def test_sdha_stops_at_ap_0_by_default_when_given_a_database(victim):
    model = victim["model"]
    database = Database(victim["db_codes"], victim["db_labels"], 10)
    attack = create_attack("sdha", model, eps=0.5, steps=30, check_every=3)
    assert attack.early_stop == "auto"
    with_db = attack(victim["x"], victim["y"], knowledge=victim["knowledge"], database=database)
    assert int((with_db.iterations < 30).sum()) >= 3, "no query reached AP 0; the test needs a stronger setting"
    # no database: the same default runs every step instead of failing
    without = attack(victim["x"], victim["y"], knowledge=victim["knowledge"])
    assert bool((without.iterations == 30).all())
    # turned off explicitly: every step even with a database
    off = create_attack("sdha", model, eps=0.5, steps=30, check_every=3, early_stop="none")(
        victim["x"], victim["y"], knowledge=victim["knowledge"], database=database)
    assert bool((off.iterations == 30).all())
    # "ap" asked for explicitly still demands the database
    with pytest.raises(ValueError, match="database"):
        create_attack("sdha", model, steps=3, early_stop="ap")(victim["x"], victim["y"], knowledge=victim["knowledge"])


@pytest.mark.parametrize("name", ["pga", "pga-dagger"])
def test_pga_runs_without_the_alpha_schedule_by_default(victim, name):
    model = victim["model"]
    attack = create_attack(name, model, steps=7)
    assert attack.alpha == "none"
    seen = []
    objective = attack.objective
    attack.objective = lambda xa, ctx, *, t, alpha: (seen.append(alpha), objective(xa, ctx, t=t, alpha=alpha))[1]
    attack(victim["x"][:2], victim["y"][:2], knowledge=victim["knowledge"])
    assert seen == [1.0] * 7
    # the schedule stays an option
    scheduled = create_attack(name, model, steps=7, alpha="relative")
    assert [scheduled.alpha_at(t) for t in range(7)] == [0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.7]
