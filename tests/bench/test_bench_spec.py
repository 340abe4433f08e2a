"""Grids: presets, grid files (TOML / YAML / JSON), and bad input refused before any work."""

from __future__ import annotations

import json
import textwrap

import pytest

from hashguard.attacks import list_attacks
from hashguard.bench import BenchSpec, get_preset, list_presets, load_spec_file, run_bench
from hashguard.bench.plan import ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRAIN, TRANSFER, plan
from hashguard.bench.presets import QUICK_STEPS
from hashguard.bench.protocols import get_protocol

GRID = """
name = "two-models"
datasets = ["synthetic"]
objectives = ["dpsh", "dph"]
bits = [16]
queries = 20
eps = "8/255"
[train]
epochs = 2
[attacks]
untargeted = ["pga", "hag"]
targeted = ["dhta"]
steps = { pga = 5, hag = 7 }
[defenses]
methods = ["saat"]
epochs = 1
untargeted = ["pga"]
[transfer]
targeted = ["mainstay"]
"""


def test_presets_are_listed_and_unknown_names_are_refused():
    assert list_presets() == ["quick", "sdha-quick", "prosgan-quick", "paper", "paper-objectives", "paper-prosgan",
                              "paper-cifar10", "paper-transfer", "injection-quick"]
    with pytest.raises(ValueError, match=r"unknown preset 'fast'.*quick, sdha-quick, prosgan-quick, paper"):
        get_preset("fast")


def test_quick_preset_covers_every_attack_with_reduced_counts():
    spec = get_preset("quick")
    assert (spec.datasets, spec.backbones, spec.objectives, spec.bits, spec.queries) == (
        ["mnist-mosaic"], ["cnn"], ["dpsh"], [32], 500)
    assert sorted(spec.attacks.untargeted) == list_attacks(targeted=False)  # every attack, papers' row order
    assert sorted(spec.attacks.targeted) == list_attacks(targeted=True)
    assert spec.attacks.untargeted[:3] == ["hag", "sdha", "pga"]
    assert spec.defenses.methods == ["saat", "atrdh"]
    assert spec.defenses.untargeted == ["pga", "mainstay", "hag", "sdha"]
    assert spec.defenses.targeted == ["mainstay", "tha", "dhta"]
    for method in ("hag", "sdha", "p2p", "dhta", "pga", "mainstay", "tha", "ifgsm", "nag", "pga-dagger"):
        assert spec.attacks.steps[method] == QUICK_STEPS  # one small budget for every iterative attack
    assert "fgsm" not in spec.attacks.steps and "prosgan" not in spec.attacks.steps  # fixed: 1 step / 1 pass
    # re-attacks at the table's counts, so the defense table's "none" row is the table's own runs
    runs = plan(spec)
    table = {r.key for r in runs if r.role == ATTACK}
    none_row = [r for r in runs if r.role == REATTACK and r.defense == "none"]
    assert none_row and all(r.key in table for r in none_row)


def test_prosgan_quick_preset_is_the_quick_model_under_prosgans_protocol_and_unbounded():
    quick, spec = get_preset("quick"), get_preset("prosgan-quick")
    assert (spec.datasets, spec.backbones, spec.objectives, spec.bits, spec.train) == (
        quick.datasets, quick.backbones, quick.objectives, quick.bits, quick.train)  # the same model
    assert spec.protocol == "prosgan" and spec.attacks.targeted == ["p2p", "dhta", "prosgan"]
    assert not spec.attacks.untargeted and spec.examples == ["prosgan"]
    assert "bound" not in spec.attacks.params["prosgan"]  # the protocol's: the paper's unbounded generator
    assert get_protocol("prosgan").attack_params["prosgan"] == {"bound": "none"}
    # the same small generator as quick (which runs it inside the eps-ball), trained 4 x 20 batches
    gan, quick_gan = spec.attacks.params["prosgan"]["gan"], quick.attacks.params["prosgan"]["gan"]
    assert {k: v for k, v in gan.items() if k not in ("epochs", "batches_per_epoch")} == {
        k: v for k, v in quick_gan.items() if k not in ("epochs", "batches_per_epoch")}
    assert (gan["epochs"], gan["batches_per_epoch"]) == (4, 20)
    assert sum(r.role == ATTACK for r in plan(spec)) == 3


def test_paper_preset_is_the_papers_grid():
    spec = get_preset("paper")
    assert spec.datasets == ["flickr25k", "nus-wide", "ms-coco"]
    assert spec.backbones == ["alexnet", "vgg11"] and spec.bits == [16, 32, 48, 64]  # SAAT's four lengths
    assert spec.objectives == ["dph", "dpsh", "hashnet", "csq"]
    assert spec.n_models == 96 and spec.queries == 0 and spec.pretrained
    assert spec.attacks.steps == {}  # paper defaults
    assert sum(r.role == TRAIN for r in plan(spec)) == 96


def test_paper_preset_needs_the_data_dir_before_any_work(tmp_path):
    out = tmp_path / "paper"
    with pytest.raises(ValueError, match="--data-dir"):
        run_bench(get_preset("paper"), out, data_dir=None, progress=False)
    assert not out.exists()


def test_toml_grid_file_builds_the_spec_and_plan(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    spec = load_spec_file(path)
    assert spec.name == "two-models" and spec.objectives == ["dpsh", "dph"] and spec.eps == pytest.approx(8 / 255)
    runs = plan(spec)
    roles = [r.role for r in runs]
    assert roles.count(TRAIN) == 2 and roles.count(DEFENSE) == 2 and roles.count(CONVERGENCE) == 0
    assert roles.count(ATTACK) == 2 * 3
    assert roles.count(TRANSFER) == 4  # 2 x 2 ordered pairs, diagonal white-box
    attack = next(r for r in runs if r.role == ATTACK and r.config["method"] == "hag")
    assert attack.config["steps"] == 7 and attack.config["queries"] == 20
    train_keys = {r.key for r in runs if r.role == TRAIN}
    assert all(r.config["model"] in train_keys for r in runs if r.role == ATTACK)  # a record names its model
    # training settings are part of the model's identity, so of every attack record's key
    other = load_spec_file(path)
    other.train = {"epochs": 3}
    assert {r.key for r in plan(other) if r.role == ATTACK}.isdisjoint({r.key for r in runs if r.role == ATTACK})


def test_json_grid_and_all_shorthand(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"datasets": ["synthetic"], "attacks": {"untargeted": "all"}}))
    spec = load_spec_file(path)
    assert spec.name == "g" and spec.attacks.untargeted == list_attacks(targeted=False)


def test_yaml_grid(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent("""
        datasets: [synthetic]
        attacks:
          untargeted: [pga]
          steps: {pga: 3}
    """))
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="pip install pyyaml"):
            load_spec_file(path)
        return
    spec = load_spec_file(path)
    assert spec.attacks.untargeted == ["pga"] and spec.attacks.steps == {"pga": 3}


@pytest.mark.parametrize(
    "change, match",
    [
        ('untargeted = ["pga", "hag"]', r"unknown attack 'pgd'.*valid choices"),
        ('datasets = ["synthetic"]', r"unknown dataset 'imagenet'.*valid choices"),
        ('objectives = ["dpsh", "dph"]', r"unknown hashing objective 'dsh'"),
        ('methods = ["saat"]', r"unknown defense 'trades'"),
        ('targeted = ["dhta"]', r"attack 'hag' in \[attacks\] targeted has no targeted mode"),
        ("steps = { pga = 5, hag = 7 }", r"\[attacks\] steps sets 'sdha', which is not in the lists"),
        ("epochs = 2", r"unknown setting\(s\) 'epoch' in \[train\]"),
        ('eps = "8/255"', r"eps must be"),
        ("bits = [16]", r"bits must be positive integers"),
        ("queries = 20", r"queries .* must be an integer >= 0"),
        ('name = "two-models"', r"unknown setting\(s\) 'attack'"),
    ],
)
def test_bad_grid_files_are_refused_with_the_problem_named(tmp_path, change, match):
    replacement = {
        'untargeted = ["pga", "hag"]': 'untargeted = ["pgd", "hag"]',
        'datasets = ["synthetic"]': 'datasets = ["imagenet"]',
        'objectives = ["dpsh", "dph"]': 'objectives = ["dsh"]',
        'methods = ["saat"]': 'methods = ["trades"]',
        'targeted = ["dhta"]': 'targeted = ["hag"]',
        "steps = { pga = 5, hag = 7 }": "steps = { pga = 5, hag = 7, sdha = 3 }",
        "epochs = 2": "epoch = 2",
        'eps = "8/255"': 'eps = "eight"',
        "bits = [16]": "bits = [0]",
        "queries = 20": "queries = -1",
        'name = "two-models"': 'name = "x"\nattack = ["pga"]',
    }[change]
    path = tmp_path / "bad.toml"
    path.write_text(GRID.replace(change, replacement, 1))
    with pytest.raises(ValueError, match=match):
        load_spec_file(path)


def test_grid_file_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_spec_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("datasets = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec_file(bad)
    other = tmp_path / "grid.ini"
    other.write_text("")
    with pytest.raises(ValueError, match=r"\.toml, \.yaml"):
        load_spec_file(other)


def test_transfer_needs_two_models():
    with pytest.raises(ValueError, match="at least two models"):
        BenchSpec.from_dict({"datasets": ["synthetic"], "transfer": {"targeted": ["nag"]}})


def test_bad_grid_in_python_fails_before_the_output_directory_is_made(tmp_path):
    spec = BenchSpec(datasets=["synthetic"])
    spec.attacks.untargeted = ["nope"]
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        run_bench(spec, out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    "data, match",
    [
        ({"attacks": {"untargeted": ["pga"], "params": {"pga": {"foo": 1}}}}, r"attack 'pga' has no parameter 'foo'"),
        ({"attacks": {"untargeted": ["pga"], "params": {"pga": {"eps": 0.5}}}}, r"set 'eps', which the grid sets itself"),
        ({"attacks": {"targeted": ["fgsm"], "params": {"fgsm": {"targeted": False}}}}, r"set 'targeted'"),
        ({"attacks": {"targeted": ["prosgan"], "steps": {"prosgan": 5}}}, r"iterations for 'prosgan'"),
        ({"attacks": {"targeted": ["prosgan"]}, "convergence": {"targeted": ["prosgan"]}}, r"\[convergence\] sets iterations"),
        ({"defenses": {"methods": ["saat"], "untargeted": ["pga"], "params": {"saat": {"foo": 1}}}},
         r"defense 'saat' has no parameter 'foo'"),
        ({"defenses": {"methods": ["saat"], "untargeted": ["pga"], "params": {"saat": {"epochs": 3}}}},
         r"set 'epochs', which the grid sets itself"),
        ({"defenses": {"methods": ["saat"]}}, r"re-attacks them with nothing"),
        ({"bits": [8, 8]}, r"bits lists a value twice"),
        ({"datasets": ["synthetic", "mnist-mosaic"], "transfer": {"targeted": ["nag"]}}, r"two models on one dataset"),
    ],
)
def test_settings_the_runner_would_reject_later_are_refused_up_front(data, match):
    with pytest.raises(ValueError, match=match):
        BenchSpec.from_dict({"datasets": ["synthetic"], **data})


def test_examples_all_and_transfer_steps_default_to_the_tables():
    spec = BenchSpec.from_dict({"datasets": ["synthetic"], "objectives": ["dpsh", "dph"], "examples": "all",
                                "attacks": {"targeted": ["dhta"], "steps": {"dhta": 3}}, "transfer": {"targeted": ["dhta"]}})
    assert spec.examples == sorted(list_attacks())
    runs = plan(spec)
    transfer = [r for r in runs if r.role == TRANSFER]
    assert transfer and all(r.config["steps"] == 3 for r in transfer)
    table = {r.key for r in runs if r.role == ATTACK}
    assert sum(r.key in table for r in transfer) == 2  # the white-box diagonal is the table's own run
