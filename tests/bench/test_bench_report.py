"""The report's answers, on fabricated results folders (no training: records written from a plan
with chosen per-query APs), plus the bootstrap against a slow reference and the published table."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from hashguard.bench import BenchSpec
from hashguard.bench.names import ATTACK_NAMES, display_name
from hashguard.bench.plan import ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRAIN, TRANSFER, plan
from hashguard.bench.published import matching, published
from hashguard.bench.report import _Results, build_report, report_command, sanity_flags, write_report
from hashguard.bench.results import SPEC_FILE, open_store
from hashguard.bench.spec import AttackSet, ConvergenceSet, DefenseSet
from hashguard.bench.stats import bootstrap_ci

CELL = r"\d+\.\d\d \[-?\d+\.\d, -?\d+\.\d\]"  # a metric cell: value [low, high]


# ---------------------------------------------------------------------------------- bootstrap


def _slow_bootstrap(values, resamples=1000, seed=0, level=0.95):
    """Reference: one resample at a time, in the order the fast version draws them."""
    x = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), size=(1, len(x)))[0]
        means.append(sum(x[i] for i in idx) / len(x))
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


@pytest.mark.parametrize("n", [1, 7, 50])
def test_bootstrap_matches_a_slow_reference(n):
    values = np.random.default_rng(n).random(n)
    fast = bootstrap_ci(values)
    assert fast == pytest.approx(_slow_bootstrap(values), abs=1e-12)
    assert fast == bootstrap_ci(values)  # seeded: the same interval every time
    assert fast[0] <= values.mean() <= fast[1]


def test_bootstrap_chunks_give_the_same_resamples(monkeypatch):
    import hashguard.bench.stats as stats

    values = np.random.default_rng(3).random(40)
    whole = bootstrap_ci(values)
    monkeypatch.setattr(stats, "_CHUNK", 97)  # 2 resamples per block
    assert bootstrap_ci(values) == pytest.approx(whole, abs=1e-12)
    assert bootstrap_ci([]) is None
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(values, level=1.5)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    g = np.random.default_rng(0)
    covered = sum(lo <= 0.5 <= hi for lo, hi in (bootstrap_ci(g.random(60), seed=i) for i in range(200)))
    assert 0.88 <= covered / 200 <= 0.99


# ---------------------------------------------------------------------------------- names


def test_display_names_are_the_papers_spellings():
    assert [display_name(m) for m in ("pga", "pga-dagger", "prosgan", "ifgsm", "p2p", "saat", "pga-at")] == [
        "PgA", "PgA†", "ProS-GAN", "I-FGSM", "P2P", "SAAT", "PgA-AT"]
    from hashguard.attacks import list_attacks

    assert set(list_attacks()) <= set(ATTACK_NAMES)  # every registered attack has its paper name
    assert display_name("my-own-attack") == "my-own-attack"


def test_figure_series_never_repeat_a_colour_and_marker_pair():
    from hashguard.bench.figures import map_vs_iterations, pr_curves, series_style

    pairs = [tuple(series_style(i).values()) for i in range(140)]
    assert len(set(pairs)) == 140
    assert len({series_style(i)["color"] for i in range(20)}) == 20
    curves = {f"attack {i}": ([1.0, 0.5, 0.2], [0.1, 0.5, 1.0]) for i in range(14)}
    lines = pr_curves(curves).axes[0].lines
    assert len({(line.get_color(), line.get_marker()) for line in lines}) == 14
    lines = map_vs_iterations({k: ([1, 2], [0.5, 0.4]) for k in curves}).axes[0].lines
    assert len({(line.get_color(), line.get_marker()) for line in lines}) == 14


# ---------------------------------------------------------------------------------- fabricated folders


def _spec(**changes) -> BenchSpec:
    fields = dict(
        name="fabricated", datasets=["nus-wide"], backbones=["alexnet"], objectives=["dph"], bits=[32], seed=0,
        queries=30, eps=8 / 255,
        attacks=AttackSet(untargeted=["pga", "hag"], targeted=["dhta"], steps={"pga": 100, "hag": 100, "dhta": 100}),
        defenses=DefenseSet(methods=["saat"], untargeted=["pga", "hag"], targeted=[], steps={"pga": 100, "hag": 100}),
        convergence=ConvergenceSet(methods=["pga"], steps=[10, 100], queries=30),
    )
    fields.update(changes)
    return BenchSpec(**fields).validate(check_files=False)


def fabricate(root, spec: BenchSpec, aps, *, topk=5000, n=30, theory=0.05):
    """Write spec.json and a record for every run of ``spec``; ``aps(run)`` gives the run's
    ``(clean per-query APs, attacked per-query APs)`` (fractions)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / SPEC_FILE).write_text(json.dumps(spec.to_dict()))
    store = open_store(spec, root)
    for r in plan(spec):
        if r.role == TRAIN:
            store.put(r.config, {"clean_map": 0.7, "topk": topk, "checkpoint": None}, {"train_seconds": 1.0, "wall_seconds": 1.0})
            continue
        if r.role == DEFENSE:
            store.put(r.config, {"checkpoint": None, "defense": {"method": r.defense, "epochs": 1, "steps": 7, "step": 2 / 255,
                                                                 "eps": 8 / 255}},
                      {"defense_seconds": 2.0, "wall_seconds": 2.0})
            continue
        clean, adv = (np.asarray(a, dtype=np.float64) for a in aps(r))
        t = r.config["targeted"]
        metrics = {
            "n_queries": n, "query_indices": list(range(n)), "method": r.config["method"], "targeted": t,
            "steps": r.config["steps"] or 1, "eps": spec.eps, "topk": topk, "seed": 0,
            "clean_map": float(clean.mean()), "map": float(adv.mean()), "theory_map": None if t else theory,
            "perceptibility": {"linf": 8 / 255, "l2": 1.0, "rmse": 0.01}, "seconds": 1.0, "seconds_per_query": 1 / n,
            "success_rate": 0.5, "bits_changed": 3.0,
            "per_query": {"ap": adv.tolist(), "success": [bool(v < 0.5) for v in adv], "clean_ap": clean.tolist()},
        }
        if not t and theory is not None:
            metrics["per_query"]["theory_ap"] = [theory] * n
        if t:
            metrics.update(clean_t_map=0.3, t_map=float(adv.mean()), theory_t_map=None)
            metrics["per_query"]["clean_t_ap"] = [0.3] * n
        store.put(r.config, metrics, {"attack_seconds": 1.0, "wall_seconds": 1.5})
    return root


def _aps(n=30, seed=0):
    g = np.random.default_rng(seed)
    clean = 0.6 + 0.3 * g.random(n)

    def aps(run):
        method, steps = run.config["method"], run.config["steps"]
        if run.config["targeted"]:
            return clean, 0.3 + 0.5 * g.random(n)
        drop = {"pga": 0.45, "hag": 0.3}[method] * (0.5 if run.role == CONVERGENCE and steps == 10 else 1.0)
        if run.defense != "none":
            drop /= 3
        return clean, np.clip(clean - drop + 0.02 * g.random(n), 0, 1)

    return aps


@pytest.fixture
def folder(tmp_path):
    return fabricate(tmp_path / "fab", _spec(), _aps())


def _sections(md):
    return re.findall(r"^## (.+)$", md, flags=re.M)


def test_summary_is_the_first_section_of_both_documents(folder):
    written = write_report(folder)
    md = (folder / "report.md").read_text()
    assert _sections(md)[0] == "Summary"
    page = (folder / "report.html").read_text()
    assert re.findall(r"<h2[^>]*>([^<]+)</h2>", page)[0] == "Summary"
    assert page.index('id="contents"') < page.index(">Summary</h2>")  # the table of contents links every section
    for section in _sections(md):
        assert re.search(r'<a href="#[^"]+">' + re.escape(section.replace("&", "&amp;")) + "</a>", page)
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) and "leaderboard-table" in ids  # the sort script finds its table, not a heading
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "on the 30 attacked queries" in summary
    assert "strongest attack is PgA" in summary
    assert re.search(r"SAAT changes the robust mAP by \+\d+\.\d\d \[", summary)
    assert set(written) == {"md", "html", "csv", "jsonl"}


def test_every_metric_cell_has_an_interval(folder):
    md = build_report(folder).markdown()
    assert "written `value [low, high]`" in md  # the header says how intervals are written
    checked = 0
    for block in md.split("\n\n"):
        lines = block.splitlines()
        if len(lines) < 3 or not lines[0].startswith("|"):
            continue
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        metric_cols = [i for i, h in enumerate(header)
                       if re.search(r"mAP|t-MAP|robust|\(T=|DPH-32|gained|cost|published|measured", h) and h != "published"]
        for line in lines[2:]:
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            for i in metric_cols:
                if cells[i] in ("-",) or cells[0].startswith(("L-inf",)):
                    continue
                assert re.search(CELL, cells[i]), f"{header[i]!r}: {cells[i]!r} in {line!r}"
                checked += 1
    assert checked >= 20


def test_results_csv_and_jsonl_have_one_row_per_record(folder):
    write_report(folder)
    n_records = len(list((folder / "records").glob("*.json")))
    rows = list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))
    assert len(rows) == n_records
    jsonl = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert len(jsonl) == n_records and [r["key"] for r in jsonl] == [r["key"] for r in rows]
    pga = next(r for r in jsonl if r["role"] == ATTACK and r["attack"] == "PgA")
    assert pga["metric"] == "map" and pga["ci_low"] <= pga["value"] <= pga["ci_high"]
    assert {"model", "attack", "mode", "T", "eps", "metric", "value", "ci_low", "ci_high", "seconds"} <= set(rows[0])


def test_an_attack_that_raises_map_is_flagged_as_failed(tmp_path):
    base = _aps()

    def aps(run):
        clean, adv = base(run)
        if run.config["method"] == "hag" and run.defense == "none":
            return clean, np.clip(clean + 0.05, 0, 1)
        return clean, adv

    out = fabricate(tmp_path / "raised", _spec(), aps)
    flags = sanity_flags(_Results(out))
    texts = flags["DPH-32"]
    failed = [t for t in texts if t.startswith("HAG (untargeted) raised mAP from")]
    assert failed and failed[0].endswith("the attack failed")
    assert not any("less than 1 point" in t for group in flags.values() for t in group)
    assert len(texts) == len(set(texts))  # deduplicated


def test_robust_above_clean_is_flagged(tmp_path):
    def aps(run):
        n = 30
        clean = np.full(n, 0.5) + 0.01 * np.arange(n) / n
        if run.config["targeted"]:
            return clean, np.full(n, 0.4)
        return clean, np.clip(clean + 0.2, 0, 1)  # every untargeted attack raised every query's AP

    out = fabricate(tmp_path / "above", _spec(), aps)
    md = build_report(out).markdown()
    flags = md.split("## Sanity flags", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"robust mAP .* is above the clean mAP .* beyond the 95 % interval", flags)


def test_unconverged_curve_and_defended_models_are_flagged_once(tmp_path):
    out = fabricate(tmp_path / "conv", _spec(), _aps())
    flags = sanity_flags(_Results(out))
    assert any(t.startswith("PgA (untargeted) not converged: mAP still falling at the last T") and t.endswith("raise T")
               for t in flags["DPH-32"])
    # the undefended model: one flag per attack far from its theory row; the defended one: one line for all
    assert any(t.startswith("HAG (untargeted) ends") and "masked gradients" in t for t in flags["DPH-32"])
    defended = [t for t in flags["DPH-32 + SAAT"] if "theory" in t]
    assert defended == ["PgA, HAG end far (> 25 points) from their theory rows: expected of a robust model, but masked "
                        "gradients look the same (check transfer and the mAP-vs-T curves)"]


def test_published_figures_match_only_the_same_protocol(tmp_path):
    # NUS-WIDE, AlexNet, DPH, 32 bits, eps 8/255, mAP@5000: PgA Table 1 and SAAT Table II describe it
    out = fabricate(tmp_path / "paper-like", _spec(), _aps())
    md = build_report(out).markdown()
    section = md.split("## Published figures beside the measured ones", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| DPH-32")]
    assert any("| PgA (untargeted) | mAP |" in r and "| 11.53 | PgA Table 1 |" in r for r in rows)
    assert any("| HAG (untargeted) | mAP |" in r and "| 14.32 | PgA Table 1 |" in r for r in rows)
    assert any("| HAG (untargeted) | mAP |" in r and "| 13.32 | SAAT Table II (backbone not stated) |" in r for r in rows)
    assert any(r.startswith("| DPH-32 + SAAT | clean |") and "| 60.51 | SAAT Table III" in r for r in rows)
    # the measured tables never carry a published number
    untargeted = md.split("## Untargeted attacks", 1)[1].split("\n## ", 1)[0]
    assert "11.53" not in untargeted and "Table 1" not in untargeted
    # another cut-off, budget or backbone: no match
    for name, spec, topk in (("topk", _spec(), None), ("eps", _spec(eps=4 / 255), 5000),
                             ("data", _spec(datasets=["synthetic"]), 5000)):
        other = build_report(fabricate(tmp_path / name, spec, _aps(), topk=topk)).markdown()
        assert "None of this grid's cells was measured under a protocol the seed papers report" in other, name
    # PgA names AlexNet: a VGG11 model does not match it; SAAT's table does not say, so it still shows (marked)
    other = build_report(fabricate(tmp_path / "vgg", _spec(backbones=["vgg11"]), _aps())).markdown()
    assert "PgA Table 1" not in other and "SAAT Table II (backbone not stated)" in other


def test_published_entries_are_complete_and_matching_is_strict():
    entries = published()
    assert len(entries) > 150
    for p in entries:
        assert set(p) >= {"paper", "table", "dataset", "bits", "value", "metric", "mode", "topk", "eps"}
        assert 0 < p["value"] < 100 and p["table"].split(":")[0] in p["table"]
    hit = matching(dataset="flickr25k", backbone="vgg11", objective="dpsh", bits=32, defense="none", attack="prosgan",
                   mode="targeted", metric="t_map", eps=8 / 255, topk=None)
    assert [(p["paper"], p["value"]) for p in hit] == [("ProS-GAN", 91.10)]
    assert not matching(dataset="flickr25k", backbone="vgg11", objective="dpsh", bits=32, defense="none", attack="prosgan",
                        mode="targeted", metric="t_map", eps=8 / 255, topk=5000)


def test_leaderboard_rows_and_combined_report_over_folders(tmp_path, capsys):
    a = fabricate(tmp_path / "a", _spec(), _aps(seed=1))
    b = fabricate(tmp_path / "b", _spec(objectives=["dpsh"], defenses=DefenseSet()), _aps(seed=2))
    with pytest.raises(ValueError, match="--out"):
        report_command([str(a), str(b)])
    with pytest.raises(ValueError, match="folder of its own"):
        report_command([str(a), str(b)], out=str(a))
    text = report_command([str(a), str(b)], out=str(tmp_path / "both"))
    assert "report.html" in text
    md = (tmp_path / "both" / "report.md").read_text()
    assert _sections(md)[:2] == ["Summary", "Leaderboard"]
    board = md.split("## Leaderboard", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in board.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert len(rows) == 3  # a: none + SAAT; b: none
    robust = [float(r.split("|")[9].split()[0]) for r in rows]
    assert robust == sorted(robust, reverse=True)
    assert "| a | DPH-32 | NUS-WIDE | AlexNet | DPH | 32 | SAAT |" in board
    combined = list(csv.DictReader(io.StringIO((tmp_path / "both" / "results.csv").read_text())))
    assert {r["results"] for r in combined} == {"a", "b"}
    assert len(combined) == len(list((a / "records").glob("*.json"))) + len(list((b / "records").glob("*.json")))
    printed = report_command([str(a)], fmt="csv")
    assert printed.splitlines()[0].startswith("results,key,role,model")
    assert len(printed.splitlines()) == 1 + len(list((a / "records").glob("*.json")))
    from hashguard.cli import main

    assert main(["report", str(a), "--format", "json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all(json.loads(line)["results"] == "a" for line in lines)
    with pytest.raises(SystemExit, match="need --out"):
        main(["report", str(a), str(b)])


def test_transfer_role_is_exported_with_its_surrogate(tmp_path):
    spec = _spec(objectives=["dph", "dpsh"], defenses=DefenseSet(), convergence=ConvergenceSet())
    spec.transfer.targeted = ["dhta"]
    spec.validate(check_files=False)
    out = fabricate(tmp_path / "transfer", spec, _aps())
    write_report(out)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    transfer = [r for r in rows if r["role"] == TRANSFER and r["surrogate"]]
    assert transfer and all(r["attack"] == "DHTA" and r["metric"] == "t_map" for r in transfer)
    assert REATTACK not in {r["role"] for r in rows}
