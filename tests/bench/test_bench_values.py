"""Values in a grid are checked by type and range when the grid is read, before any run (issue 12).

Each case below was accepted (or failed with a TypeError after finished runs) before the grid
reader checked values; now each is refused up front with a message naming the parameter.
"""

from __future__ import annotations

import pytest

from hashguard.bench import BenchSpec, load_spec_file, run_bench
from hashguard.bench import runner as runner_module
from hashguard.errors import InputError

BASE = """
datasets = ["synthetic"]
queries = 4
[train]
epochs = 1
[attacks]
untargeted = ["pga"]
"""

DEFENDED = BASE + """[defenses]
methods = ["saat"]
epochs = 1
untargeted = ["pga"]
"""

# (grid text, what the message must name)
BAD_GRIDS = {
    "saat-lam-text": (DEFENDED + 'params = { saat = { lam = "abc" } }\n', ['saat.lam', '"abc"', "lam = 1.0"]),
    "defense-optimizer-nadam": (DEFENDED + 'params = { saat = { optimizer = "nadam" } }\n',
                                ["saat.optimizer", "nadam", "sgd, adam"]),
    "defense-lr-text": (DEFENDED + 'params = { saat = { lr = "fast" } }\n', ["saat.lr", "fast"]),
    "defense-epochs-text": (DEFENDED + 'params = { saat = { steps = "5" } }\n', ["saat.steps", "integer"]),
    "defense-eps-pixels": (DEFENDED + "params = { saat = { eps = 8 } }\n", ["saat.eps", "8/255"]),
    "defense-random-start-text": (DEFENDED + 'params = { saat = { random_start = "no" } }\n',
                                  ["saat.random_start", "true or false"]),
    "attack-optimizer-nadam": (BASE.replace('["pga"]', '["hag"]') + 'params = { hag = { optimizer = "nadam" } }\n',
                               ["hag.optimizer", "nadam", "sign, sgd, adam"]),
    "attack-lr-text": (BASE + 'params = { pga = { lr = "fast" } }\n', ["pga.lr", "fast"]),
    "attack-margin-range": (BASE + "params = { pga = { margin = 0.5 } }\n", ["pga.margin", "(-1, 0)"]),
    "attack-random-start-text": (BASE + 'params = { pga = { random_start = "no" } }\n', ["pga.random_start"]),
    "attack-nested-prototype": (BASE.replace('untargeted = ["pga"]', 'targeted = ["tha"]')
                                + 'params = { tha = { prototype = { epochs = "5" } } }\n', ["tha.prototype.epochs"]),
    "attack-nested-gan": (BASE.replace('untargeted = ["pga"]', 'targeted = ["prosgan"]')
                          + 'params = { prosgan = { gan = { lr = "fast" } } }\n', ["prosgan.gan.lr"]),
    "train-epochs-text": (BASE.replace("epochs = 1", 'epochs = "5"'), ["train.epochs", '"5"']),
    "train-lr-text": (BASE.replace("epochs = 1", 'epochs = 1\nlr = "fast"'), ["train.lr", "fast"]),
    "train-calibrate-text": (BASE.replace("epochs = 1", 'epochs = 1\ncalibrate = "no"'), ["train.calibrate"]),
    "pretrained-text": ('pretrained = "no"\n' + BASE, ["pretrained", "true or false"]),
    "bits-huge": ("bits = [100000000]\n" + BASE, ["bits", "4096", "100000000"]),
    "bits-empty": ("bits = []\n" + BASE, ["bits is empty"]),
    "datasets-empty": (BASE.replace('datasets = ["synthetic"]', "datasets = []"), ["no model"]),
    "eps-pixels": ('eps = "300/255"\n' + BASE, ["eps", "8/255"]),
}


@pytest.mark.parametrize("grid, words", list(BAD_GRIDS.values()), ids=list(BAD_GRIDS))
def test_bad_values_in_a_grid_file_are_refused_when_it_is_read(tmp_path, grid, words):
    path = tmp_path / "grid.toml"
    path.write_text(grid)
    with pytest.raises(ValueError) as err:
        load_spec_file(path)
    message = str(err.value)
    for word in words:
        assert word in message, (word, message)


@pytest.fixture
def no_runs(monkeypatch):
    """A spy in place of the grid loop: records every call (nothing may reach it)."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a run started although the grid was bad")

    monkeypatch.setattr(runner_module, "run_grid", spy)
    return calls


@pytest.mark.parametrize("section, key, params, words", [
    ("defenses", "saat", {"lam": "abc"}, ["saat.lam", '"abc"']),
    ("defenses", "saat", {"optimizer": "nadam"}, ["saat.optimizer"]),
    ("attacks", "pga", {"lr": "fast"}, ["pga.lr"]),
    ("attacks", "pga", {"random_start": "yes"}, ["pga.random_start"]),
])
def test_a_bad_value_set_in_python_stops_run_bench_before_any_run(tmp_path, no_runs, section, key, params, words):
    spec = BenchSpec(datasets=["synthetic"], train={"epochs": 1}, queries=4)
    spec.attacks.untargeted = ["pga"]
    if section == "defenses":
        spec.defenses.methods, spec.defenses.untargeted = ["saat"], ["pga"]
        spec.defenses.params = {key: params}
    else:
        spec.attacks.params = {key: params}
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        run_bench(spec, out, progress=False, report=False)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert no_runs == []
    assert not list(out.glob("records/*.json"))


def test_pretrained_must_be_a_real_boolean_in_python_too(tmp_path, no_runs):
    spec = BenchSpec(datasets=["synthetic"], pretrained="no")
    with pytest.raises(InputError, match="pretrained must be true or false"):
        run_bench(spec, tmp_path / "out", progress=False, report=False)
    assert no_runs == []


@pytest.mark.parametrize("data", [
    {"defenses": {"methods": ["saat"], "untargeted": ["pga"], "params": {"saat": {"steps": 3.0, "lam": 2}}}},
    {"attacks": {"untargeted": ["pga"], "params": {"pga": {"random_start": False, "margin": -0.5}}}},
    {"train": {"epochs": 2.0, "calibrate": False, "lr": 1}},
    {"pretrained": True, "bits": [12, 4096]},
])
def test_good_values_are_still_accepted(data):
    BenchSpec.from_dict({"datasets": ["synthetic"], **data})


def test_the_grid_keeps_the_values_as_written(tmp_path):
    """Checking does not rewrite a grid's params (records are keyed by them: a resumed grid must
    find the records it wrote before)."""
    spec = BenchSpec.from_dict({"datasets": ["synthetic"], "defenses": {
        "methods": ["saat"], "untargeted": ["pga"], "params": {"saat": {"steps": 3.0}}}})
    assert spec.defenses.params == {"saat": {"steps": 3.0}}
