"""The bench's ``[injection]`` section (NAG's database injection, issue 13): the grid file, the plan
(surrogates trained once, injection runs after the models they need), a tiny grid run end to end
with resume, the report's section, and the victim's checkpoint and records left untouched."""

from __future__ import annotations

import hashlib
import json

import pytest

from hashguard.bench import get_preset, load_spec_file, run_bench
from hashguard.bench.injection import claim_ratios, injection_bars, summarise
from hashguard.bench.plan import INJECTION, SURROGATE, TRAIN, TRANSFER, plan
from hashguard.bench.report import build_report
from hashguard.bench.spec import BenchSpec
from hashguard.bench.status import plan_status
from hashguard.errors import InputError

EPS = 32 / 255  # as tests/test_injection.py: a budget the tiny model's 16x16 images need
BASE = {"name": "inj", "datasets": ["synthetic"], "objectives": ["dpsh"], "bits": [16], "queries": 20, "eps": "32/255",
        "train": {"epochs": 3}}
INJ = {"methods": ["nag", "ifgsm"], "steps": {"nag": 8, "ifgsm": 8},
       "params": {"nag": {"step": "4/255"}, "ifgsm": {"step": "4/255"}},
       "surrogates": [{"backbone": "cnn", "seed": 1}], "targets": 2, "per_target": 2}


def _spec(**injection) -> BenchSpec:
    return BenchSpec.from_dict({**BASE, "injection": {**INJ, **injection}})


# --- the grid file -----------------------------------------------------------------------------------


@pytest.mark.parametrize("injection, message", [
    ({"radius_max": 3}, "unknown setting.*radius_max.*injection"),
    ({"methods": ["hag"]}, "has no targeted mode"),
    ({"methods": ["nope"]}, "unknown attack 'nope'"),
    ({"steps": {"dhta": 3}}, "steps sets 'dhta', which is not in the lists"),
    ({"params": {"nag": {"eps": 0.1}}}, "which the grid sets itself"),
    ({"params": {"nag": {"step": -1}}}, r"\[injection\]"),
    ({"surrogates": [{"seed": 1}]}, "surrogates #1 needs backbone"),
    ({"surrogates": [{"backbone": "lenet"}]}, "unknown backbone 'lenet'"),
    ({"surrogates": [{"backbone": "cnn", "depth": 3}]}, "unknown setting.*depth.*surrogates #1"),
    ({"surrogates": [{"backbone": "cnn", "seed": 1, "train": {"epochs": 0}}]}, "surrogates #1 train"),
    ({"surrogates": [{"backbone": "cnn", "seed": 1, "train": {"lr_max": 1}}]}, "unknown setting.*lr_max"),
    ({"surrogates": [{"backbone": "cnn"}]}, "is the victim .* itself"),
    ({"surrogates": [], "white_box": False}, "nothing to run"),
    ({"sources": ["web"]}, "unknown attacker image source 'web'"),
    ({"sources": []}, "sources must be a non-empty list"),
    ({"victims": {"bits": [48]}}, "victims.bits must be a non-empty list of the grid's bits"),
    ({"victims": {"size": [1]}}, "unknown setting.*size.*victims"),
    ({"per_target": 0}, "per_target must be an integer >= 1"),
    ({"radius": -1}, "radius must be an integer >= 0"),
    ({"noise_proxy": -0.1}, "noise_proxy must be a number >= 0"),
    ({"methods": [], "surrogates": [{"backbone": "cnn", "seed": 1}]}, "no methods"),
])
def test_bad_injection_settings_are_refused_with_the_fix(injection, message):
    with pytest.raises(ValueError, match=message):
        _spec(**injection)


def test_injection_needs_trained_models():
    with pytest.raises(ValueError, match="trains none"):
        BenchSpec(datasets=[], models=[{"name": "a", "dataset": "synthetic", "in_memory": True}],
                  injection=BenchSpec.from_dict({**BASE, "injection": INJ}).injection).validate()


def test_surrogate_train_errors_are_input_errors():
    with pytest.raises(InputError, match="epochs"):
        _spec(surrogates=[{"backbone": "cnn", "seed": 1, "train": {"epochs": 0}}])


def test_toml_section_reads_like_the_others(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('datasets = ["synthetic"]\nbits = [16]\n[injection]\nmethods = ["nag"]\n'
                    'surrogates = [{ backbone = "resnet18", seed = 1, train = { epochs = 1 } }]\n'
                    'sources = ["train", "noise"]\nmine = 2\nnoise_proxy = 0.05\n')
    spec = load_spec_file(path)
    assert spec.injection.surrogates == [{"backbone": "resnet18", "seed": 1, "train": {"epochs": 1}}]
    assert spec.injection.sources == ["train", "noise"] and spec.injection.mine == 2


# --- the plan --------------------------------------------------------------------------------------


def test_plan_trains_each_surrogate_once_before_the_injection_runs_that_need_it():
    # two victims (DPSH, DPH) and one surrogate of a fixed objective: trained once, serving both
    spec = BenchSpec.from_dict({**BASE, "objectives": ["dpsh", "dph"],
                                "injection": {**INJ, "surrogates": [{"backbone": "resnet18", "seed": 1,
                                                                           "objective": "dpsh"}]}})
    runs = plan(spec)
    surrogates = [r for r in runs if r.role == SURROGATE]
    assert len(surrogates) == 1 and surrogates[0].config["backbone"] == "resnet18" and surrogates[0].config["seed"] == 1
    assert surrogates[0].config["kind"] == TRAIN and surrogates[0].config["train"] == {"epochs": 3}
    trains = {r.key: i for i, r in enumerate(runs) if r.role in (TRAIN, SURROGATE)}
    injections = [(i, r) for i, r in enumerate(runs) if r.role == INJECTION]
    assert len(injections) == 2 * 2 * 2  # victims x (white-box, black-box) x methods
    for i, r in injections:
        assert trains[r.config["model"]] < i
        assert r.config["surrogate"] is None or trains[r.config["surrogate"]] < i
    black = [r for _, r in injections if r.config["surrogate"]]
    assert {r.config["surrogate"] for r in black} == {surrogates[0].key} and len(black) == 4
    assert {r.config["hash_method"] for r in black} == {"dpsh", "dph"}


def test_a_surrogate_equal_to_a_grid_model_shares_its_training():
    # the DPH grid model is the DPSH victim's surrogate (another objective): no second training
    spec = BenchSpec.from_dict({**BASE, "objectives": ["dpsh", "dph"],
                                "injection": {**INJ, "surrogates": [{"backbone": "cnn", "objective": "dph"}],
                                              "victims": {"objectives": ["dpsh"]}}})
    runs = plan(spec)
    assert not [r for r in runs if r.role == SURROGATE]
    dph = next(r for r in runs if r.role == TRAIN and r.model["hash_method"] == "dph")
    assert {r.config["surrogate"] for r in runs if r.role == INJECTION} == {None, dph.key}


def test_sources_victims_and_white_box_shape_the_runs():
    spec = BenchSpec.from_dict({**BASE, "bits": [16, 32],
                                "injection": {**INJ, "sources": ["train", "noise"], "white_box": False,
                                              "victims": {"bits": [32]}}})
    runs = [r for r in plan(spec) if r.role == INJECTION]
    assert len(runs) == 2 * 2  # methods x sources, black-box only, 32 bits only
    assert {r.config["bits"] for r in runs} == {32} and all(r.config["surrogate"] for r in runs)
    assert {r.config["source"] for r in runs} == {"train", "noise"}


def test_presets_hold_the_injection_and_transfer_experiments():
    quick = get_preset("injection-quick")
    assert (quick.backbones, quick.objectives, quick.bits) == (["cnn"], ["dpsh"], [32])
    assert quick.train == get_preset("quick").train
    inj = quick.injection
    assert inj.methods == ["nag", "ifgsm"] and inj.steps == {"nag": 8, "ifgsm": 8}
    assert inj.params == {"nag": {"step": 2 / 255}, "ifgsm": {"step": 2 / 255}}
    assert inj.surrogates[0]["backbone"] == "resnet18" and inj.surrogates[0]["seed"] == 1 and inj.white_box
    roles = [r.role for r in plan(quick)]
    assert roles.count(SURROGATE) == 1 and roles.count(INJECTION) == 2 * 2 * 2  # threat x method x source
    paper = get_preset("paper")
    assert paper.injection.methods == ["nag", "ifgsm"] and paper.injection.surrogates[0]["backbone"] == "resnet18"
    paper_runs = plan(paper)
    # DPSH-48 victims on 3 datasets x 2 backbones; one ResNet18 surrogate per dataset serves both backbones
    assert sum(r.role == SURROGATE for r in paper_runs) == 3
    assert sum(r.role == INJECTION for r in paper_runs) == 6 * 2 * 2 * 2
    transfer = get_preset("paper-transfer")  # ProS-GAN Table 3
    assert (transfer.datasets, transfer.backbones, transfer.bits) == (["nus-wide"], ["alexnet", "vgg11", "resnet18"], [12, 32])
    assert transfer.protocol == "prosgan" and transfer.transfer.targeted == ["dhta", "prosgan"]
    assert sum(r.role == TRANSFER for r in plan(transfer)) == 6 * 6 * 2


# --- a tiny grid, end to end -----------------------------------------------------------------------


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def injected(tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("inj") / "out"
    spec = _spec()
    run_bench(spec, out, progress=False, report=False, select=lambda r: False)  # the models only
    models = {p.name: _sha(p) for p in (out / "models").glob("*.pt")}
    records = {p.name: _sha(p) for p in (out / "records").glob("*.json")}
    result = run_bench(spec, out, progress=False)
    return out, spec, models, records, result


def test_records_hold_the_metrics_and_the_baseline(injected):
    out, spec, _, _, _ = injected
    runs = [r for r in plan(spec) if r.role == INJECTION]
    assert len(runs) == 4
    for r in runs:
        rec = json.loads((out / "records" / f"{r.key}.json").read_text())
        m = rec["metrics"]
        assert m["threat"] == "injection" and m["method"] == r.config["method"]
        assert m["eps"] == pytest.approx(EPS) and m["radius"] == 5 and m["k"] == 10
        assert m["transfer"] == (r.config["surrogate"] is not None)
        assert len(m["targets"]) == 2 and m["n_poisoned"] == 4 and "poisoned_ids" not in m
        assert len(m["per_target_metrics"]) == 2 and all(p["n_poisoned"] == 2 for p in m["per_target_metrics"])
        for key in ("radius_success", "topk_success", "t_map", "clean_radius_success", "clean_topk_success", "clean_t_map"):
            assert 0.0 <= m[key] <= 1.0
        assert m["perceptibility"]["linf"] <= EPS + 1e-6
        assert rec["timings"]["injection_seconds"] > 0 and "machine" in rec["timings"]


def test_white_box_injection_reaches_the_target_queries(injected):
    out, spec, _, _, _ = injected
    white = [r for r in plan(spec) if r.role == INJECTION and r.config["surrogate"] is None]
    for r in white:
        m = json.loads((out / "records" / f"{r.key}.json").read_text())["metrics"]
        assert m["surrogate_radius_hit"] > 0 and m["radius_success"] >= m["clean_radius_success"]


def test_the_victims_checkpoint_and_records_are_untouched(injected):
    out, _, models, records, _ = injected
    assert models and {p.name: _sha(p) for p in (out / "models").glob("*.pt")} == models
    assert {name: _sha(out / "records" / name) for name in records} == records


def test_resume_skips_every_record_byte_for_byte(injected):
    out, spec, _, _, _ = injected
    before = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    again = run_bench(spec, out, progress=False, report=False)
    assert again["ran"] == []
    assert {p.name: p.read_bytes() for p in (out / "records").glob("*.json")} == before


def test_status_counts_surrogate_and_injection_runs(injected):
    out, spec, _, _, _ = injected
    kinds = plan_status(spec, out)["by_kind"]
    assert kinds[SURROGATE] == {"runs": 1, "done": 1, "pending": 0}
    assert kinds[INJECTION] == {"runs": 4, "done": 4, "pending": 0}


def test_report_has_the_injection_section(injected):
    out, _, _, _, result = injected
    text = (out / "report.md").read_text()
    assert "## Database injection (NAG's threat model)" in text
    assert "black-box from CNN seed 1 (DPSH-16)" in text or "black-box from cnn seed 1 (DPSH-16)" in text
    assert "radius-5 success (%)" in text and "white-box" in text
    assert "surrogate cnn seed 1 (DPSH-16): clean mAP" in text
    assert "NAG / I-FGSM black-box radius-5 success" in text
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "Database injection: NAG / I-FGSM black-box radius-5 success" in summary  # answered first too
    assert any("injection" in p.name for p in (out / "report_files").glob("*.png")) or "radius-5 success of the" in text
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    inj = [row for row in rows if row["role"] == INJECTION]
    assert len(inj) == 4 and all(row["metric"] == "radius_success" for row in inj)
    assert build_report(out) is not None


def test_claim_ratio_divides_nag_by_the_baseline():
    class Run:
        def __init__(self, method, value):
            self.config = {"method": method, "source": "train"}
            self.surrogate = {"backbone": "resnet18", "seed": 1, "hash_method": "dpsh", "bits": 16}
            self.value = value

    class Res:
        runs = [Run("nag", 0.6), Run("ifgsm", 0.3)]

        def runs_of(self, role, identity):
            return self.runs

        def record(self, run):
            return {"metrics": {"radius_success": run.value, "clean_radius_success": 0.05}}

    ((threat, source, ratio, nag, base, clean),) = claim_ratios(Res(), {})
    assert ratio == pytest.approx(2.0) and (nag, base, clean) == (0.6, 0.3, 0.05) and source == "train"
    assert threat.startswith("black-box from ResNet18 seed 1")


def test_summary_counts_the_poisoned_ids_and_the_figure_draws():
    record = {"poisoned_ids": [10, 11, 12], "seconds": 1.0, "radius_success": 0.5,
              "per_target_metrics": [{"target": 0, "poisoned_ids": [10, 11]}, {"target": 1, "poisoned_ids": [12]}]}
    out = summarise(record)
    assert out["n_poisoned"] == 3 and [p["n_poisoned"] for p in out["per_target_metrics"]] == [2, 1]
    assert "poisoned_ids" not in out and record["poisoned_ids"] == [10, 11, 12]  # the input is untouched
    fig = injection_bars({"white-box, train": {"NAG": 0.5, "unperturbed": 0.0}}, "t", "y")
    assert len(fig.axes[0].patches) == 2


@pytest.mark.slow
def test_injection_runs_on_a_dask_cluster_give_the_sequential_metrics(tmp_path, single_thread):
    """The Dask workers run the surrogate and injection runs through the same execute_run (issue 13);
    at one thread per run their metrics equal the sequential ones."""
    pytest.importorskip("distributed", reason="needs pip install 'hashguard[distributed]'")
    spec = _spec()
    seq = run_bench(spec, tmp_path / "seq", progress=False, report=False, threads_per_run=1)
    dask = run_bench(spec, tmp_path / "dask", progress=False, report=False, workers=2)
    assert set(dask["ran"]) == set(seq["ran"]) == {r.key for r in plan(spec)}

    def metrics(out):
        recs = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
        return {k: {m: v for m, v in r["metrics"].items() if "seconds" not in m} for k, r in recs.items()
                if r["config"]["kind"] == INJECTION}

    assert metrics(tmp_path / "dask") == metrics(tmp_path / "seq")


@pytest.mark.parametrize("name", ["paper-transfer", "injection-quick"])
def test_new_presets_dry_run_without_writing(name, tmp_path, capsys):
    from hashguard.cli import main

    out = tmp_path / name
    assert main(["bench", "--preset", name, "--data-dir", str(tmp_path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "dry run: nothing was run or written" in text and not out.exists()
    if name == "injection-quick":
        assert "surrogate" in text and "injection" in text
