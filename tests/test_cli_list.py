"""``hashguard list`` and the torch-free start of ``--help`` / ``list`` (issue 16).

The names, modes and defaults that ``list`` prints come from the generated table
``hashguard._catalog_data``; these tests compare it with the registries themselves, so it cannot
drift from the code (regenerate it with ``python -m hashguard._catalog --write``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hashguard import _catalog
from hashguard._catalog_data import CATALOG
from hashguard.cli import main


def test_the_catalog_is_what_the_registries_say():
    built = _catalog.build()
    for kind in _catalog.KINDS:
        assert built[kind] == CATALOG[kind], (
            f"hashguard/_catalog_data.py is out of date for {kind}; run python -m hashguard._catalog --write")
    assert _catalog.render(built) == _catalog.DATA_FILE.read_text()


def _listed(capsys, kind):
    assert main(["list", kind, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_attacks_json_has_every_registered_attack_with_its_modes(capsys):
    from hashguard.attacks import list_attacks
    from hashguard.attacks.registry import ATTACKS
    from hashguard.attacks.schema import attack_schema

    listed = {e["name"]: e for e in _listed(capsys, "attacks")}
    assert sorted(listed) == list_attacks()
    for name, entry in listed.items():
        cls = ATTACKS.get(name)
        modes = [m for m, ok in (("untargeted", cls.supports_untargeted), ("targeted", cls.supports_targeted)) if ok]
        assert entry["modes"] == modes, name
        assert entry["description"], name
        schema = attack_schema(name)
        for key in ("eps", "steps"):  # the paper defaults are the constructor's
            assert entry["defaults"][key] == schema[key].default, (name, key)
    assert set(list_attacks(targeted=True)) == {n for n, e in listed.items() if "targeted" in e["modes"]}


@pytest.mark.parametrize("kind, registry", [
    ("defenses", "hashguard.defenses:list_defenses"), ("datasets", "hashguard.data:list_datasets"),
    ("backbones", "hashguard.models:list_backbones"), ("objectives", "hashguard.hashing:list_hashing"),
    ("presets", "hashguard.bench:list_presets"),
])
def test_list_json_names_every_registered_entry(capsys, kind, registry):
    import importlib

    module, function = registry.split(":")
    expected = getattr(importlib.import_module(module), function)()
    listed = _listed(capsys, kind)
    assert sorted(e["name"] for e in listed) == sorted(expected)
    assert all(e["description"] for e in listed)


def test_list_defenses_and_presets_show_the_defaults_and_plan(capsys):
    from hashguard.bench.plan import plan
    from hashguard.bench.presets import quick
    from hashguard.bench.status import count_runs
    from hashguard.defenses.schema import defense_schema

    for entry in _listed(capsys, "defenses"):
        assert entry["defaults"]["epochs"] == defense_schema(entry["name"])["epochs"].default
    presets = {e["name"]: e for e in _listed(capsys, "presets")}
    assert presets["quick"]["runs_by_kind"] == count_runs(plan(quick()))
    assert presets["quick"]["runs"] == 47


def test_list_protocols_lists_the_default_first_then_each_papers(capsys):
    from hashguard.bench.protocol import PROTOCOL_FORMAT, SUCCESS_DEFINITION

    protocol, *papers = _listed(capsys, "protocols")
    assert [p["name"] for p in papers] == ["pga", "saat", "sdha", "prosgan", "dhta"]
    assert all(p["provenance"]["topk"] and p["format"] == PROTOCOL_FORMAT for p in papers)
    assert protocol["name"] == "default" and protocol["format"] == PROTOCOL_FORMAT
    assert protocol["success"] == SUCCESS_DEFINITION and protocol["queries"] == 500
    assert protocol["eps"] == pytest.approx(8 / 255)


@pytest.mark.parametrize("kind", _catalog.KINDS)
def test_list_prints_a_table_naming_every_entry(capsys, kind):
    assert main(["list", kind]) == 0
    out = capsys.readouterr().out
    for entry in CATALOG[kind]:
        assert entry["name"] in out
    if kind == "attacks":
        pga = next(line for line in out.splitlines() if line.startswith("pga "))
        assert "untargeted,targeted" in pga and "8/255" in pga and "100" in pga and "margin=-0.8" in pga


def test_list_of_an_unknown_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["list", "attack"])
    assert stop.value.code == 2
    assert "attacks" in capsys.readouterr().err


# ------------------------------------------------------------------------------ no torch at start-up
NO_TORCH = """
import sys
from hashguard.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit as stop:
        assert stop.code in (0, None), (argv, stop.code)
heavy = sorted(m for m in ("torch", "torchvision", "numpy", "numba", "matplotlib") if m in sys.modules)
assert not heavy, heavy
"""


def test_help_and_list_never_import_torch():
    commands = ["train", "evaluate", "attack", "defend", "bench", "report", "status", "list", "datasets"]
    argvs = [["--help"]] + [[c, "--help"] for c in commands] + [["list", k] for k in _catalog.KINDS]
    argvs += [["list", "attacks", "--json"], ["datasets"]]
    result = subprocess.run([sys.executable, "-c", NO_TORCH.format(argvs=argvs)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_imports_no_torch_under_importtime():
    """The same, seen by ``python -X importtime -m hashguard --help`` (what the issue measures)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "hashguard", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "hashguard" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "hashguard.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("torch", "torchvision", "numpy")}
