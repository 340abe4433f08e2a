"""The benchmark report: ``report.md`` and a self-contained ``report.html`` from a results directory.

Built only from the records (no model is loaded, nothing is attacked), laid out by the grid of
``spec.json`` through :func:`hashguard.bench.plan.plan`, so a partly finished run gives a partial
report with "-" for the runs still missing:

1. untargeted mAP: attacks x models (PgA Table 1 layout), the robust (worst-case) row, and the
   theory rows (the mAP of each attack's ideal code);
2. targeted t-MAP: the same for the targeted attacks;
3. perceptibility and cost per attack: iterations, L-inf, L2, RMSE, seconds per query (with the
   training of learned attacks), success rate, bits changed;
4. defenses x attacks (SAAT Tables III-IV layout): clean mAP, each re-attack, robust mAP, t-MAP;
5. transferability matrices (surrogate x victim) when the grid has transfer runs;
6. sanity flags: a transfer attack beating the white-box one, an attack ending far from its
   theory row, an attack that does not move the metric;
7. figures: PR and P@N curves per attack, mAP against PGD iterations, retrieval examples.

``report.md`` refers to PNG files in ``report_files/``; ``report.html`` embeds every image as a
data URI, so it is one file that opens anywhere.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .. import __version__
from .._atomic import atomic_write_bytes, atomic_write_text
from .._paths import check_output_dir, path_inside
from . import figures
from .plan import (
    ATTACK,
    CONVERGENCE,
    DEFENSE,
    REATTACK,
    TRAIN,
    TRANSFER,
    is_external,
    model_id,
    models_of,
    plan,
    same_data,
)
from .results import load_spec_of, open_store
from .robust import worst_case

FAR_FROM_THEORY = 0.25  # flag an attack ending more than 25 mAP points from its theory row
TRANSFER_MARGIN = 0.01  # flag a transfer attack beating the white-box one by more than 1 point
NO_EFFECT = 0.01  # flag an attack that moves the metric by less than 1 point


# ------------------------------------------------------------------------------------------------
# document blocks, rendered to Markdown and to HTML


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

    def table(self, header: List[str], rows: List[List[str]]) -> None:
        if rows:
            self.blocks.append(("table", header, rows))

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
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
            elif kind == "p":
                body.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "fig":
                uri = "data:image/png;base64," + base64.b64encode(block[1]).decode("ascii")
                cap = html.escape(block[2])
                body.append(f'<figure><img src="{uri}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
            "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
            "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
            "figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:0 3px}"
        )
        return (
            f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` inside a cell or paragraph, as HTML (everything else escaped)."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


# ------------------------------------------------------------------------------------------------
# numbers


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _steps_label(record: Optional[Dict], config: Dict) -> str:
    if record is not None:
        return str(record["metrics"]["steps"])
    return str(config["steps"]) if config["steps"] is not None else "default"


def _attack_name(method: str, steps: str, params: Optional[Dict] = None) -> str:
    """``pga (T=10)``; learned attacks also show their training when it differs from the paper's."""
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
        notes.append(text)
    return f"{method} (T={steps}" + ("; " + ", ".join(notes) if notes else "") + ")"


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
            parts = [m["hash_method"].upper() + f"-{m['bits']}"]
            if len(s.backbones) > 1:
                parts.append(m["backbone"])
            if len(s.datasets) > 1:
                parts.append(m["dataset"])
            labels[self._mid(m)] = " ".join(parts)
        return labels

    def label(self, identity: Dict) -> str:
        return self.short[self._mid(identity)]

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

    @property
    def finished(self) -> Tuple[int, int]:
        keys = {r.key for r in self.runs}
        return sum(self.records[k] is not None for k in keys), len(keys)


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


def _header(doc: _Doc, res: _Results, run_seconds: Optional[float]) -> None:
    s = res.spec
    done, total = res.finished
    doc.heading(f"hashguard benchmark report: {s.name}", 1)
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
    trained = [res.record(r) for r in res.runs_of(TRAIN)]
    rows = [[res.label(r.model), _pct(rec["metrics"]["clean_map"]) if rec else "-",
             "-" if not rec else "existing model" if is_external(r.model) else f"{rec['timings']['train_seconds']:.0f}"]
            for r, rec in zip(res.runs_of(TRAIN), trained, strict=True)]
    doc.heading("Models", 2)
    doc.table(["model", "clean mAP (%), all queries", "training (s)"], rows)


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
        clean_row.append(_pct(rec["metrics"]["clean_t_map" if targeted else "clean_map"]) if rec else "-")
    rows.append(clean_row)
    theory_rows: List[list] = []
    for method in methods:
        row, theory, steps, params = [], [], set(), {}
        for m in res.models:
            run = next((r for r in by_model[res._mid(m)] if r.config["method"] == method), None)
            rec = res.record(run) if run else None
            row.append(_pct(rec["metrics"].get(metric)) if rec else "-")
            theory.append(_pct(rec["metrics"].get("theory_t_map" if targeted else "theory_map")) if rec else "-")
            if run:
                steps.add(_steps_label(rec, run.config))
                params = run.config["params"]
        rows.append([_attack_name(method, "/".join(sorted(steps)), params)] + row)
        if any(t != "-" for t in theory):
            same = next((t for t in theory_rows if t[1:] == theory), None)
            if same is None:
                theory_rows.append([method] + theory)
            else:  # attacks guided by the same code (I-FGSM, FGSM, HAG: the negated clean code)
                same[0] += f", {method}"
    if not targeted:
        robust = ["**robust (worst case over the attacks above)**"]
        for m in res.models:
            value = _robust_of(res, by_model[res._mid(m)])
            robust.append(f"**{_pct(value['map'])}**" if value else "-")
        rows.append(robust)
    theory_rows = [[f"theory: ideal code of {row[0]}"] + row[1:] for row in theory_rows]
    doc.table(header, rows + theory_rows)
    if not targeted:
        doc.para("Robust: per query the lowest AP any attack reached, averaged (AutoAttack style, exact: every "
                 "attack ran on every query). Theory rows: the mAP of the attack's ideal code itself as the query "
                 "(the negated reference code), the bound a perfect optimiser would reach.")


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
                f"{r.config['method']} ({'targeted' if r.config['targeted'] else 'untargeted'})", str(x["steps"]),
                f"{p['linf'] * 255:.2f}/255", f"{p['l2']:.3f}", f"{p['rmse']:.4f}", f"{x['seconds_per_query']:.4f}",
                "-" if with_fit is None else f"{with_fit:.4f}", f"{100 * x['success_rate']:.1f}", f"{x['bits_changed']:.1f}",
            ])
        if rows:
            if len(res.models) > 1:
                doc.heading(res.label(m), 3)
            doc.table(["attack", "T", "L-inf", "L2", "RMSE", "s / query", "s / query incl. training",
                       "success (%)", "bits changed"], rows)


def _robust_of(res: _Results, runs) -> Optional[Dict]:
    """The worst case over the untargeted runs, or None until every one of them has a record (a
    worst case over some of the attacks would overstate robustness)."""
    recs = [res.record(r) for r in runs if not r.config["targeted"]]
    if not recs or any(x is None for x in recs):
        return None
    return worst_case([x["metrics"] for x in recs if x is not None])


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
            any_rec = next((x for x in recs if x is not None), None)
            row = [name if name == "none" else f"**{name}**", _pct(any_rec["metrics"]["clean_map"]) if any_rec else "-"]
            row += [_pct(x["metrics"]["t_map" if r.config["targeted"] else "map"]) if x else "-" for r, x in zip(runs, recs, strict=True)]
            robust = _robust_of(res, runs)
            row.insert(2 + sum(not r.config["targeted"] for r in runs), _pct(robust["map"]) if robust else "-")
            rows.append(row)
        if len(res.models) > 1:
            doc.heading(res.label(m), 3)
        doc.table(header, rows)
        extra = []
        for r in res.runs_of(DEFENSE, m):
            rec = res.record(r)
            if rec:
                d = rec["metrics"]["defense"]
                extra.append(f"{d['method']}: {d['epochs']} epoch(s), inner attack {d['steps']} x {d['step'] * 255:.3g}/255 "
                             f"steps within eps {d['eps'] * 255:.3g}/255, {rec['timings']['defense_seconds']:.0f} s")
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
                    rec = res.record(r)
                    cells[(res._mid(r.surrogate), res._mid(r.model))] = _pct(rec["metrics"][metric]) if rec else "-"
            rows = [[res.label(s)] + [cells.get((res._mid(s), res._mid(v)), "-") for v in models] for s in models]
            doc.para(f"**{method}** ({'targeted, t-MAP' if targeted else 'untargeted, mAP'}), {dataset}; "
                     "the diagonal is the white-box attack")
            doc.table(["surrogate \\ victim"] + [res.label(v) for v in models], rows)


def sanity_flags(res: _Results) -> List[str]:
    """Warnings a reader should see before trusting the tables (see the module docstring)."""
    flags, seen = [], set()
    for r in res.runs:
        rec = res.record(r)
        if rec is None or r.role not in (ATTACK, REATTACK, TRANSFER) or r.key in seen:
            continue
        seen.add(r.key)
        x = rec["metrics"]
        t = r.config["targeted"]
        name = f"{r.config['method']} ({'targeted' if t else 'untargeted'}) on {res.label(r.model)}" + (
            f" defended by {r.defense}" if r.defense != "none" else "")
        if r.role == TRANSFER and r.config["surrogate"]:
            white = next((w for w in res.runs_of(TRANSFER, r.model) if w.config["surrogate"] is None
                          and (w.config["method"], w.config["targeted"]) == (r.config["method"], t)), None)
            wrec = res.record(white) if white else None
            if wrec is not None:
                gap = (x["t_map"] - wrec["metrics"]["t_map"]) if t else (wrec["metrics"]["map"] - x["map"])
                if gap > TRANSFER_MARGIN and r.surrogate is not None:
                    flags.append(f"transfer from {res.label(r.surrogate)} beats the white-box {name} by {100 * gap:.1f} "
                                 "points: the white-box gradients may be masked or the attack broken")
            continue
        theory = x.get("theory_t_map" if t else "theory_map")
        value = x["t_map" if t else "map"]
        iterative = int(x.get("steps") or 1) > 1  # one-step and one-pass attacks are not expected to get close
        if iterative and theory is not None and (theory - value if t else value - theory) > FAR_FROM_THEORY:
            flags.append(f"{name} ends {100 * abs(value - theory):.1f} points from its theory row "
                         f"({_pct(value)} vs {_pct(theory)}): robust model, too few iterations, or masked gradients")
        clean = x["clean_t_map" if t else "clean_map"]
        if (value - clean if t else clean - value) < NO_EFFECT:
            flags.append(f"{name} moves the {'t-MAP' if t else 'mAP'} by less than 1 point ({_pct(clean)} -> {_pct(value)})")
    return flags


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
                label = f"{r.config['method']} (T={x['metrics']['steps']})"
                pr[label] = _pr(x["metrics"]["curves"]["adversarial"])
                pn[label] = _pn(x["metrics"]["curves"]["adversarial"])
            mode = "targeted" if targeted else "untargeted"
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
                    curves[method] = ([p[0] for p in pts], [p[1] for p in pts])
                    if pts[-1][2] is not None:
                        theory[method] = pts[-1][2]
            if curves:
                n = runs[0].config["queries"]
                ylabel = "t-MAP (%)" if targeted else "mAP (%)"
                fig = figures.map_vs_iterations(curves, theory, title=f"{res.label(m)}, {n} queries", ylabel=ylabel)
                doc.figure(figures.figure_png_bytes(fig),
                           f"{ylabel[:-4]} against PGD iterations ({'targeted' if targeted else 'untargeted'}), "
                           f"{res.label(m)}, {n} queries; dotted: theory rows")
        for r in res.runs_of(ATTACK, m):
            rec = res.record(r)
            path = path_inside(res.out, rec["metrics"].get("example_figure"), "figure") if rec else None
            if path is not None:  # only a file inside the results folder: records can be edited
                mode = "targeted" if r.config["targeted"] else "untargeted"
                doc.figure(path.read_bytes(),
                           f"retrieval examples, {r.config['method']} ({mode}), {res.label(m)}: benign query, adversarial "
                           "query, perturbation x(0.5/eps), then the top-10 of each; green = "
                           + ("carries the target label" if mode == "targeted" else "relevant") + ", red = not")


def _pr(curves: Dict) -> Tuple[List[float], List[float]]:
    return curves["pr"]["precision"], curves["pr"]["recall"]


def _pn(curves: Dict) -> Tuple[List[int], List[float]]:
    return curves["p_at_n"]["n"], curves["p_at_n"]["precision"]


def build_report(out: str | Path, *, run_seconds: Optional[float] = None) -> _Doc:
    res = _Results(Path(out))
    doc = _Doc()
    _header(doc, res, run_seconds)
    _attack_table(doc, res, targeted=False)
    _attack_table(doc, res, targeted=True)
    _defense_table(doc, res)
    _transfer_tables(doc, res)
    doc.heading("Sanity flags", 2)
    flags = sanity_flags(res)
    doc.items(flags) if flags else doc.para("None.")
    _cost_table(doc, res)
    _figures(doc, res)
    doc.title = f"hashguard report: {res.spec.name}"
    return doc


def write_report(out: str | Path, *, run_seconds: Optional[float] = None) -> Dict[str, str]:
    """Write ``report.md`` (+ ``report_files/*.png``) and ``report.html`` into ``out``; return their paths."""
    out = Path(out)
    check_output_dir(out, files=("report.md", "report.html"), subdirs=("report_files",))
    doc = build_report(out, run_seconds=run_seconds)
    for block in doc.blocks:
        if block[0] == "fig":
            atomic_write_bytes(out / "report_files" / block[3], block[1])
    md = atomic_write_text(out / "report.md", doc.markdown())
    page = atomic_write_text(out / "report.html", doc.html(doc.title))
    return {"md": str(md), "html": str(page)}


__all__ = ["build_report", "sanity_flags", "write_report"]
