"""``evaluate_robustness``: one call, the same numbers as the attacks run one by one."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import hashguard
from hashguard.bench.protocol import run_attack
from hashguard.bench import worst_case
from hashguard.robustness import ATTACK_SETS, state_fingerprint

ATTACKS = {"untargeted": ["pga", "mainstay"], "targeted": ["mainstay"]}
STEPS = {"pga": 5, "mainstay": 5}


class Net(nn.Module):
    def __init__(self, victim):
        super().__init__()
        self.body = nn.Sequential(copy.deepcopy(victim.features), copy.deepcopy(victim.hash_layer))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def wrapped(tiny_victim):
    splits, victim = tiny_victim
    return splits, hashguard.wrap_model(Net(victim).eval(), input_norm=((0.5,) * 3, (0.25,) * 3),
                                        example=splits.query.batch(slice(0, 2)))


def test_figures_equal_the_attacks_run_one_by_one(wrapped, tmp_path, single_thread):
    splits, model = wrapped
    result = hashguard.evaluate_robustness(model, splits, attacks=ATTACKS, queries=12, steps=STEPS,
                                           out=tmp_path / "rob", progress=False)
    records = {}
    for method in ATTACKS["untargeted"]:
        records[method] = run_attack(model, splits, method, n_queries=12, seed=0, params={"steps": STEPS[method]})
    targeted = run_attack(model, splits, "mainstay", targeted=True, n_queries=12, seed=0, params={"steps": 5})
    for method, record in records.items():
        assert result.attacks[method]["map"] == pytest.approx(record["map"], abs=1e-12)
    assert result.attacks["mainstay (targeted)"]["t_map"] == pytest.approx(targeted["t_map"], abs=1e-12)
    assert result.clean_map == pytest.approx(records["pga"]["clean_map"], abs=1e-12)
    assert result.clean_t_map == pytest.approx(targeted["clean_t_map"], abs=1e-12)
    assert result.robust_map == pytest.approx(worst_case(list(records.values()))["map"], abs=1e-12)
    assert result.robust_map <= min(r["map"] for r in records.values()) + 1e-12
    assert result.robust_map < result.clean_map
    assert result.n_queries == 12 and result.eps == pytest.approx(8 / 255)
    assert (tmp_path / "rob" / "report.html").is_file() and result.report["md"].endswith("report.md")
    text = str(result)
    assert "robust (worst case)" in text and "mainstay (targeted)" in text


def test_a_repeated_call_reuses_every_record_and_other_weights_do_not(wrapped, tmp_path, single_thread):
    splits, model = wrapped
    out = tmp_path / "rob"
    kwargs = dict(attacks={"untargeted": ["pga"]}, queries=6, steps={"pga": 2}, out=out, progress=False)
    first = hashguard.evaluate_robustness(model, splits, **kwargs)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    again = hashguard.evaluate_robustness(model, splits, **kwargs)
    assert {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} == stamps
    assert again.robust_map == first.robust_map
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.module.body[-1].weight.mul_(-1)
    assert state_fingerprint(other) != state_fingerprint(model)
    hashguard.evaluate_robustness(other, splits, **kwargs)
    assert len(list((out / "records").glob("*.json"))) == 2 * len(stamps)


def test_without_out_nothing_is_kept(wrapped, tmp_path, monkeypatch, single_thread):
    splits, model = wrapped
    monkeypatch.chdir(tmp_path)
    result = hashguard.evaluate_robustness(model, splits, attacks={"untargeted": ["fgsm"]}, queries=4, progress=False)
    assert result.report is None and result.out is None and list(tmp_path.iterdir()) == []
    assert result.robust_map == pytest.approx(result.attacks["fgsm"]["map"], abs=1e-6)  # per-query APs: 6 decimals


@pytest.mark.parametrize("kwargs, message", [
    ({"attacks": "strongest"}, "unknown attack set"),
    ({"attacks": {"untargeted": ["nope"]}}, "unknown attack 'nope'"),
    ({"attacks": {"targeted": ["hag"]}}, "no targeted mode"),
    ({"eps": "big"}, "eps"),
    ({"steps": {"sdha": 0}}, "steps"),
])
def test_bad_settings_fail_before_any_work(wrapped, tmp_path, kwargs, message):
    splits, model = wrapped
    with pytest.raises(ValueError, match=message):
        hashguard.evaluate_robustness(model, splits, out=tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()


def test_the_standard_set_is_the_documented_one():
    assert ATTACK_SETS["standard"] == {"untargeted": ["pga", "mainstay", "sdha"], "targeted": ["pga", "mainstay"]}
    doc = __import__("hashguard.robustness", fromlist=["x"]).__doc__
    assert "SDHA (T = 1500" in doc and "targeted PgA (T = 100) and mainstay" in doc
