"""The ``[perturbation]`` set (SDHA Tables 2-4): its checks, its runs, the figures it derives
(against a slow reference) and its report section, on fabricated folders (no training)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hashguard.bench import BenchSpec
from hashguard.bench.perturbation import best_within, l2_to_goal, perturbation_rows, strongest
from hashguard.bench.plan import PERTURBATION, TRAIN, plan
from hashguard.bench.presets import get_preset
from hashguard.bench.report import _Results, build_report
from hashguard.bench.results import SPEC_FILE, open_store
from hashguard.bench.spec import PerturbationSet
from hashguard.errors import InputError


def _spec(**perturbation) -> BenchSpec:
    p = dict(methods=["sdha", "hag"], queries=20, map_goal=0.1, budgets=[0.5, 1.0],
             sweep={"sdha": {"weight": [5, 25, 100]}, "hag": {"eps": ["2/255", "8/255"]}})
    p.update(perturbation)
    return BenchSpec(name="fab", datasets=["nus-wide"], backbones=["alexnet"], objectives=["dph"], bits=[32],
                     queries=20, perturbation=PerturbationSet(**p)).validate(check_files=False)


# ---------------------------------------------------------------------------------- derived figures


def _slow(points, goal, budgets, targeted):
    """Reference: scan every point, keeping the running best by hand."""
    need = None
    for l2, v in points:
        if (v >= goal if targeted else v <= goal) and (need is None or l2 < need):
            need = l2
    within = {}
    for b in budgets:
        best = None
        for l2, v in points:
            if l2 <= b and (best is None or (v > best if targeted else v < best)):
                best = v
        within[b] = best
    return need, within


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_l2_to_goal_and_best_within_budget_match_a_slow_reference(targeted, seed):
    g = np.random.default_rng(seed)
    points = [(float(a), float(b)) for a, b in zip(g.random(9) * 3, g.random(9), strict=True)]
    goal, budgets = 0.4, [0.5, 1.5, 2.5]
    need, within = _slow(points, goal, budgets, targeted)
    assert l2_to_goal(points, goal, targeted) == need
    assert {b: best_within(points, b, targeted) for b in budgets} == within
    best = strongest(points, targeted)
    values = [v for _, v in points]
    assert best is not None and best[1] == (max(values) if targeted else min(values))


def test_unreached_goal_and_empty_budget_are_none():
    points = [(1.0, 0.5), (2.0, 0.3)]
    assert l2_to_goal(points, 0.1, targeted=False) is None
    assert best_within(points, 0.5, targeted=False) is None
    assert strongest([], targeted=False) is None


# ---------------------------------------------------------------------------------- spec and plan


def test_each_method_runs_once_per_swept_value_with_the_ap_stop():
    spec = _spec()
    runs = [r for r in plan(spec) if r.role == PERTURBATION]
    assert [(r.config["method"], r.extra["value"]) for r in runs] == [
        ("sdha", 5), ("sdha", 25), ("sdha", 100), ("hag", "2/255"), ("hag", "8/255")]
    assert len({r.key for r in runs}) == 5
    sdha, hag = runs[0].config, runs[3].config
    assert sdha["params"] == {"early_stop": "ap", "weight": 5} and "eps" not in sdha  # the grid's eps
    assert hag["eps"] == pytest.approx(2 / 255) and "eps" not in hag["params"]
    assert all(r.config["queries"] == 20 for r in runs)


def test_the_default_sweeps_are_sdha_weights_and_eps():
    p = PerturbationSet(methods=["sdha", "pga"])
    assert p.sweep_of("sdha") == ("weight", [5, 10, 25, 50, 100])  # alpha = 5/K .. 100/K (Sec. 5.1)
    assert p.sweep_of("pga")[0] == "eps"


@pytest.mark.parametrize("change, message", [
    ({"methods": ["nope"]}, "unknown attack"),
    ({"sweep": {"sdha": {"weight": [5], "sigma": [1.0]}}}, "exactly one parameter"),
    ({"sweep": {"sdha": {"weight": []}}}, "non-empty list"),
    ({"sweep": {"sdha": {"weight": [-1]}}}, "weight"),
    ({"sweep": {"hag": {"eps": [5]}}}, "eps"),
    ({"sweep": {"pga": {"eps": ["1/255"]}}}, "not in the lists"),
    ({"map_goal": 10}, "fraction"),
    ({"budgets": []}, "budgets"),
    ({"params": {"sdha": {"seed": 3}}}, "sets itself"),
])
def test_bad_perturbation_settings_are_refused_before_any_work(change, message):
    with pytest.raises((ValueError, InputError), match=message):
        _spec(**change)


def test_a_grid_file_table_builds_the_set():
    data = {"datasets": ["nus-wide"], "backbones": ["alexnet"], "objectives": ["dph"], "bits": [32],
            "perturbation": {"methods": ["pga"], "sweep": {"pga": {"eps": ["1/255", "4/255"]}}, "budgets": [1.0]}}
    spec = BenchSpec.from_dict(data)
    assert spec.perturbation.methods == ["pga"] and len([r for r in plan(spec) if r.role == PERTURBATION]) == 2
    with pytest.raises(ValueError, match="unknown setting"):
        BenchSpec.from_dict({**data, "perturbation": {"methods": ["pga"], "budget": [1.0]}})


def test_sdha_quick_preset_is_the_four_methods_under_the_sdha_protocol():
    spec = get_preset("sdha-quick")
    runs = plan(spec)
    assert spec.protocol == "sdha" and spec.eps == pytest.approx(0.039) and spec.queries == 100
    assert [r.role for r in runs].count(TRAIN) == 1
    methods = [r.config["method"] for r in runs if r.role == PERTURBATION]
    assert sorted(set(methods)) == ["hag", "ifgsm", "pga", "sdha"] and len(methods) == 20
    assert max(r.config.get("eps", 0) for r in runs) <= 0.039  # nothing outside SDHA's ball
    # the quick preset's model: the same training config, so the same record key
    assert runs[0].key == plan(get_preset("quick"))[0].key


# ---------------------------------------------------------------------------------- report


def _fabricate(root, spec, points):
    """spec.json and records; ``points[(method, value)] = (mean L2, mAP)``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / SPEC_FILE).write_text(json.dumps(spec.to_dict()))
    store = open_store(spec, root)
    for r in plan(spec):
        if r.role == TRAIN:
            store.put(r.config, {"clean_map": 0.7, "topk": 1000, "checkpoint": None},
                      {"train_seconds": 1.0, "wall_seconds": 1.0})
            continue
        key = (r.config["method"], r.extra["value"])
        if key not in points:
            continue
        l2, value = points[key]
        store.put(r.config, {"n_queries": 20, "method": r.config["method"], "targeted": False, "steps": 30,
                             "eps": 8 / 255, "topk": 1000, "clean_map": 0.7, "map": value, "theory_map": None,
                             "perceptibility": {"linf": 8 / 255, "l2": l2, "rmse": 0.01}, "seconds": 1.0,
                             "seconds_per_query": 0.05, "success_rate": 0.5, "bits_changed": 3.0,
                             "per_query": {"ap": [value] * 20, "success": [True] * 20, "clean_ap": [0.7] * 20}},
                  {"attack_seconds": 1.0, "wall_seconds": 1.0})
    return root


def test_report_section_reads_off_the_sweep(tmp_path):
    spec = _spec()
    points = {("sdha", 5): (0.3, 0.4), ("sdha", 25): (0.6, 0.08), ("sdha", 100): (0.9, 0.02),
              ("hag", "2/255"): (0.7, 0.3)}  # HAG's 8/255 run is missing
    root = _fabricate(tmp_path / "fab", spec, points)
    md = build_report(root).markdown()
    section = md.split("## Perturbation size against mAP (SDHA Tables 2-4)")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in section.splitlines() if re.match(r"\| (SDHA|HAG) ", line)}
    assert rows["SDHA"][:4] == ["weight", "0.600", "40.0", "2.0"]  # L2 to reach 10 %; best within 0.5 and 1.0
    assert rows["SDHA"][4] == "2.0 / 0.900"
    assert rows["HAG"][1].startswith("*not reached* (best 30.0% at 0.700)")
    assert rows["HAG"][2:4] == ["–", "30.0"]
    assert "![" in section  # the L2-against-mAP figure
    by = {r["method"]: r for r in perturbation_rows(_Results(root))}
    assert by["sdha"]["l2_to_goal"] == pytest.approx(0.6) and by["hag"]["l2_to_goal"] is None


def test_no_perturbation_set_no_section(tmp_path):
    spec = _spec(methods=[], sweep={})
    root = _fabricate(tmp_path / "none", spec, {})
    assert "Perturbation size" not in build_report(root).markdown()
