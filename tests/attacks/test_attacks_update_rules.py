"""The engine's update rules, chosen by name: sign (PGD), SGD with momentum and Adam on the image,
each checked against its formula; a rule keeps its own per-row state for one run."""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks.update_rules import create_update_rule, list_update_rules

SETTINGS = dict(step=0.01, lr=0.5, momentum=0.9, betas=(0.8, 0.99))


def grads(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 2, 3, 3, generator=g) for _ in range(n)]


def test_registry_lists_the_engine_rules_and_refuses_others():
    assert set(list_update_rules()) == {"sign", "sgd", "adam"}
    with pytest.raises(ValueError, match="valid choices: adam, sgd, sign"):
        create_update_rule("rmsprop", torch.zeros(1), **SETTINGS)


def test_sign_rule_is_a_pgd_step():
    g = grads(1)[0]
    rule = create_update_rule("sign", torch.zeros_like(g), **SETTINGS)
    assert torch.equal(rule(g, slice(None), 0), 0.01 * g.sign())


def test_momentum_rule_accumulates_per_row():
    gs = grads()
    rule = create_update_rule("sgd", torch.zeros_like(gs[0]), **SETTINGS)
    buf = torch.zeros_like(gs[0])
    for t, g in enumerate(gs):
        buf = 0.9 * buf + g
        torch.testing.assert_close(rule(g, slice(None), t), 0.5 * buf, rtol=0, atol=0)
    # rows that stopped keep their buffer: only rows 1 and 3 move on
    rows = torch.tensor([1, 3])
    g = grads(1, seed=1)[0][rows]
    step = rule(g, rows, len(gs))
    torch.testing.assert_close(step, 0.5 * (0.9 * buf[rows] + g), rtol=0, atol=0)
    torch.testing.assert_close(rule.buf[[0, 2]], buf[[0, 2]], rtol=0, atol=0)


def test_adam_rule_matches_the_bias_corrected_formula():
    gs = grads()
    rule = create_update_rule("adam", torch.zeros_like(gs[0]), **SETTINGS)
    m = v = torch.zeros_like(gs[0])
    for t, g in enumerate(gs):
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        expected = 0.5 * (m / (1 - 0.8 ** (t + 1))) / ((v / (1 - 0.99 ** (t + 1))).sqrt() + 1e-8)
        torch.testing.assert_close(rule(g, slice(None), t), expected, rtol=1e-6, atol=1e-7)


def test_each_run_starts_with_fresh_state():
    g = grads(1)[0]
    first = create_update_rule("sgd", torch.zeros_like(g), **SETTINGS)
    first(g, slice(None), 0)
    second = create_update_rule("sgd", torch.zeros_like(g), **SETTINGS)
    assert torch.equal(second(g, slice(None), 0), 0.5 * g)
