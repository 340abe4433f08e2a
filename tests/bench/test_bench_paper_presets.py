"""The papers' other grids (issue 14 item 9): PgA Table 6 (five objectives, DSDH and DCH among them),
ProS-GAN Table 1 (12 / 24 / 32 / 48 bits) and PgA Table 7 (CIFAR-10), each under its paper's protocol,
and each validating with ``--dry-run`` before any data is read."""

from __future__ import annotations

import pytest

from hashguard.bench import get_preset
from hashguard.bench.plan import ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRAIN, TRANSFER, plan
from hashguard.bench.presets import PGA_TABLE_TARGETED, PGA_TABLE_UNTARGETED
from hashguard.cli import main

PGA_TABLE_ATTACKS = PGA_TABLE_UNTARGETED + PGA_TABLE_TARGETED


def _roles(spec):
    runs = plan(spec)
    return {role: sum(r.role == role for r in runs) for role in (TRAIN, ATTACK, DEFENSE, REATTACK, CONVERGENCE, TRANSFER)}


def test_pga_table6_has_the_five_objectives_on_nus_wide_vgg11_32_bits():
    spec = get_preset("paper-objectives")
    assert (spec.datasets, spec.backbones, spec.bits) == (["nus-wide"], ["vgg11"], [32])
    assert spec.objectives == ["dpsh", "hashnet", "dsdh", "dch", "csq"]  # Table 6's column order
    assert spec.protocol == "pga" and spec.topk == 5000 and spec.queries == 0 and spec.pretrained
    assert sorted(PGA_TABLE_ATTACKS) == sorted(["p2p", "dhta", "prosgan", "tha", "hag", "sdha", "pga"])  # its rows
    assert spec.defenses.methods == ["atrdh"]  # Table 6's right half
    assert spec.defenses.untargeted + spec.defenses.targeted == PGA_TABLE_ATTACKS
    # 5 models, 7 attacks each, one ATRDH model each re-attacked by the 7
    assert _roles(spec) == {TRAIN: 5, ATTACK: 35, DEFENSE: 5, REATTACK: 70, CONVERGENCE: 0, TRANSFER: 0}


def test_prosgan_table1_has_its_four_code_lengths_and_targeted_attacks():
    spec = get_preset("paper-prosgan")
    assert spec.datasets == ["flickr25k", "nus-wide", "ms-coco"]
    assert (spec.backbones, spec.objectives, spec.bits) == (["vgg11"], ["dpsh"], [12, 24, 32, 48])
    assert spec.protocol == "prosgan" and spec.topk == 0  # t-MAP on the whole database
    assert spec.attacks.untargeted == [] and spec.attacks.targeted == ["p2p", "dhta", "prosgan"]
    assert not spec.defenses.methods
    assert _roles(spec) == {TRAIN: 12, ATTACK: 36, DEFENSE: 0, REATTACK: 0, CONVERGENCE: 0, TRANSFER: 0}


def test_pga_table7_is_cifar10_dph():
    spec = get_preset("paper-cifar10")
    assert (spec.datasets, spec.backbones, spec.objectives, spec.bits) == (["cifar10"], ["alexnet"], ["dph"], [16, 32, 64])
    assert spec.protocol == "pga" and spec.topk == 5000
    assert spec.defenses.methods == ["atrdh"]
    assert _roles(spec) == {TRAIN: 3, ATTACK: 21, DEFENSE: 3, REATTACK: 42, CONVERGENCE: 0, TRANSFER: 0}


def test_every_objective_and_bit_length_of_the_issue_is_in_a_preset():
    """DSDH, DCH, CIFAR-10, 48 bits (SAAT) and 12 / 24 / 48 bits (ProS-GAN) each appear in some paper grid."""
    specs = [get_preset(n) for n in ("paper", "paper-objectives", "paper-prosgan", "paper-cifar10")]
    objectives = {o for s in specs for o in s.objectives}
    assert {"dph", "dpsh", "hashnet", "csq", "dsdh", "dch"} <= objectives
    assert {"cifar10", "flickr25k", "nus-wide", "ms-coco"} <= {d for s in specs for d in s.datasets}
    assert 48 in get_preset("paper").bits
    assert {12, 24, 48} <= set(get_preset("paper-prosgan").bits)


@pytest.mark.parametrize("name", ["paper-objectives", "paper-prosgan", "paper-cifar10"])
def test_dry_run_validates_without_the_datasets(name, tmp_path, capsys):
    out = tmp_path / name
    assert main(["bench", "--preset", name, "--data-dir", str(tmp_path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "dry run: nothing was run or written" in text and f"protocol {get_preset(name).protocol}" in text
    assert not out.exists()


# --- the published figures of these tables ---------------------------------------------------------


def _cell(**query):
    from hashguard.bench.published import matching

    base = {"dataset": "nus-wide", "backbone": "vgg11", "bits": 32, "defense": "none", "mode": "untargeted",
            "metric": "map", "eps": 8 / 255, "topk": 5000}
    return [(p["table"].split(":")[0], p["value"]) for p in matching(**{**base, **query})]


def test_pga_table6_published_cells_per_objective():
    assert _cell(objective="dsdh", attack="pga") == [("Table 6", 11.30)]
    assert _cell(objective="dch", attack="sdha", defense="atrdh") == [("Table 6", 46.28)]
    assert _cell(objective="csq", attack="clean", mode="clean") == [("Table 6", 80.08)]
    assert _cell(objective="dpsh", attack="hag", defense="atrdh") == [("Table 6", 47.17)]
    assert _cell(objective="dsdh", attack="pga", backbone="alexnet") == []  # Table 6 names VGG11
    assert _cell(objective="dsdh", attack="p2p", mode="targeted", metric="t_map") == []  # MAP rows of targeted attacks: not kept


def test_pga_table7_published_cells_on_cifar10():
    cifar = {"dataset": "cifar10", "objective": "dph", "backbone": "alexnet"}
    assert _cell(**cifar, bits=64, attack="pga") == [("Table 7", 0.48)]
    assert _cell(**cifar, bits=16, attack="clean", mode="clean", defense="atrdh") == [("Table 7", 60.98)]
    assert _cell(**cifar, bits=32, attack="hag", topk=None) == []  # another cut-off: no match


def test_every_objective_of_the_grids_has_its_paper_name():
    """Table 6's columns read DSDH, DCH, ... in the report, not the registry's lower case."""
    from hashguard.bench.names import OBJECTIVE_NAMES, display_name
    from hashguard.hashing import list_hashing

    assert set(list_hashing()) <= set(OBJECTIVE_NAMES)
    assert [display_name(o) for o in get_preset("paper-objectives").objectives] == ["DPSH", "HashNet", "DSDH", "DCH", "CSQ"]
