"""The benchmark report: ``report.md`` and a self-contained ``report.html`` from a results directory.

Built only from the records (no model is loaded, nothing is attacked), laid out by the grid of
``spec.json`` through :func:`hashguard.bench.plan.plan`, so a partly finished run gives a partial
report with "-" for the runs still missing. The report answers first, then shows its evidence:

1. summary: per model the clean mAP, the robust mAP (worst case over the untargeted attacks), the
   strongest attack, and per defense the robust mAP it gained and the clean mAP it cost;
2. leaderboard: one row per model and defense (RobustBench style), sortable in report.html;
3. sanity flags, grouped per model: failed attacks, robust above clean, unconverged curves,
   transfer beating white-box, attacks far from their theory rows;
4. setup: protocol, models, timings;
5. untargeted mAP: attacks x models (PgA Table 1 layout), the robust row and the theory rows;
6. targeted t-MAP: the same for the targeted attacks;
7. the seed papers' published figures beside the measured cells with the same protocol;
8. defenses x attacks (SAAT Tables III-IV layout); 9. transferability matrices;
10. perceptibility and cost per attack; 11. figures.

Every mAP / t-MAP cell is written ``value [low, high]`` in percent: the value and its 95 %
percentile-bootstrap interval over the queries (:mod:`hashguard.bench.stats`). All of them, the
summary's clean mAP included, are on the attacked queries (the same queries and targets for every
attack of a table). ``results.csv`` and ``results.jsonl`` (one row per record) are written with the
report. ``report.md`` refers to PNG files in ``report_files/``; ``report.html`` embeds every image
as a data URI, so it is one file that opens anywhere (its only script, inline, sorts tables).
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import __version__
from .._atomic import atomic_write_bytes, atomic_write_text
from .._paths import check_output_dir, path_inside
from . import figures, published
from .injection import injection_section, ratio_lines
from .names import display_name
from .perturbation import perturbation_section
from .plan import (
    ATTACK,
    CONVERGENCE,
    DEFENSE,
    INJECTION,
    REATTACK,
    SURROGATE,
    TRAIN,
    TRANSFER,
    is_external,
    model_id,
    models_of,
    plan,
    same_data,
    surrogate_label,
)
from .results import load_spec_of, open_store
from .robust import worst_case
from .stats import LEVEL, RESAMPLES, SEED, bootstrap_ci

FAR_FROM_THEORY = 0.25  # flag an attack ending more than 25 mAP points from its theory row
TRANSFER_MARGIN = 0.01  # flag a transfer attack beating the white-box one by more than 1 point
NO_EFFECT = 0.01  # flag an attack that lowers mAP (raises t-MAP) by less than 1 point
CONVERGED = 0.01  # a curve still improving by more than 1 point at its last T is not converged

CI_NOTE = (f"Every mAP / t-MAP is in percent, written `value [low, high]`: the value and its {100 * LEVEL:.0f} % "
           f"percentile-bootstrap confidence interval over the queries ({RESAMPLES} resamples, seed {SEED}); "
           "differences (gained, cost) are paired bootstraps over the same queries.")


# ------------------------------------------------------------------------------------------------
# document blocks, rendered to Markdown and to HTML

_SORT_SCRIPT = """
(function () {
  function num(cell) { var v = parseFloat(cell.textContent.trim().replace(/^\\+/, '')); return isNaN(v) ? null : v; }
  function sortBy(table, col) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var desc = !(table.getAttribute('data-sort-col') === String(col) && table.getAttribute('data-sort-dir') === 'desc');
    var numeric = rows.some(function (r) { return num(r.cells[col]) !== null; });
    rows.sort(function (a, b) {
      var x, y;
      if (numeric) {
        x = num(a.cells[col]); y = num(b.cells[col]);
        if (x === null || y === null) { return (x === null) - (y === null); }
      } else { x = a.cells[col].textContent.toLowerCase(); y = b.cells[col].textContent.toLowerCase(); }
      var c = x < y ? -1 : x > y ? 1 : 0;
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.setAttribute('data-sort-col', String(col));
    table.setAttribute('data-sort-dir', desc ? 'desc' : 'asc');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.title = 'click to sort'; th.style.cursor = 'pointer';
      th.addEventListener('click', function () { sortBy(table, col); });
    });
  });
})();
"""


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class _Doc:
    def __init__(self) -> None:
        self.blocks: List[Tuple] = []
        self.n_figures = 0
        self.title = "hashguard report"

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, items: List[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, header: List[str], rows: List[List[str]], *, sortable: bool = False, ident: str = "") -> None:
        if rows:
            self.blocks.append(("table", header, rows, sortable, ident))

    def figure(self, png: bytes, caption: str) -> None:
        self.n_figures += 1
        self.blocks.append(("fig", png, caption, f"figure-{self.n_figures:02d}.png"))

    def markdown(self) -> str:
        out: List[str] = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                header, rows = block[1], block[2]
                lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(row) + " |" for row in rows]
                out.append("\n".join(lines))
            elif kind == "fig":
                out.append(f"![{block[2]}](report_files/{block[3]})\n\n*{block[2]}*")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        import base64

        body: List[str] = []
        anchors: List[Tuple[str, str]] = []
        used: set = set()
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                ident = ""
                if block[1] == 2:
                    ident = _anchor(block[2])
                    while ident in used:
                        ident += "-x"
                    used.add(ident)
                    anchors.append((ident, block[2]))
                attr = f' id="{ident}"' if ident else ""
                body.append(f"<h{block[1]}{attr}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "p":
                body.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block[2])
                attrs = (' class="sortable"' if block[3] else "") + (f' id="{html.escape(block[4])}"' if block[4] else "")
                body.append(f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "fig":
                uri = "data:image/png;base64," + base64.b64encode(block[1]).decode("ascii")
                cap = html.escape(block[2])
                body.append(f'<figure><img src="{uri}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')
        toc = ('<nav id="contents"><b>Contents</b><ul>' + "".join(
            f'<li><a href="#{ident}">{html.escape(text)}</a></li>' for ident, text in anchors) + "</ul></nav>")
        first = next((i for i, b in enumerate(body) if b.startswith("<h1")), -1)
        body.insert(first + 1, toc)  # after the title, before the summary
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
            "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
            "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
            "table.sortable th:hover{background:#e4e4ff}nav ul{columns:2;font-size:14px}"
            "figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}"
        )
        return (
            f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body)
            + f"\n<script>{_SORT_SCRIPT}</script>\n</body></html>\n"
        )


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` inside a cell or paragraph, as HTML (everything else escaped)."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


# ------------------------------------------------------------------------------------------------
# numbers

# which per-query list of a record holds the APs behind each of its metrics
_PER_QUERY = {"map": "ap", "t_map": "ap", "clean_map": "clean_ap", "clean_t_map": "clean_t_ap",
              "theory_map": "theory_ap", "theory_t_map": "theory_ap"}
_ci_cache: Dict[Tuple[float, ...], Optional[Tuple[float, float]]] = {}


def _ci(values: Optional[Sequence[float]]) -> Optional[Tuple[float, float]]:
    if values is None:
        return None
    key = tuple(float(v) for v in values)
    if key not in _ci_cache:
        if len(_ci_cache) > 4096:
            _ci_cache.clear()
        _ci_cache[key] = bootstrap_ci(np.asarray(key))
    return _ci_cache[key]


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _cell(value: Optional[float], per_query: Optional[Sequence[float]], *, signed: bool = False) -> str:
    """``17.08 [15.2, 19.0]``: a value in percent and its bootstrap interval (``-`` when missing)."""
    if value is None:
        return "-"
    text = f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"
    ci = _ci(per_query)
    if ci is None:
        return text + " (no interval: no per-query APs in this record)"
    return f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _per_query(rec: Optional[Dict], metric: str) -> Optional[List[float]]:
    if rec is None:
        return None
    return (rec["metrics"].get("per_query") or {}).get(_PER_QUERY[metric])


def _mcell(rec: Optional[Dict], metric: str) -> str:
    """The cell of ``metric`` of a record, with its interval."""
    if rec is None:
        return "-"
    return _cell(rec["metrics"].get(metric), _per_query(rec, metric))


def _steps_label(record: Optional[Dict], config: Dict) -> str:
    if record is not None:
        return str(record["metrics"]["steps"])
    return str(config["steps"]) if config["steps"] is not None else "default"


def _attack_name(method: str, steps: str, params: Optional[Dict] = None) -> str:
    """``PgA (T=10)``; learned attacks also show their training when it differs from the paper's."""
    notes = []
    params = params or {}
    if isinstance(params.get("step"), (int, float)):
        notes.append(f"step {params['step'] * 255:.3g}/255")
    if "epochs" in (params.get("prototype") or {}):
        notes.append(f"prototype {params['prototype']['epochs']} ep.")
    gan = params.get("gan") or {}
    if "epochs" in gan or "batches_per_epoch" in gan:
        text = f"GAN {gan.get('epochs', 100)} ep."
        if gan.get("batches_per_epoch"):
            text += f" x {gan['batches_per_epoch']} batches"
        if "width" in gan:  # a smaller generator than the paper's width 64
            text += f", width {gan['width']}"
        notes.append(text)
    return f"{display_name(method)} (T={steps}" + ("; " + ", ".join(notes) if notes else "") + ")"


def _mode(targeted: bool) -> str:
    return "targeted" if targeted else "untargeted"


class _Results:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.spec = load_spec_of(out)
        self.store = open_store(self.spec, out)
        self.runs = plan(self.spec)
        self.records = {r.key: self.store.get(r.config) for r in self.runs}
        self.models = models_of(self.spec)
        self.short = self._short_labels()
        self.model_keys = {self._mid(r.model): r.key for r in self.runs if r.role == TRAIN}

    @staticmethod
    def _mid(identity: Dict) -> Tuple:
        return model_id(identity)

    def _short_labels(self) -> Dict[Tuple, str]:
        s = self.spec
        labels = {}
        for m in self.models:
            if is_external(m):
                labels[self._mid(m)] = m["name"]
                continue
            parts = [display_name(m["hash_method"]) + f"-{m['bits']}"]
            if len(s.backbones) > 1:
                parts.append(m["backbone"])
            if len(s.datasets) > 1:
                parts.append(m["dataset"])
            labels[self._mid(m)] = " ".join(parts)
        return labels

    def label(self, identity: Dict, defense: str = "none") -> str:
        return self.short[self._mid(identity)] + ("" if defense == "none" else f" + {display_name(defense)}")

    def record(self, run) -> Optional[Dict]:
        return self.records.get(run.key)

    def runs_of(self, role: str, identity: Optional[Dict] = None, defense: Optional[str] = None) -> list:
        out = []
        for r in self.runs:
            if r.role != role:
                continue
            if identity is not None and self._mid(r.model) != self._mid(identity):
                continue
            if defense is not None and r.defense != defense:
                continue
            out.append(r)
        return out

    def train_record(self, identity: Dict) -> Optional[Dict]:
        return next((self.record(r) for r in self.runs_of(TRAIN, identity)), None)

    @property
    def finished(self) -> Tuple[int, int]:
        keys = {r.key for r in self.runs}
        return sum(self.records[k] is not None for k in keys), len(keys)


# ------------------------------------------------------------------------------------------------
# the answer: per model and defense, clean / robust / strongest, and what each defense changed


class _Robust:
    """The worst case over a set of untargeted runs of one model (and defense), with its evidence."""

    def __init__(self, res: _Results, runs: list) -> None:
        runs = [r for r in runs if not r.config["targeted"]]
        self.runs = runs
        self.recs = [res.record(r) for r in runs]
        done = [x for x in self.recs if x is not None]
        self.complete = bool(runs) and len(done) == len(runs)
        self.any = done[0] if done else None
        self.worst = worst_case([x["metrics"] for x in done]) if self.complete else None
        self.n_queries = self.any["metrics"]["n_queries"] if self.any else None

    @property
    def clean(self) -> Optional[float]:
        return self.any["metrics"]["clean_map"] if self.any else None

    @property
    def clean_pq(self) -> Optional[List[float]]:
        return _per_query(self.any, "clean_map")

    @property
    def robust(self) -> Optional[float]:
        return self.worst["map"] if self.worst else None

    @property
    def robust_pq(self) -> Optional[List[float]]:
        return self.worst["per_query"] if self.worst else None

    def strongest(self) -> Optional[Tuple[str, Dict]]:
        """The run with the lowest mAP, and its record."""
        done = [(r, x) for r, x in zip(self.runs, self.recs, strict=True) if x is not None]
        if not done:
            return None
        r, x = min(done, key=lambda p: p[1]["metrics"]["map"])
        return r.config["method"], x

    def clean_cell(self) -> str:
        return _cell(self.clean, self.clean_pq)

    def robust_cell(self) -> str:
        return _cell(self.robust, self.robust_pq)

    def strongest_cell(self) -> str:
        found = self.strongest()
        if found is None:
            return "-"
        return f"{display_name(found[0])} ({_mcell(found[1], 'map')})"


def _paired(a: Optional[Sequence[float]], b: Optional[Sequence[float]], ra: _Robust, rb: _Robust) -> Optional[np.ndarray]:
    """Per-query ``a - b`` when both are over the same queries, else None (no paired interval)."""
    if a is None or b is None or ra.any is None or rb.any is None:
        return None
    if ra.any["metrics"]["query_indices"] != rb.any["metrics"]["query_indices"]:
        return None
    return np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)


def _diff_cell(a: Optional[float], b: Optional[float], pq: Optional[np.ndarray]) -> str:
    if a is None or b is None:
        return "-"
    return _cell(a - b, None if pq is None else pq.tolist(), signed=True)


def _defense_change(res: _Results, m: Dict, name: str) -> Tuple[str, str, _Robust, _Robust]:
    """(robust mAP gained, clean mAP cost) of defense ``name`` on model ``m``, paired over the re-attack queries."""
    base = _Robust(res, res.runs_of(REATTACK, m, "none"))
    defended = _Robust(res, res.runs_of(REATTACK, m, name))
    gain = _diff_cell(defended.robust, base.robust, _paired(defended.robust_pq, base.robust_pq, defended, base))
    cost = _diff_cell(base.clean, defended.clean, _paired(base.clean_pq, defended.clean_pq, base, defended))
    return gain, cost, base, defended


def _summary(doc: _Doc, res: _Results, *, level: int = 2, title: str = "Summary") -> None:
    doc.heading(title, level)
    defenses = list(res.spec.defenses.methods)
    header = ["model", "clean mAP", "robust mAP", "strongest attack"]
    for d in defenses:
        header += [f"{display_name(d)}: robust mAP gained", f"{display_name(d)}: clean mAP cost"]
    rows, sentences = [], []
    for m in res.models:
        table = _Robust(res, res.runs_of(ATTACK, m))
        label = res.label(m)
        row = [f"**{label}**", table.clean_cell(), table.robust_cell(), table.strongest_cell()]
        if not table.runs:
            text = f"**{label}**: the grid has no untargeted attack, so no robust mAP."
        elif table.any is None:
            text = f"**{label}**: no attack has finished yet."
        else:
            names = ", ".join(display_name(r.config["method"]) for r in table.runs)
            strongest = table.strongest()
            text = (f"**{label}**: clean mAP {table.clean_cell()} on the {table.n_queries} attacked queries; "
                    + (f"robust mAP {table.robust_cell()}, the per-query worst case over {len(table.runs)} untargeted "
                       f"attack(s) ({names})" if table.complete else
                       f"robust mAP not yet known ({sum(x is not None for x in table.recs)} of {len(table.runs)} "
                       "untargeted attacks finished)")
                    + (f"; the strongest attack is {display_name(strongest[0])} (mAP {_mcell(strongest[1], 'map')})."
                       if strongest else "."))
        for d in defenses:
            gain, cost, base, defended = _defense_change(res, m, d)
            row += [gain, cost]
            if gain != "-" or cost != "-":
                attacks = ", ".join(display_name(r.config["method"]) for r in defended.runs)
                rose = base.clean is not None and defended.clean is not None and defended.clean > base.clean
                text += (f" {display_name(d)} changes the robust mAP by {gain} points (worst case over {attacks}, "
                         f"{defended.n_queries} queries) at a clean-mAP cost of {cost} points"
                         + (" (negative: its clean mAP rose)." if rose else "."))
        injection = ratio_lines(res, m)  # NAG's claim answered here too, not only in its section
        if injection:
            text += " Database injection: " + "; ".join(injection) + "."
        rows.append(row)
        sentences.append(text)
    doc.para("All figures are on the attacked queries (the same queries and target labels for every attack); "
             "the defense columns compare each defended model with the undefended one under the same re-attacks, "
             "query by query. Robust mAP: per query the lowest AP any untargeted attack reached, averaged.")
    doc.items(sentences)
    doc.table(header, rows)


def _leaderboard_rows(res: _Results, folder: Optional[str] = None) -> List[List[str]]:
    rows = []
    has_defenses = bool(res.spec.defenses.methods)
    for m in res.models:
        train = res.train_record(m)
        bits = m.get("bits") or (train["metrics"].get("bits") if train else None)
        for d in (["none"] + list(res.spec.defenses.methods)) if has_defenses else ["none"]:
            runs = res.runs_of(REATTACK, m, d) if has_defenses else res.runs_of(ATTACK, m)
            robust = _Robust(res, runs)
            if not robust.runs:
                continue
            ident = [res.short[res._mid(m)], display_name(m["dataset"]),
                     display_name(m.get("backbone") or "-") if not is_external(m) else "(own network)",
                     display_name(m.get("hash_method") or "-"), "-" if bits is None else str(bits), display_name(d)]
            rows.append(([folder] if folder is not None else []) + ident + [
                robust.clean_cell(), robust.robust_cell(), robust.strongest_cell(),
                str(len(robust.runs)), "-" if robust.n_queries is None else str(robust.n_queries)])
    return rows


LEADERBOARD_HEADER = ["model", "dataset", "backbone", "objective", "bits", "defense", "clean mAP", "robust mAP",
                      "strongest attack", "attacks", "queries"]


def _robust_sort_key(row: List[str], col: int) -> float:
    try:
        return -float(row[col].split()[0])
    except (ValueError, IndexError):
        return float("inf")


def _leaderboard(doc: _Doc, results: Sequence[Tuple[Optional[str], _Results]]) -> None:
    doc.heading("Leaderboard", 2)
    multi = results[0][0] is not None
    header = (["results"] if multi else []) + LEADERBOARD_HEADER
    rows = [row for folder, res in results for row in _leaderboard_rows(res, folder)]
    col = header.index("robust mAP")
    rows.sort(key=lambda row: _robust_sort_key(row, col))
    doc.para("One row per model and defense, most robust first (click a column header in report.html to sort by it). "
             "Models with defenses are ranked under the defenses' re-attacks (the same attacks and queries for every "
             "row of that model); models without under all untargeted attacks of the grid.")
    doc.table(header, rows, sortable=True, ident="leaderboard-table")


# ------------------------------------------------------------------------------------------------
# sections


def _attack_metrics(res: _Results) -> List[Dict]:
    return [rec["metrics"] for r in res.runs if r.role in (ATTACK, REATTACK, TRANSFER, CONVERGENCE)
            for rec in [res.record(r)] if rec is not None]


def _queries_text(res: _Results) -> str:
    """The number of queries the records attacked (a split smaller than ``queries`` gives fewer)."""
    found = sorted({m["n_queries"] for m in _attack_metrics(res) if "n_queries" in m})
    if not found:
        return str(res.spec.queries or "all")
    return " / ".join(map(str, found)) + ("" if res.spec.queries in (0, *found) else f" (of {res.spec.queries} asked for)")


def _topk_text(res: _Results) -> str:
    """The mAP cut-off the records used (the dataset's convention when the grid says "default")."""
    found = sorted({m.get("topk") or 0 for m in _attack_metrics(res)})
    if not found:
        return "the dataset's paper top-k" if res.spec.topk == "default" else str(res.spec.topk or "all")
    text = " / ".join(str(k) if k else "all" for k in found)
    return text + (" (each dataset's convention)" if res.spec.topk == "default" else "")


def _title(doc: _Doc, name: str) -> None:
    doc.heading(f"hashguard benchmark report: {name}", 1)
    doc.para(CI_NOTE)


def _setup(doc: _Doc, res: _Results, run_seconds: Optional[float], *, level: int = 2) -> None:
    s = res.spec
    done, total = res.finished
    doc.heading("Setup", level)
    machines = sorted({rec["timings"].get("machine", "?") for rec in res.records.values() if rec is not None})
    seconds = sum(
        float(rec["timings"].get("wall_seconds", 0.0)) for rec in res.records.values() if rec is not None
    )
    doc.items([
        f"hashguard {__version__}; report written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
        f"runs measured on: {'; '.join(machines) or '-'}",
        f"runs finished: {done} of {total}" + ("" if done == total else " (re-run the same command to finish the rest)"),
        f"compute in the records: {seconds / 60:.1f} min" + (f"; this invocation: {run_seconds / 60:.1f} min" if run_seconds else ""),
        f"protocol: L-inf eps {s.eps * 255:.3g}/255; {_queries_text(res)} queries drawn with seed {s.seed} (the same "
        "queries and target labels for every attack); relevance = a shared label; mAP@" + _topk_text(res)
        + "; success = P@10 with the query label < 0.5 (untargeted) or with the target label >= 0.5 (targeted)",
        "T = attack iterations used (the papers' defaults: 100 for PGD attacks, 1500-2000 for HAG, SDHA, P2P, DHTA)",
    ])
    rows = []
    for r in res.runs_of(TRAIN):
        rec = res.record(r)
        m = r.model
        rows.append([res.label(m), display_name(m["dataset"]),
                     "(own network)" if is_external(m) else display_name(m["backbone"]),
                     display_name(m.get("hash_method") or "-"),
                     "-" if not rec else "existing model" if is_external(m) else f"{rec['timings']['train_seconds']:.0f}"])
    doc.table(["model", "dataset", "backbone", "objective", "training (s)"], rows)
    doc.para("Clean mAP is reported on the attacked queries throughout (the attack records' clean codes); the "
             "training record's clean mAP over every query image is in results.csv (role `train`).")


def _attack_table(doc: _Doc, res: _Results, targeted: bool) -> None:
    metric = "t_map" if targeted else "map"
    header = ["attack"] + [res.label(m) for m in res.models]
    rows: List[List[str]] = []
    by_model = {res._mid(m): [r for r in res.runs_of(ATTACK, m) if r.config["targeted"] == targeted] for m in res.models}
    methods = list(dict.fromkeys(r.config["method"] for runs in by_model.values() for r in runs))
    if not methods:
        return
    doc.heading("Targeted attacks: t-MAP (%), higher = stronger" if targeted else
                "Untargeted attacks: mAP (%), lower = stronger", 2)
    clean_row = ["clean" + (" (t-MAP of the benign queries)" if targeted else "")]
    for m in res.models:
        recs = [res.record(r) for r in by_model[res._mid(m)]]
        rec = next((x for x in recs if x is not None), None)
        clean_row.append(_mcell(rec, "clean_t_map" if targeted else "clean_map"))
    rows.append(clean_row)
    theory_rows: List[list] = []
    for method in methods:
        row, theory, steps, params = [], [], set(), {}
        for m in res.models:
            run = next((r for r in by_model[res._mid(m)] if r.config["method"] == method), None)
            rec = res.record(run) if run else None
            row.append(_mcell(rec, metric))
            theory.append(_mcell(rec, "theory_t_map" if targeted else "theory_map") if rec else "-")
            if run:
                steps.add(_steps_label(rec, run.config))
                params = run.config["params"]
        rows.append([_attack_name(method, "/".join(sorted(steps)), params)] + row)
        if any(t != "-" for t in theory):
            same = next((t for t in theory_rows if t[1:] == theory), None)
            if same is None:
                theory_rows.append([display_name(method)] + theory)
            else:  # attacks guided by the same code (I-FGSM, FGSM, HAG: the negated clean code)
                same[0] += f", {display_name(method)}"
    if not targeted:
        robust = ["**robust (worst case over the attacks above)**"]
        for m in res.models:
            value = _Robust(res, by_model[res._mid(m)])
            robust.append(f"**{value.robust_cell()}**" if value.worst else "-")
        rows.append(robust)
    theory_rows = [[f"theory: ideal code of {row[0]}"] + row[1:] for row in theory_rows]
    doc.table(header, rows + theory_rows)
    if not targeted:
        doc.para("Robust: per query the lowest AP any attack reached, averaged (AutoAttack style, exact: every "
                 "attack ran on every query). Theory rows: the mAP of the attack's ideal code itself as the query "
                 "(the negated reference code), the bound a perfect optimiser would reach.")


def _published_rows(res: _Results) -> List[List[str]]:
    rows = []
    for r in res.runs:
        if r.role not in (ATTACK, REATTACK) or is_external(r.model):
            continue
        rec = res.record(r)
        if rec is None:
            continue
        x, m, t = rec["metrics"], r.model, r.config["targeted"]
        cells = [(r.config["method"], _mode(t), "t_map" if t else "map", "t_map" if t else "map")]
        cells.append(("clean", "clean", "t_map" if t else "map", "clean_t_map" if t else "clean_map"))
        for attack, mode, metric, field in cells:
            for p in published.matching(dataset=m["dataset"], backbone=m["backbone"], objective=m["hash_method"],
                                        bits=m["bits"], defense=r.defense, attack=attack, mode=mode, metric=metric,
                                        eps=x.get("eps", res.spec.eps), topk=x.get("topk")):
                row = [res.label(m, r.defense), "clean" if attack == "clean" else f"{display_name(attack)} ({mode})",
                       "t-MAP" if metric == "t_map" else "mAP", _mcell(rec, field), f"{p['value']:.2f}",
                       published.citation(p)]
                if row not in rows:
                    rows.append(row)
    return rows


def _published(doc: _Doc, res: _Results) -> None:
    doc.heading("Published figures beside the measured ones", 2)
    rows = _published_rows(res)
    if not rows:
        datasets = ", ".join(display_name(d) for d in published.datasets())
        doc.para(f"None of this grid's cells was measured under a protocol the seed papers report (their tables cover "
                 f"{datasets} at eps 8/255 with their objectives, backbones, bit lengths and mAP cut-offs; "
                 "the `paper` preset's grid is where they meet). Published numbers are never mixed into the measured "
                 "columns.")
        return
    doc.para("A published value is shown only where the dataset, backbone (where the paper names it), objective, "
             "bits, defense, attack, mode, budget and mAP cut-off all match; the papers drew their own queries.")
    doc.table(["model", "attack", "metric", "measured (here)", "published", "source"], rows)


def _cost_table(doc: _Doc, res: _Results) -> None:
    doc.heading("Perceptibility and cost", 2)
    for m in res.models:
        rows = []
        for r in res.runs_of(ATTACK, m):
            rec = res.record(r)
            if rec is None:
                continue
            x = rec["metrics"]
            p = x["perceptibility"]
            with_fit = x.get("seconds_per_query_with_training")
            rows.append([
                f"{display_name(r.config['method'])} ({_mode(r.config['targeted'])})", str(x["steps"]),
                f"{p['linf'] * 255:.2f}/255", f"{p['l2']:.3f}", f"{p['rmse']:.4f}", f"{x['seconds_per_query']:.4f}",
                "-" if with_fit is None else f"{with_fit:.4f}", f"{100 * x['success_rate']:.1f}", f"{x['bits_changed']:.1f}",
            ])
        if rows:
            if len(res.models) > 1:
                doc.heading(res.label(m), 3)
            doc.table(["attack", "T", "L-inf", "L2", "RMSE", "s / query", "s / query incl. training",
                       "success (%)", "bits changed"], rows)


def _defense_table(doc: _Doc, res: _Results) -> None:
    if not res.spec.defenses.methods:
        return
    doc.heading("Defenses: attacked mAP / t-MAP (%) of each adversarially trained model", 2)
    doc.para("Untargeted columns: mAP (higher = more robust); targeted columns: t-MAP (lower = more robust). "
             "The attacks are the same for every row, on the same queries.")
    for m in res.models:
        base = res.runs_of(REATTACK, m, "none")
        header = ["defense", "clean mAP"]
        header += [_attack_name(r.config["method"], _steps_label(res.record(r), r.config), r.config["params"])
                   + (" t-MAP" if r.config["targeted"] else "") for r in base]
        header.insert(2 + sum(not r.config["targeted"] for r in base), "robust (worst of these)")
        rows = []
        for name in ["none"] + list(res.spec.defenses.methods):
            runs = res.runs_of(REATTACK, m, name)
            recs = [res.record(r) for r in runs]
            robust = _Robust(res, runs)
            row = [display_name(name) if name == "none" else f"**{display_name(name)}**", robust.clean_cell()]
            row += [_mcell(x, "t_map" if r.config["targeted"] else "map") for r, x in zip(runs, recs, strict=True)]
            row.insert(2 + sum(not r.config["targeted"] for r in runs), robust.robust_cell())
            rows.append(row)
        if len(res.models) > 1:
            doc.heading(res.label(m), 3)
        doc.table(header, rows)
        extra = []
        for r in res.runs_of(DEFENSE, m):
            rec = res.record(r)
            if rec:
                d = rec["metrics"]["defense"]
                extra.append(f"{display_name(d['method'])}: {d['epochs']} epoch(s), inner attack {d['steps']} x "
                             f"{d['step'] * 255:.3g}/255 steps within eps {d['eps'] * 255:.3g}/255, "
                             f"{rec['timings']['defense_seconds']:.0f} s")
        doc.items(extra)


def _transfer_tables(doc: _Doc, res: _Results) -> None:
    runs = res.runs_of(TRANSFER)
    if not runs:
        return
    doc.heading("Transferability: rows = surrogate (where the attack was optimised), columns = victim", 2)
    for method, targeted in dict.fromkeys((r.config["method"], r.config["targeted"]) for r in runs):
        metric = "t_map" if targeted else "map"
        groups: List[List[Dict]] = []
        for m in res.models:  # models evaluated on the same data, in grid order
            group = next((g for g in groups if same_data(g[0], m)), None)
            group.append(m) if group is not None else groups.append([m])
        for models in groups:
            dataset = models[0]["dataset"]
            cells = {}
            for r in runs:
                if (r.config["method"], r.config["targeted"]) == (method, targeted) and same_data(r.model, models[0]):
                    cells[(res._mid(r.surrogate), res._mid(r.model))] = _mcell(res.record(r), metric)
            rows = [[res.label(s)] + [cells.get((res._mid(s), res._mid(v)), "-") for v in models] for s in models]
            doc.para(f"**{display_name(method)}** ({'targeted, t-MAP' if targeted else 'untargeted, mAP'}), {dataset}; "
                     "the diagonal is the white-box attack")
            doc.table(["surrogate \\ victim"] + [res.label(v) for v in models], rows)


# ------------------------------------------------------------------------------------------------
# sanity flags


def sanity_flags(res: _Results) -> Dict[str, List[str]]:
    """Warnings a reader should see before trusting the tables, grouped per model (and defense),
    without duplicates: failed and ineffective attacks, robust above clean, curves still falling
    at their last T, transfer beating white-box, attacks far from their theory rows (one line per
    defended model, where that is expected)."""
    flags: Dict[str, List[str]] = {}
    far_defended: Dict[str, List[str]] = {}

    def add(label: str, text: str) -> None:
        group = flags.setdefault(label, [])
        if text not in group:
            group.append(text)

    seen = set()
    for r in res.runs:
        rec = res.record(r)
        if rec is None or r.role not in (ATTACK, REATTACK, TRANSFER) or r.key in seen:
            continue
        seen.add(r.key)
        x = rec["metrics"]
        t = r.config["targeted"]
        label = res.label(r.model, r.defense)
        what = "t-MAP" if t else "mAP"
        name = f"{display_name(r.config['method'])} ({_mode(t)})"
        if r.role == TRANSFER and r.config["surrogate"]:
            white = next((w for w in res.runs_of(TRANSFER, r.model) if w.config["surrogate"] is None
                          and (w.config["method"], w.config["targeted"]) == (r.config["method"], t)), None)
            wrec = res.record(white) if white else None
            if wrec is not None:
                gap = (x["t_map"] - wrec["metrics"]["t_map"]) if t else (wrec["metrics"]["map"] - x["map"])
                if gap > TRANSFER_MARGIN and r.surrogate is not None:
                    add(label, f"transfer from {res.label(r.surrogate)} beats the white-box {name} by {100 * gap:.1f} "
                               "points: the white-box gradients may be masked or the attack broken")
            continue
        value = x["t_map" if t else "map"]
        clean = x["clean_t_map" if t else "clean_map"]
        gained = (value - clean) if t else (clean - value)  # how far the attack moved the metric its way
        if gained < 0:
            add(label, f"{name} {'lowered' if t else 'raised'} {what} from {_pct(clean)} to {_pct(value)}: "
                       "the attack failed")
            continue
        if gained < NO_EFFECT:
            add(label, f"{name} {'raised' if t else 'lowered'} {what} by only {100 * gained:.2f} points "
                       f"({_pct(clean)} -> {_pct(value)}): ineffective here")
            continue
        theory = x.get("theory_t_map" if t else "theory_map")
        iterative = int(x.get("steps") or 1) > 1  # one-step and one-pass attacks are not expected to get close
        if iterative and theory is not None and (theory - value if t else value - theory) > FAR_FROM_THEORY:
            if r.defense != "none":
                far_defended.setdefault(label, []).append(display_name(r.config["method"]))
            else:
                add(label, f"{name} ends {100 * abs(value - theory):.1f} points from its theory row "
                           f"({_pct(value)} vs {_pct(theory)}): too few iterations, or masked gradients")
    for label, methods in far_defended.items():
        names = list(dict.fromkeys(methods))
        add(label, f"{', '.join(names)} {'ends' if len(names) == 1 else 'end'} far (> {100 * FAR_FROM_THEORY:.0f} points) "
                   f"from {'its theory row' if len(names) == 1 else 'their theory rows'}: expected of a robust model, "
                   "but masked gradients look the same (check transfer and the mAP-vs-T curves)")
    for m in res.models:
        for d in ["none"] + list(res.spec.defenses.methods):
            sets = [res.runs_of(ATTACK, m)] if d == "none" else []
            sets.append(res.runs_of(REATTACK, m, d))
            for runs in sets:
                robust = _Robust(res, runs)
                if robust.worst is None or robust.clean is None:
                    continue
                diff = _paired(robust.robust_pq, robust.clean_pq, robust, robust)
                if diff is not None:
                    ci = _ci(diff.tolist())
                    above = ci is not None and ci[0] > 0
                else:
                    ci = _ci(robust.robust_pq)
                    above = ci is not None and ci[0] > robust.clean
                if above:
                    add(res.label(m, d), f"robust mAP {robust.robust_cell()} is above the clean mAP {robust.clean_cell()} "
                                         "beyond the 95 % interval: every attack raised the mAP; the attacks failed "
                                         "on this model")
    for m in res.models:
        for targeted in (False, True):
            runs = [r for r in res.runs_of(CONVERGENCE, m) if r.config["targeted"] == targeted]
            for method in dict.fromkeys(r.config["method"] for r in runs):
                pts = sorted((x["metrics"]["steps"], x["metrics"]["t_map" if targeted else "map"])
                             for r in runs if r.config["method"] == method and (x := res.record(r)) is not None)
                if len(pts) < 2:
                    continue
                (t0, v0), (t1, v1) = pts[-2], pts[-1]
                still = (v1 - v0) if targeted else (v0 - v1)
                if still > CONVERGED:
                    what = "t-MAP still rising" if targeted else "mAP still falling"
                    add(res.label(m), f"{display_name(method)} ({_mode(targeted)}) not converged: {what} at the last T "
                                      f"({_pct(v0)} at T={t0} -> {_pct(v1)} at T={t1}): raise T")
    return flags


def _flags(doc: _Doc, res: _Results, *, level: int = 2, title: str = "Sanity flags") -> None:
    doc.heading(title, level)
    flags = sanity_flags(res)
    if not flags:
        doc.para("None.")
        return
    for label, texts in flags.items():
        doc.heading(label, level + 1)
        doc.items(texts)


# ------------------------------------------------------------------------------------------------
# figures


def _figures(doc: _Doc, res: _Results) -> None:
    doc.heading("Figures", 2)
    for m in res.models:
        for targeted in (False, True):
            runs = [r for r in res.runs_of(ATTACK, m) if r.config["targeted"] == targeted]
            recs = [(r, x) for r in runs if (x := res.record(r)) is not None and "curves" in x["metrics"]]
            if not recs:
                continue
            what = "t-" if targeted else ""
            pr = {"clean": _pr(recs[0][1]["metrics"]["curves"]["clean"])}
            pn = {"clean": _pn(recs[0][1]["metrics"]["curves"]["clean"])}
            for r, x in recs:
                label = f"{display_name(r.config['method'])} (T={x['metrics']['steps']})"
                pr[label] = _pr(x["metrics"]["curves"]["adversarial"])
                pn[label] = _pn(x["metrics"]["curves"]["adversarial"])
            mode = _mode(targeted)
            title = f"{res.label(m)}, {mode}"
            doc.figure(figures.figure_png_bytes(figures.pr_curves(pr, title=f"{what}PR by Hamming radius: {title}")),
                       f"{what}precision-recall curves (Hamming radius 0..K) of each {mode} attack, {res.label(m)}")
            doc.figure(figures.figure_png_bytes(figures.precision_at_n_curves(pn, title=f"{what}P@N: {title}")),
                       f"{what}precision@N of each {mode} attack, {res.label(m)}")
        for targeted in (False, True):
            runs = [r for r in res.runs_of(CONVERGENCE, m) if r.config["targeted"] == targeted]
            curves, theory = {}, {}
            for method in dict.fromkeys(r.config["method"] for r in runs):
                pts = sorted((x["metrics"]["steps"], x["metrics"]["t_map" if targeted else "map"],
                              x["metrics"].get("theory_t_map" if targeted else "theory_map"))
                             for r in runs if r.config["method"] == method and (x := res.record(r)) is not None)
                if pts:
                    curves[display_name(method)] = ([p[0] for p in pts], [p[1] for p in pts])
                    if pts[-1][2] is not None:
                        theory[display_name(method)] = pts[-1][2]
            if curves:
                n = runs[0].config["queries"]
                ylabel = "t-MAP (%)" if targeted else "mAP (%)"
                fig = figures.map_vs_iterations(curves, theory, title=f"{res.label(m)}, {n} queries", ylabel=ylabel)
                doc.figure(figures.figure_png_bytes(fig),
                           f"{ylabel[:-4]} against PGD iterations ({_mode(targeted)}), "
                           f"{res.label(m)}, {n} queries; dotted: theory rows")
        for r in res.runs_of(ATTACK, m):
            rec = res.record(r)
            path = path_inside(res.out, rec["metrics"].get("example_figure"), "figure") if rec else None
            if path is not None:  # only a file inside the results folder: records can be edited
                mode = _mode(r.config["targeted"])
                doc.figure(path.read_bytes(),
                           f"retrieval examples, {display_name(r.config['method'])} ({mode}), {res.label(m)}: benign "
                           "query, adversarial query, perturbation x(0.5/eps), then the top-10 of each; green = "
                           + ("carries the target label" if mode == "targeted" else "relevant") + ", red = not")


def _pr(curves: Dict) -> Tuple[List[float], List[float]]:
    return curves["pr"]["precision"], curves["pr"]["recall"]


def _pn(curves: Dict) -> Tuple[List[int], List[float]]:
    return curves["p_at_n"]["n"], curves["p_at_n"]["precision"]


# ------------------------------------------------------------------------------------------------
# exports: one row per record


EXPORT_FIELDS = ["results", "key", "role", "model", "dataset", "backbone", "objective", "bits", "defense", "attack",
                 "mode", "surrogate", "T", "eps", "queries", "metric", "value", "ci_low", "ci_high",
                 "clean_map", "clean_ci_low", "clean_ci_high", "seconds"]


def export_rows(res: _Results, folder: Optional[str] = None) -> List[Dict[str, Any]]:
    """One dict per record of the results folder (in plan order): what it measured, its main metric
    (mAP, t-MAP for targeted attacks, the clean mAP of a training record) with its interval, and its
    seconds. Values are fractions (not percent)."""
    rows: List[Dict[str, Any]] = []
    seen = set()
    for r in res.runs:
        rec = res.record(r)
        if rec is None or r.key in seen:
            continue
        seen.add(r.key)
        x, m = rec["metrics"], r.model
        row: Dict[str, Any] = {k: None for k in EXPORT_FIELDS}
        row.update(results=folder if folder is not None else (res.out.name or str(res.out)), key=r.key, role=r.role,
                   model=res.short.get(res._mid(m)), dataset=m.get("dataset"), backbone=m.get("backbone"),
                   objective=m.get("hash_method"), bits=m.get("bits") or x.get("bits"), defense=r.defense,
                   seconds=rec["timings"].get("wall_seconds"))
        if r.role == SURROGATE:
            row.update(model=surrogate_label(m), metric="clean_map", value=x.get("clean_map"))
        elif r.role == INJECTION:  # the headline figure of NAG's threat model; clean_map: the unperturbed images'
            row.update(attack=display_name(r.config["method"]), mode="injection",
                       surrogate=surrogate_label(r.surrogate) if r.surrogate is not None else None, T=x.get("steps"),
                       eps=x.get("eps"), queries=x.get("n_queries"), metric="radius_success", value=x.get("radius_success"),
                       clean_map=x.get("clean_radius_success"))
        elif r.role == TRAIN:
            row.update(metric="clean_map", value=x.get("clean_map"))
        elif r.role != DEFENSE:
            t = bool(r.config["targeted"])
            metric = "t_map" if t else "map"
            ci = _ci(_per_query(rec, metric))
            clean_ci = _ci(_per_query(rec, "clean_map"))
            row.update(attack=display_name(r.config["method"]), mode=_mode(t),
                       surrogate=res.short[res._mid(r.surrogate)] if r.surrogate is not None and r.config["surrogate"] else None,
                       T=x.get("steps"), eps=x.get("eps"), queries=x.get("n_queries"), metric=metric, value=x.get(metric),
                       ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, clean_map=x.get("clean_map"),
                       clean_ci_low=clean_ci[0] if clean_ci else None, clean_ci_high=clean_ci[1] if clean_ci else None)
        rows.append(row)
    return rows


def _csv_text(rows: Iterable[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def _jsonl_text(rows: Iterable[Dict[str, Any]]) -> str:
    return "".join(json.dumps(row, sort_keys=False) + "\n" for row in rows)


# ------------------------------------------------------------------------------------------------
# entry points


def build_report(out: str | Path, *, run_seconds: Optional[float] = None) -> _Doc:
    res = _Results(Path(out))
    doc = _Doc()
    _title(doc, res.spec.name)
    _summary(doc, res)
    _leaderboard(doc, [(None, res)])
    _flags(doc, res)
    _setup(doc, res, run_seconds)
    _attack_table(doc, res, targeted=False)
    _attack_table(doc, res, targeted=True)
    _published(doc, res)
    _defense_table(doc, res)
    _transfer_tables(doc, res)
    injection_section(doc, res)
    perturbation_section(doc, res)
    _cost_table(doc, res)
    _figures(doc, res)
    doc.title = f"hashguard report: {res.spec.name}"
    return doc


def _write_doc(out: Path, doc: _Doc, rows: List[Dict[str, Any]]) -> Dict[str, str]:
    for block in doc.blocks:
        if block[0] == "fig":
            atomic_write_bytes(out / "report_files" / block[3], block[1])
    md = atomic_write_text(out / "report.md", doc.markdown())
    page = atomic_write_text(out / "report.html", doc.html(doc.title))
    csv_path = atomic_write_text(out / "results.csv", _csv_text(rows))
    jsonl = atomic_write_text(out / "results.jsonl", _jsonl_text(rows))
    return {"md": str(md), "html": str(page), "csv": str(csv_path), "jsonl": str(jsonl)}


_OUTPUTS = ("report.md", "report.html", "results.csv", "results.jsonl")


def write_report(out: str | Path, *, run_seconds: Optional[float] = None) -> Dict[str, str]:
    """Write ``report.md`` (+ ``report_files/*.png``), ``report.html``, ``results.csv`` and
    ``results.jsonl`` into ``out``; return their paths."""
    out = Path(out)
    check_output_dir(out, files=_OUTPUTS, subdirs=("report_files",))
    doc = build_report(out, run_seconds=run_seconds)
    return _write_doc(out, doc, export_rows(_Results(out)))


def _folder_names(dirs: Sequence[Path]) -> List[str]:
    names = [d.name or str(d) for d in dirs]
    return [str(d) if names.count(n) > 1 else n for d, n in zip(dirs, names, strict=True)]


def build_combined_report(dirs: Sequence[str | Path]) -> Tuple[_Doc, List[Dict[str, Any]]]:
    """The report over several results folders: each folder's summary and flags, one leaderboard
    across all of them, and the records of all of them for the exports."""
    paths = [Path(d) for d in dirs]
    names = _folder_names(paths)
    results = [(name, _Results(p)) for name, p in zip(names, paths, strict=True)]
    doc = _Doc()
    _title(doc, " + ".join(names))
    doc.heading("Summary", 2)
    for name, res in results:
        _summary(doc, res, level=3, title=f"{name} ({res.spec.name})")
    _leaderboard(doc, results)
    doc.heading("Sanity flags", 2)
    for name, res in results:
        flags = sanity_flags(res)
        doc.heading(name, 3)
        if not flags:
            doc.para("None.")
        for label, texts in flags.items():
            doc.items([f"**{label}**: {text}" for text in texts])
    doc.heading("Sources", 2)
    doc.items([f"{name}: `{p}` (its own report.md / report.html has every table and figure)"
               for name, p in zip(names, paths, strict=True)])
    doc.title = "hashguard report: " + " + ".join(names)
    rows = [row for name, res in results for row in export_rows(res, name)]
    return doc, rows


def write_combined_report(dirs: Sequence[str | Path], out: str | Path) -> Dict[str, str]:
    """Write the combined report of ``dirs`` (report.md, report.html, results.csv, results.jsonl) into
    ``out``, a folder of its own: the results folders themselves are only read."""
    out = Path(out)
    resolved = {Path(d).resolve() for d in dirs}
    if out.resolve() in resolved:
        raise ValueError(f"--out {out} is one of the results folders; give a folder of its own for the combined report")
    check_output_dir(out, files=_OUTPUTS, subdirs=("report_files",))
    doc, rows = build_combined_report(dirs)
    out.mkdir(parents=True, exist_ok=True)
    return _write_doc(out, doc, rows)


def report_command(dirs: Sequence[str], *, out: Optional[str] = None, fmt: str = "md") -> str:
    """What ``hashguard report DIR [DIR ...] [--out DIR] [--format md|csv|json]`` does; returns the
    text to print. One folder: the report is written into it (``--out`` elsewhere if given). Several:
    ``--out`` is required and receives the combined report. ``csv`` / ``json`` print results.csv /
    results.jsonl to stdout (the files are written too)."""
    if fmt not in ("md", "csv", "json"):
        raise ValueError(f"--format must be md, csv or json, got {fmt!r}")
    if len(dirs) > 1 and out is None:
        raise ValueError("several results folders need --out DIR: the folder the combined report is written to "
                         "(the results folders are only read)")
    if len(dirs) == 1 and (out is None or Path(out).resolve() == Path(dirs[0]).resolve()):
        written = write_report(dirs[0])
    else:
        written = write_combined_report(dirs, out)  # type: ignore[arg-type]
    if fmt == "csv":
        return Path(written["csv"]).read_text().rstrip("\n")
    if fmt == "json":
        return Path(written["jsonl"]).read_text().rstrip("\n")
    return f"report: {written['html']} (and {written['md']}; records as {written['csv']}, {written['jsonl']})"


__all__ = ["build_report", "build_combined_report", "export_rows", "report_command", "sanity_flags",
           "write_combined_report", "write_report", "EXPORT_FIELDS"]
