"""The benchmark runner and its report on a tiny grid trained inside the test (about 20 s)."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest

import hashguard
from hashguard.bench import RecordStore, load_spec_file, run_bench, worst_case, write_report
from hashguard.bench.names import display_name
from hashguard.bench.plan import ATTACK, REATTACK, TRANSFER, plan
from hashguard.bench.report import build_report
from hashguard.retrieval import mean_average_precision

TINY_GRID = """
name = "tiny"
datasets = ["synthetic"]
objectives = ["dpsh", "dph"]
bits = [16]
queries = 20
eps = 0.1
[train]
epochs = 3
[attacks]
untargeted = ["pga", "mainstay", "fgsm"]
targeted = ["mainstay", "dhta"]
steps = { pga = 5, mainstay = 5, dhta = 5 }
[defenses]
methods = ["saat"]
epochs = 1
untargeted = ["pga"]
targeted = ["mainstay"]
steps = { pga = 5, mainstay = 5 }
eval_queries = 10
eval_steps = 2
[convergence]
methods = ["pga"]
steps = [1, 3]
queries = 10
[transfer]
targeted = ["mainstay"]
steps = { mainstay = 5 }
"""


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory, single_thread):
    root = tmp_path_factory.mktemp("bench")
    grid = root / "tiny.toml"
    grid.write_text(TINY_GRID)
    spec = load_spec_file(grid)
    result = run_bench(spec, root / "out", progress=False)
    return root / "out", spec, result


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def test_one_record_per_distinct_run_with_config_metrics_timings(bench_dir):
    out, spec, result = bench_dir
    runs = plan(spec)
    records = _records(out)
    assert set(records) == {r.key for r in runs}
    for r in runs:
        rec = records[r.key]
        assert rec["config"] == json.loads(json.dumps(r.config))
        assert rec["version"] == hashguard.__version__
        assert "wall_seconds" in rec["timings"] and "machine" in rec["timings"]
    for r in runs:
        if r.role in (ATTACK, REATTACK, TRANSFER):
            m = records[r.key]["metrics"]
            assert m["seed"] == spec.seed and m["eps"] == pytest.approx(0.1)
            assert len(m["per_query"]["ap"]) == m["n_queries"] == len(m["query_indices"])
    assert (out / "models").is_dir() and len(list((out / "models").glob("*.pt"))) == 4  # 2 trained + 2 defended


def test_every_attack_sees_the_same_queries_and_targets(bench_dir):
    out, spec, _ = bench_dir
    records = _records(out)
    protocol = json.loads((out / "protocols" / "protocol-synthetic-seed0-q20.json").read_text())
    for r in plan(spec):
        if r.role in (ATTACK, REATTACK, TRANSFER):
            assert records[r.key]["metrics"]["query_indices"] == protocol["query_indices"]


def test_rerun_skips_every_finished_record(bench_dir, monkeypatch):
    out, spec, _ = bench_dir
    before = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    import hashguard.bench.runner as runner

    def boom(*args, **kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(runner, "_attack", boom)
    monkeypatch.setattr(runner, "_train", boom)
    monkeypatch.setattr(runner, "_defend", boom)
    run_bench(spec, out, progress=False, report=False)
    assert {p.name: p.read_bytes() for p in (out / "records").glob("*.json")} == before


def test_select_keeps_the_train_and_defense_runs_and_only_the_chosen_attacks(bench_dir, tmp_path):
    out, spec, _ = bench_dir
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    pga = [r.key for r in plan(spec) if r.role == ATTACK and r.config["method"] == "pga"]
    for key in pga:
        (copy / "records" / f"{key}.json").unlink()
    result = run_bench(spec, copy, progress=False, report=False, select=lambda run: run.config["method"] == "pga")
    kinds = {r["config"]["kind"] for r in result["records"]}
    assert {r["config"].get("method") for r in result["records"] if r["config"]["kind"] == "attack"} == {"pga"}
    assert {"train", "defense"} <= kinds
    assert all((copy / "records" / f"{key}.json").is_file() for key in pga)


def test_robust_map_is_the_per_query_worst_case(bench_dir):
    out, spec, _ = bench_dir
    records = _records(out)
    table = [records[r.key]["metrics"] for r in plan(spec)
             if r.role == ATTACK and not r.config["targeted"] and r.model["hash_method"] == "dph"]
    # slow reference: per query, the smallest AP over the attacks
    n = len(table[0]["per_query"]["ap"])
    expected = sum(min(m["per_query"]["ap"][q] for m in table) for q in range(n)) / n
    robust = worst_case(table)
    assert robust["map"] == pytest.approx(expected, abs=1e-9)
    assert robust["map"] <= min(m["map"] for m in table) + 1e-6
    broken_any = [any(m["per_query"]["success"][q] for m in table) for q in range(n)]
    assert robust["unbroken"] == pytest.approx(1 - np.mean(broken_any))
    bad = dict(table[1], query_indices=list(reversed(table[1]["query_indices"])))
    with pytest.raises(ValueError, match="different queries"):
        worst_case([table[0], bad])


def test_per_query_ap_matches_the_map_of_the_record(bench_dir):
    out, spec, _ = bench_dir
    for rec in _records(out).values():
        m = rec["metrics"]
        if "per_query" in m:
            value = m["t_map"] if m["targeted"] else m["map"]
            assert np.mean(m["per_query"]["ap"]) == pytest.approx(value, abs=1e-5)


def test_report_tables_show_the_recorded_numbers(bench_dir):
    out, spec, result = bench_dir
    md = (out / "report.md").read_text()
    records = _records(out)
    for r in plan(spec):
        if r.role == ATTACK and r.model["hash_method"] == "dpsh":
            m = records[r.key]["metrics"]
            value = m["t_map"] if m["targeted"] else m["map"]
            row = next(line for line in md.splitlines()
                       if line.startswith(f"| {display_name(r.config['method'])} (T=") and f"{100 * value:.2f} [" in line)
            assert row
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings[:2] == ["Summary", "Leaderboard"]
    for heading in ("Untargeted attacks", "Targeted attacks", "Defenses", "Transferability", "Sanity flags",
                    "Perceptibility and cost", "Figures"):
        assert any(h.startswith(heading) for h in headings)
    assert (out / "results.csv").is_file() and (out / "results.jsonl").is_file()
    n_records = len(list((out / "records").glob("*.json")))
    assert len((out / "results.csv").read_text().splitlines()) == 1 + n_records
    assert "runs finished: 30 of 30" in md or re.search(r"runs finished: (\d+) of \1", md)


def test_report_html_is_self_contained_with_every_figure(bench_dir):
    out, spec, _ = bench_dir
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    figures = sorted((out / "report_files").glob("*.png"))
    assert len(sources) == len(figures) >= 10  # PR + P@N x 2 modes x 2 models, convergence, examples
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing fetched from outside the file (# = own sections)
    assert not re.search(r'<script[^>]+src', page)  # the sorting script is inline
    assert len(list((out / "figures").glob("*.png"))) == 4  # pga + mainstay examples, 2 models


def test_report_can_be_rewritten_from_the_directory_alone(bench_dir, tmp_path):
    out, _, _ = bench_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.md").unlink()
    written = write_report(copy)
    def body(text):  # everything after the header's timing lines
        return text[text.index("- protocol:"):]

    assert body((copy / "report.md").read_text()) == body((out / "report.md").read_text())
    assert written["html"].endswith("report.html")


def test_partial_results_give_a_partial_report(bench_dir, tmp_path):
    out, spec, _ = bench_dir
    copy = tmp_path / "partial"
    shutil.copytree(out, copy)
    victims = [r for r in plan(spec) if r.role == ATTACK and r.config["method"] == "dhta"]
    for r in victims:
        (copy / "records" / f"{r.key}.json").unlink()
    md = build_report(copy).markdown()
    assert "re-run the same command to finish the rest" in md
    assert re.search(r"\| DHTA \(T=5\) \| - \| - \|", md)


def test_sanity_flag_when_transfer_beats_white_box(bench_dir, tmp_path):
    out, spec, _ = bench_dir
    copy = tmp_path / "flags"
    shutil.copytree(out, copy)
    transfer = next(r for r in plan(spec) if r.role == TRANSFER and r.config["surrogate"])
    path = copy / "records" / f"{transfer.key}.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["t_map"] = 1.0
    path.write_text(json.dumps(rec))
    md = build_report(copy).markdown()
    assert "transfer from" in md and "beats the white-box mainstay (targeted)" in md
    assert md.index("## Sanity flags") < md.index("## Setup")  # flags come before the evidence


def test_other_version_or_protocol_is_refused_before_any_work(bench_dir, monkeypatch):
    out, spec, _ = bench_dir
    before = sorted(p.name for p in (out / "records").iterdir())
    other = load_spec_file_text(TINY_GRID.replace("eps = 0.1", "eps = 0.2"), out.parent / "other.toml")
    with pytest.raises(ValueError, match="protocol"):
        run_bench(other, out, progress=False)
    monkeypatch.setattr(hashguard, "__version__", "9.9.9")
    with pytest.raises(ValueError, match="version"):
        run_bench(spec, out, progress=False)
    assert sorted(p.name for p in (out / "records").iterdir()) == before


def load_spec_file_text(text, path):
    path.write_text(text)
    return load_spec_file(path)


def test_attack_record_map_against_a_direct_computation(bench_dir):
    """The table's clean mAP is the victim's mAP on exactly the protocol's queries."""
    import torch

    from hashguard.data import load_splits
    from hashguard.models import encode_dataset, load_checkpoint

    out, spec, _ = bench_dir
    run = next(r for r in plan(spec) if r.role == ATTACK and r.model["hash_method"] == "dpsh")
    rec = RecordStore(out, protocol=json.loads((out / "store.json").read_text())["protocol"]).get(run.config)
    model, _ = load_checkpoint(out / "models" / f"{run.config['model']}.pt")
    splits = load_splits("synthetic", 0)
    idx = torch.as_tensor(rec["metrics"]["query_indices"])
    q = encode_dataset(model, splits.query)[idx]
    db = encode_dataset(model, splits.database)
    ql = torch.as_tensor(splits.query.labels)[idx]
    expected = mean_average_precision(q, db, ql, splits.database.labels, topk=splits.default_topk)
    assert rec["metrics"]["clean_map"] == pytest.approx(expected, abs=1e-9)


def _chromium():
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="needs a headless Chromium on PATH (Debian: apt-get install chromium)")
def test_report_html_renders_every_figure_in_headless_chromium(bench_dir, tmp_path):
    """Open report.html in headless Chromium and count the images that decoded (naturalWidth > 0)."""
    import subprocess

    out, _, _ = bench_dir
    page = (out / "report.html").read_text()
    probe = (
        "<script>window.addEventListener('load', function () {"
        "var imgs = Array.prototype.slice.call(document.images);"
        "var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;"
        "document.body.setAttribute('data-images', imgs.length + '/' + ok);"
        # click the leaderboard's "clean mAP" header twice (descending, then ascending) with the page's own
        # script, and write the column's order after each click into the DOM
        "var t = document.getElementById('leaderboard-table');"
        "var col = Array.prototype.map.call(t.tHead.rows[0].cells, function (c) { return c.textContent; })"
        ".indexOf('clean mAP');"
        "function order() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {"
        "return parseFloat(r.cells[col].textContent); }).join(','); }"
        "t.tHead.rows[0].cells[col].click(); document.body.setAttribute('data-desc', order());"
        "t.tHead.rows[0].cells[col].click(); document.body.setAttribute('data-asc', order());"
        "document.body.setAttribute('data-sorted', t.getAttribute('data-sort-dir')); });</script>"
    )
    probed = tmp_path / "report-probe.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'data-images="(\d+)/(\d+)"', result.stdout)
    assert found, f"chromium did not load the page: {result.stderr[-2000:]}"
    total, decoded = int(found.group(1)), int(found.group(2))
    assert total == len(list((out / "report_files").glob("*.png"))) >= 10
    assert decoded == total
    desc = [float(v) for v in re.search(r'data-desc="([^"]+)"', result.stdout).group(1).split(",")]
    asc = [float(v) for v in re.search(r'data-asc="([^"]+)"', result.stdout).group(1).split(",")]
    assert len(desc) == 4 and desc == sorted(desc, reverse=True) and asc == sorted(asc)  # 2 models x (none, SAAT)
    assert 'data-sorted="asc"' in result.stdout
    assert '<nav id="contents">' in page and page.index("<nav") < page.index(">Summary</h2>")


def test_robust_cell_waits_for_every_untargeted_record(bench_dir, tmp_path):
    out, spec, _ = bench_dir
    copy = tmp_path / "robust"
    shutil.copytree(out, copy)
    gone = next(r for r in plan(spec) if r.role == ATTACK and r.config["method"] == "fgsm" and r.model["hash_method"] == "dph")
    (copy / "records" / f"{gone.key}.json").unlink()
    md = build_report(copy).markdown()
    robust = next(line for line in md.splitlines() if line.startswith("| **robust"))
    cells = [c.strip() for c in robust.strip("|").split("|")][1:]
    assert cells[1] == "-" and cells[0] != "-"  # DPH's worst case is not shown over 2 of its 3 attacks


def test_a_tampered_record_cannot_pull_other_files_into_the_report(bench_dir, tmp_path):
    out, spec, _ = bench_dir
    copy = tmp_path / "tampered"
    shutil.copytree(out, copy)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-OF-THE-MACHINE")
    (copy / "figures" / "escape.png").symlink_to(secret)
    paths = ["../secret.png", str(secret), "figures/escape.png", "figures/../../secret.png"]
    tampered = [p for p in (copy / "records").glob("*.json") if "example_figure" in p.read_text()]
    assert len(tampered) >= len(paths)
    for path, value in zip(tampered[: len(paths)], paths, strict=True):
        rec = json.loads(path.read_text())
        rec["metrics"]["example_figure"] = value
        path.write_text(json.dumps(rec))
    with pytest.warns(UserWarning, match="outside the results folder"):
        write_report(copy)
    page = (copy / "report.html").read_text()
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    assert all(secret.read_bytes() != f.read_bytes() for f in (copy / "report_files").glob("*.png"))


def test_report_refuses_an_unusable_output_before_building(bench_dir, tmp_path, capsys):
    from hashguard.cli import main
    from hashguard.errors import OutputPathError

    out, _, _ = bench_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    (copy / "report.html").mkdir()
    with pytest.raises(OutputPathError, match="report.html is a directory"):
        write_report(copy)
    assert main(["report", str(copy)]) == 2
    assert "report.html is a directory" in capsys.readouterr().err
