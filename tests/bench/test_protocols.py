"""Named evaluation protocols (bench/protocols.py): each paper's values, the target rule and the
anchor source they switch, the records that state them, and the refusals before any work."""

from __future__ import annotations

import json

import pytest
import torch

from hashguard.attacks import Knowledge
from hashguard.attacks.targets import draw_target_labels
from hashguard.bench.protocol import load_or_draw_protocol, protocol_path, run_attack
from hashguard.bench.protocols import PROTOCOLS, apply_to_spec, get_protocol, resolve
from hashguard.bench.spec import BenchSpec
from hashguard.cli import main
from hashguard.errors import InputError

# (topk, queries, target rule, anchor source, eps) of each protocol, as the papers state them
EXPECTED = {
    "default": ("dataset", 500, "zero-overlap", "train", 8 / 255),
    "pga": (5000, 500, "zero-overlap", "train", 8 / 255),
    "saat": (5000, 500, "zero-overlap", "database", 8 / 255),
    "sdha": (1000, 100, "zero-overlap", "train", 0.039),
    "prosgan": (None, 500, "any", "train", 8 / 255),
    "dhta": (1000, 100, "zero-overlap", "database", 8 / 255),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_protocol_fixes_its_papers_values_with_provenance(name):
    p = get_protocol(name)
    topk, queries, rule, anchors, eps = EXPECTED[name]
    assert (p.topk, p.queries, p.target_rule, p.anchor_source) == (topk, queries, rule, anchors)
    assert p.eps == pytest.approx(eps) and p.step == pytest.approx(1 / 255)
    assert set(p.provenance) == {"topk", "queries", "target_rule", "anchor_source", "eps", "step"}
    assert all(text.strip() for text in p.provenance.values())
    values = resolve(name, dataset="big", database_size=20000, query_size=2000, dataset_topk=777)
    assert values["protocol"] == name and values["target_rule"] == rule and values["anchor_source"] == anchors
    assert values["topk"] == (777 if topk == "dataset" else topk) and values["queries"] == queries
    assert values["eps"] == pytest.approx(eps)


def test_the_papers_values_cite_their_sections():
    assert "Sec. 4.1" in PROTOCOLS["pga"].provenance["topk"]
    assert "Sec. IV-A" in PROTOCOLS["saat"].provenance["topk"]
    assert "100 queries" in PROTOCOLS["sdha"].provenance["queries"]
    assert "all retrieved images" in PROTOCOLS["prosgan"].provenance["topk"]
    assert PROTOCOLS["pga"].stated("topk") and not PROTOCOLS["pga"].stated("queries")


def test_unknown_protocol_and_too_small_database_are_input_errors():
    with pytest.raises(InputError, match="unknown protocol 'papa'.*pga, saat, sdha, prosgan, dhta"):
        get_protocol("papa")
    with pytest.raises(InputError, match=r"mAP@5000 but the tiny database holds 3000 items"):
        resolve("pga", dataset="tiny", database_size=3000, query_size=100, dataset_topk=None)
    # a value the paper states cannot be overridden; one it does not state can
    with pytest.raises(InputError, match="protocol sdha fixes queries = 100"):
        resolve("sdha", dataset="d", database_size=5000, query_size=500, dataset_topk=None, queries=20)
    with pytest.raises(InputError, match="protocol pga fixes eps"):
        resolve("pga", dataset="d", database_size=9000, query_size=500, dataset_topk=None, eps=4 / 255)
    assert resolve("pga", dataset="d", database_size=9000, query_size=500, dataset_topk=None, queries=20)["queries"] == 20
    # the default protocol stays as it was: any cut-off and budget the user gives
    loose = resolve("default", dataset="d", database_size=300, query_size=50, dataset_topk=None, topk=5000, eps=0.1)
    assert loose["topk"] == 5000 and loose["eps"] == pytest.approx(0.1) and loose["queries"] == 50


def test_any_label_targets_may_overlap_the_query_zero_overlap_never_does():
    gen = torch.Generator().manual_seed(0)
    db = (torch.rand(300, 4, generator=gen) < 0.4).float()
    queries = (torch.rand(200, 4, generator=gen) < 0.4).float()
    queries[queries.sum(1) == 0, 0] = 1
    queries[queries.sum(1) == 4, 3] = 0
    zero = draw_target_labels(queries, db, seed=0)
    anyl = draw_target_labels(queries, db, seed=0, rule="any")
    assert ((zero * queries).sum(1) == 0).all()
    assert ((anyl * queries).sum(1) > 0).any()  # overlapping targets are drawn
    rows = {tuple(r) for r in torch.unique(db, dim=0).tolist() if sum(r) > 0}
    assert {tuple(r) for r in anyl.tolist()} <= rows and (anyl.sum(1) > 0).all()
    # a query carrying every class has no zero-overlap target, but an any-label one
    full = torch.ones(1, 4)
    with pytest.raises(ValueError, match="no valid target"):
        draw_target_labels(full, db, seed=0)
    assert draw_target_labels(full, db, seed=0, rule="any").sum() > 0
    with pytest.raises(ValueError, match="target rule"):
        draw_target_labels(queries, db, rule="some")


def test_protocol_files_keep_their_rule_and_names(tmp_path, tiny_victim):
    splits, _ = tiny_victim
    assert protocol_path(tmp_path, "synthetic", 0, 10).name == "protocol-synthetic-seed0-q10.json"  # old name kept
    path = protocol_path(tmp_path, "synthetic", 0, 10, "prosgan")
    assert path.name == "protocol-synthetic-seed0-q10-prosgan.json"
    load_or_draw_protocol(path, splits, n_queries=10, seed=0, target_rule="any")
    assert json.loads(path.read_text())["target_rule"] == "any"
    with pytest.raises(ValueError, match="'any' rule, not 'zero-overlap'"):
        load_or_draw_protocol(path, splits, n_queries=10, seed=0)


def test_database_anchors_come_from_the_database_codes(tiny_victim, monkeypatch):
    """With anchor_source = database, DHTA's reference set is the database split's codes."""
    import hashguard.attacks.p2p as p2p

    splits, model = tiny_victim
    seen = []
    original = p2p.checked_anchor_codes

    def spy(target_labels, knowledge, **kw):
        seen.append(knowledge)
        return original(target_labels, knowledge, **kw)

    monkeypatch.setattr(p2p, "checked_anchor_codes", spy)
    common = dict(targeted=True, n_queries=6, seed=0, params={"steps": 1})
    db_codes = model.encode(splits.database.batch(slice(None))).cpu()
    train_codes = model.encode(splits.train.batch(slice(None))).cpu()
    record = run_attack(model, splits, "dhta", protocol={"protocol": "dhta", "target_rule": "zero-overlap",
                                                         "anchor_source": "database"}, **common)
    assert seen[-1].codes.shape[0] == len(splits.database) and torch.equal(seen[-1].codes, db_codes)
    assert record["protocol"] == "dhta" and record["protocol_values"]["anchors_from"] == "database"
    record = run_attack(model, splits, "dhta", **common)
    assert seen[-1].codes.shape[0] == len(splits.train) and torch.equal(seen[-1].codes, train_codes)
    assert isinstance(seen[-1], Knowledge) and "protocol" not in record


def test_prosgan_bound_is_tanh_in_eps_ball_protocols_and_the_papers_none_under_its_own(tiny_victim):
    """Every protocol but ``prosgan`` keeps images in the eps-ball: ProS-GAN runs x + eps * tanh there;
    ``prosgan`` runs the paper's unbounded generator and records its perceptibility. A user's bound wins."""
    assert all(p.params_for("prosgan") == {"bound": "tanh"} for name, p in PROTOCOLS.items() if name != "prosgan")
    assert PROTOCOLS["prosgan"].params_for("prosgan") == {"bound": "none"}
    assert PROTOCOLS["default"].params_for("pga") == {} and "eps-ball" in PROTOCOLS["default"].attack_params_why
    assert PROTOCOLS["default"].describe()["attack_params"] == {"prosgan": {"bound": "tanh"}}
    splits, model = tiny_victim
    tiny = {"prototype": {"epochs": 1, "steps_per_epoch": 5, "hidden": 16},
            "gan": {"epochs": 1, "width": 4, "res_blocks": 0, "label_channels": 4, "batches_per_epoch": 2}}
    common = dict(targeted=True, n_queries=6, seed=0, return_details=True)
    eps = 8 / 255
    for protocol, bound in ((None, "tanh"), ({"protocol": "default"}, "tanh"),
                            ({"protocol": "prosgan", "target_rule": "any"}, "none")):
        record, details = run_attack(model, splits, "prosgan", params={"eps": eps, **tiny}, protocol=protocol, **common)
        assert record["params"]["bound"] == bound and record["bound"] == bound
        assert {"rmse", "l2", "linf", "linf_max"} <= set(record)
        delta = (details["result"].x_adv - details["x"]).abs().max()
        assert record["linf_max"] == pytest.approx(float(delta), abs=1e-6)
        if bound == "tanh":
            assert float(delta) <= eps + 1e-6
        else:  # the paper's generator: [0, 1], no budget (an untrained one is far from the clean image)
            assert float(delta) > eps
    record = run_attack(model, splits, "prosgan", params={"eps": eps, "bound": "none", **tiny}, **dict(common, return_details=False))
    assert record["params"]["bound"] == "none"  # the user's choice is kept in the default protocol


def _cli_attack(checkpoint, out, *extra):
    return main(["attack", "--model", str(checkpoint), "--steps", "2", "--json", str(out), "--quiet", *extra])


def test_attack_prosgan_records_the_whole_database_and_any_label_targets(tiny_checkpoint, tmp_path):
    out = tmp_path / "p2p.json"
    assert _cli_attack(tiny_checkpoint, out, "--method", "p2p", "--targeted", "--protocol", "prosgan",
                       "--queries", "12") == 0
    record = json.loads(out.read_text())
    values = record["protocol_values"]
    assert record["protocol"] == "prosgan" and record["topk"] is None and values["topk"] is None
    assert values["target_rule"] == "any" and values["anchor_source"] == "train" and values["queries"] == 12
    assert values["eps"] == pytest.approx(8 / 255) and "ProS-GAN Sec. 4.1" in values["provenance"]["topk"]
    assert record["protocol_file"].endswith("protocol-synthetic-seed0-q12-prosgan.json")
    assert json.loads((tmp_path / "protocol-synthetic-seed0-q12-prosgan.json").read_text())["target_rule"] == "any"


def test_attack_default_protocol_keeps_the_old_file_and_states_itself(tiny_checkpoint, tmp_path):
    out = tmp_path / "pga.json"
    assert _cli_attack(tiny_checkpoint, out, "--method", "pga", "--queries", "8") == 0
    record = json.loads(out.read_text())
    assert record["protocol"] == "default" and record["protocol_values"]["target_rule"] == "zero-overlap"
    assert (tmp_path / "protocol-synthetic-seed0-q8.json").is_file()
    assert "target_rule" not in json.loads((tmp_path / "protocol-synthetic-seed0-q8.json").read_text())


@pytest.mark.parametrize("extra, message", [
    (["--protocol", "papa"], "unknown protocol 'papa'"),
    (["--protocol", "pga"], "mAP@5000 but the synthetic database holds 240 items"),
    (["--protocol", "sdha"], "mAP@1000 but the synthetic database holds 240 items"),
    (["--protocol", "prosgan", "--topk", "10"], "protocol prosgan fixes topk = all"),
])
def test_attack_bad_protocols_are_one_line_errors_before_any_work(tiny_checkpoint, tmp_path, capsys, extra, message):
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as stop:
        _cli_attack(tiny_checkpoint, out, "--method", "pga", *extra)
    assert message in str(stop.value) and "\n" not in str(stop.value).strip()
    assert not out.exists() and not list(tmp_path.glob("protocol-*.json"))


def test_attack_pga_records_top_5000_on_a_database_that_has_it(tmp_path):
    """mnist-mosaic's database holds 8,000 items: PgA's MAP@5000 applies (an untrained own network)."""
    (tmp_path / "net.py").write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, bits=16):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, bits))\n\n"
        "    def forward(self, x):\n"
        "        return self.body(x)\n")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 16))
    torch.save({f"body.{k}": v for k, v in net.state_dict().items()}, tmp_path / "w.pth")
    out = tmp_path / "pga.json"
    assert main(["attack", "--model-def", f"{tmp_path / 'net.py'}:Net", "--weights", str(tmp_path / "w.pth"),
                 "--input-norm", "none", "--dataset", "mnist-mosaic", "--method", "fgsm", "--protocol", "pga",
                 "--queries", "4", "--json", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert record["protocol"] == "pga" and record["topk"] == 5000 and record["protocol_values"]["topk"] == 5000
    assert "PgA Sec. 4.1" in record["protocol_values"]["provenance"]["topk"]


def test_grid_key_protocol_sets_the_grids_values_and_identity():
    from hashguard.bench.plan import plan
    from hashguard.bench.results import protocol_of

    from hashguard.bench.spec import AttackSet

    attacks = AttackSet(untargeted=["fgsm"], targeted=["p2p"])
    default = BenchSpec(datasets=["synthetic"], queries=20, attacks=attacks).validate()
    spec = BenchSpec(datasets=["synthetic"], queries=20, attacks=attacks, protocol="prosgan").validate()
    assert spec.topk == 0 and spec.queries == 20 and spec.eps == pytest.approx(8 / 255)
    sdha = BenchSpec(protocol="sdha").validate()
    assert (sdha.topk, sdha.queries, sdha.eps) == (1000, 100, pytest.approx(0.039))
    apply_to_spec(sdha)  # idempotent: a re-read spec.json validates again
    assert protocol_of(spec)["protocol"] == "prosgan" and "protocol" not in protocol_of(default)
    old = {r.key for r in plan(default)}
    new = [r for r in plan(spec) if "method" in r.config]
    assert new and all(r.config["protocol"] == "prosgan" and r.key not in old for r in new)
    assert all("protocol" not in r.config for r in plan(default))
    with pytest.raises(InputError, match="unknown protocol"):
        BenchSpec(protocol="nope").validate()
    with pytest.raises(InputError, match="protocol sdha fixes eps"):
        BenchSpec(protocol="sdha", eps="4/255").validate()


def test_bench_refuses_a_protocol_the_dataset_cannot_satisfy_before_any_work(tmp_path, capsys):
    out = tmp_path / "res"
    grid = tmp_path / "grid.toml"
    grid.write_text('datasets = ["synthetic"]\nqueries = 10\n[attacks]\nuntargeted = ["fgsm"]\ntargeted = []\n'
                    '[defenses]\nmethods = []\n')
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--grid", str(grid), "--protocol", "pga", "--out", str(out), "--quiet", "--no-report"])
    assert "mAP@5000" in str(stop.value) and not (out / "records").exists()


def test_bench_protocol_flag_sets_the_grid_before_the_plan(tmp_path, capsys):
    assert main(["bench", "--preset", "quick", "--protocol", "sdha", "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    assert "100 queries, eps 0.039, seed 0, protocol sdha" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown protocol 'nope'"):
        main(["bench", "--preset", "quick", "--protocol", "nope", "--out", str(tmp_path / "r"), "--dry-run"])
