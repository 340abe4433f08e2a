"""``docs/reproduction.md``: each seed paper's main claims checked against bench records.

One command regenerates the page from results folders of ``hashguard bench``::

    python -m hashguard.bench.reproduction --from runs/quick runs/sdha-quick runs/nag-transfer-quick \
        runs/prosgan-quick runs/injection-quick --write docs/reproduction.md

For every claim of :data:`hashguard.bench.claims.CLAIMS` it finds the two measures in the folders
(the first folder and model that has each, folders run under the claim's paper protocol first, so
``runs/prosgan-quick`` decides ProS-GAN's claims even after ``runs/quick``), compares them and writes one of:

- **holds**: the comparison goes the paper's way;
- **does not hold**: it goes the other way, with both figures and the gap;
- **cannot be checked here**: the claim's own reason (no record of hashguard can decide it);
- **not measured**: no folder has the records; the command that makes them.

Where both measures have per-query APs of the same queries, the gap gets a 95 % paired bootstrap
interval and a verdict whose interval holds 0 says so ("not separable"). Records made under
another protocol than the paper's are used, and the row says which protocol they came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .claims import CLAIMS, SEEDS, Claim, Measure

HOLDS, FAILS, UNCHECKABLE, UNMEASURED = "holds", "does not hold", "cannot be checked here", "not measured"


class Found:
    """One measured value: where it came from, its value and (for records) its per-query scores."""

    def __init__(self, value: float, folder: str, model: str, protocol: str, per_query: Optional[List[float]] = None,
                 queries: Optional[List[int]] = None):
        self.value, self.folder, self.model, self.protocol = value, folder, model, protocol
        self.per_query, self.queries = per_query, queries


def _percent_metric(metric: str) -> bool:
    return metric in ("map", "t_map", "radius_success")


def _find_record(results: Sequence[Tuple[str, Any]], m: Measure) -> Optional[Found]:
    for folder, res in results:
        for r in res.runs:
            c = r.config
            if r.role != m.role or c.get("method") != m.method or bool(c.get("targeted")) != m.targeted:
                continue
            if r.defense != m.defense:
                continue
            if m.role in ("transfer", "injection") and not c.get("surrogate"):
                continue  # the white-box diagonal is not a transfer
            if m.source and c.get("source") != m.source:
                continue
            rec = res.record(r)
            if rec is None or rec["metrics"].get(m.metric) is None:
                continue
            x = rec["metrics"]
            # per-query APs are of the record's own metric: t-AP when targeted, AP otherwise
            own = m.metric == ("t_map" if m.targeted else "map")
            per_query = (x.get("per_query") or {}).get("ap") if own else None
            return Found(float(x[m.metric]), folder, res.label(r.model, r.defense), res.spec.protocol,
                         per_query, x.get("query_indices"))
    return None


def _find_sweep(results: Sequence[Tuple[str, Any]], m: Measure) -> Optional[Found]:
    from .perturbation import perturbation_rows

    for folder, res in results:
        for row in perturbation_rows(res):
            if row["method"] != m.method or row["targeted"] != m.targeted or not row["points"]:
                continue
            if m.kind == "l2_to_goal":
                return Found(np.nan if row["l2_to_goal"] is None else row["l2_to_goal"], folder,
                             res.label(row["model"]) + f", goal {100 * row['goal']:g} %", res.spec.protocol)
            if m.kind == "within_budget":
                value = row["within"].get(m.budget)
                if m.budget not in row["within"]:
                    continue  # this folder's set has other budgets
                return Found(np.nan if value is None else value, folder, res.label(row["model"]), res.spec.protocol)
            return Found(row["final"][1], folder, res.label(row["model"]), res.spec.protocol)
    return None


def find(results: Sequence[Tuple[str, Any]], m: Measure) -> Optional[Found]:
    """The first measurement of ``m`` in the folders (``[(name, report._Results), ...]``)."""
    if m.kind == "record":
        return _find_record(results, m)
    if m.kind in ("l2_to_goal", "final_map", "within_budget"):
        return _find_sweep(results, m)
    raise ValueError(f"unknown measure kind {m.kind!r}; valid: record, l2_to_goal, final_map, within_budget")


def _fmt(m: Measure, f: Found) -> str:
    if m.kind == "l2_to_goal":
        return "not reached" if np.isnan(f.value) else f"{f.value:.3f}"
    if m.kind == "within_budget" and np.isnan(f.value):
        return "no run that small"
    if m.kind in ("final_map", "within_budget") or _percent_metric(m.metric):
        return f"{100 * f.value:.1f} %"
    return f"{f.value:.4g} s" if "seconds" in m.metric else f"{f.value:.4g}"


def _paired_ci(a: Found, b: Found) -> Optional[Tuple[float, float]]:
    from .stats import bootstrap_ci

    if a.per_query is None or b.per_query is None or a.queries is None or a.queries != b.queries:
        return None
    if len(a.per_query) != len(b.per_query) or not a.per_query:
        return None
    return bootstrap_ci(np.asarray(a.per_query, dtype=np.float64) - np.asarray(b.per_query, dtype=np.float64))


def judge(claim: Claim, results: Sequence[Tuple[str, Any]]) -> Dict[str, Any]:
    """``{"verdict", "measured", "why"}`` of one claim against the folders."""
    if claim.unmeasurable is not None:
        return {"verdict": UNCHECKABLE, "measured": "–", "why": claim.unmeasurable}
    assert claim.left is not None and claim.right is not None
    results = sorted(results, key=lambda folder: folder[1].spec.protocol != claim.protocol)  # stable: paper's first
    a, b = find(results, claim.left), find(results, claim.right)
    if a is None or b is None:
        missing = [m.describe() for m, f in ((claim.left, a), (claim.right, b)) if f is None]
        todo = f"run `{claim.run}`" if claim.run.split(" ")[0] in ("hashguard", "python") else claim.run
        return {"verdict": UNMEASURED, "measured": "–", "why": f"no record of {' and '.join(missing)}: {todo}"}
    measured = f"{claim.left.describe()} {_fmt(claim.left, a)}; {claim.right.describe()} {_fmt(claim.right, b)}"
    where = sorted({f"{f.model} in {f.folder}, protocol {f.protocol}"
                    + ("" if f.protocol == claim.protocol else f" (the paper's: {claim.protocol})") for f in (a, b)})
    if claim.left.kind == "within_budget" and (np.isnan(a.value) or np.isnan(b.value)):
        return {"verdict": UNMEASURED, "measured": measured,
                "why": "no swept run stayed within the budget: add weaker strengths (" + "; ".join(where) + ")"}
    if np.isnan(a.value) or np.isnan(b.value):  # a sweep that never reached the goal
        if np.isnan(a.value) and np.isnan(b.value):
            return {"verdict": UNMEASURED, "measured": measured,
                    "why": "neither reached the goal: widen the sweep (" + "; ".join(where) + ")"}
        holds = np.isnan(b.value) if claim.relation == "<" else np.isnan(a.value)
        why = ("the right-hand method never reached the goal" if np.isnan(b.value)
               else "the left-hand method never reached the goal")
        return {"verdict": HOLDS if holds else FAILS, "measured": measured, "why": why + " (" + "; ".join(where) + ")"}
    holds = a.value < b.value if claim.relation == "<" else a.value > b.value
    gap = a.value - b.value
    in_points = claim.left.kind in ("final_map", "within_budget") or (
        claim.left.kind == "record" and _percent_metric(claim.left.metric))
    unit = " points" if in_points else ""
    scale = 100 if unit else 1
    why = f"gap {scale * gap:+.{1 if unit else 3}f}{unit}"
    ci = _paired_ci(a, b)
    if ci is not None:
        why += f", 95 % CI [{scale * ci[0]:+.1f}, {scale * ci[1]:+.1f}] over {len(a.per_query or [])} paired queries"
        if ci[0] <= 0 <= ci[1]:
            why += ": not separable at this many queries"
    if a.value == b.value:
        holds = False
        why = "equal"
    if claim.ratio and holds and b.value > 0:  # the paper claims a factor, not only an order
        factor = a.value / b.value if claim.relation == ">" else b.value / a.value
        holds = factor >= claim.ratio
        why += f"; ratio {factor:.2f}x, the paper's at least {claim.ratio:g}x"
    return {"verdict": HOLDS if holds else FAILS, "measured": measured, "why": why + " (" + "; ".join(where) + ")"}


def _protocol_line(name: str) -> str:
    from .protocols import get_protocol

    if name == "default":
        return "hashguard's default protocol (docs/design.md#evaluation-protocol)"
    p = get_protocol(name)
    topk = "the whole database" if p.topk is None else f"top-{p.topk}"
    return (f"`{name}` ({p.description}): mAP over {topk}, {p.queries} queries, {p.target_rule} targets, anchors from "
            f"{p.anchor_source}, eps {p.eps:.4g} (`hashguard list protocols`)")


def _folders_table(results: Sequence[Tuple[str, Any]]) -> List[str]:
    lines = ["| folder | grid | protocol | runs finished | models |", "|---|---|---|---|---|"]
    for folder, res in results:
        done, total = res.finished
        models = ", ".join(res.label(m) for m in res.models)
        lines.append(f"| `{folder}` | {res.spec.name} | {res.spec.protocol} | {done} of {total} | {models} |")
    return lines


def render(results: Sequence[Tuple[str, Any]], command: str) -> str:
    """The markdown page for the folders ``[(name, report._Results), ...]``."""
    from .. import __version__

    out = [
        "# Reproduction: which claims of the five seed papers hold here",
        "",
        f"Generated from bench records by `{command}` (hashguard {__version__}); do not edit by hand, regenerate.",
        "Each claim is one comparison from the paper's main tables. **holds** / **does not hold**: the measured",
        "figures go the paper's way or not (with the gap, and a 95 % paired bootstrap interval where both runs",
        "share their queries); **cannot be checked here**: why no record of hashguard can decide it; **not",
        "measured**: the command that makes the records. Figures are from the built-in `mnist-mosaic` data and",
        "its small CNN at the presets' reduced iteration counts (see each folder's report.md), not the papers'",
        "datasets and backbones: a claim that holds here is consistent with the paper, one that does not is a",
        "measured disagreement on this setting, not a refutation.",
        "",
        "## Records read",
        "",
        *(_folders_table(results) if results else ["(no results folder given: every measured claim reads \"not measured\")"]),
        "",
    ]
    counts: Dict[str, int] = {}
    for seed, title in SEEDS.items():
        claims = [c for c in CLAIMS if c.paper == seed]
        out += [f"## {seed}", "", f"{title}.", ""]
        for proto in dict.fromkeys(c.protocol for c in claims):
            out.append(f"- Paper protocol: {_protocol_line(proto)}.")
        out += ["", "| table | claim | measured | verdict | why |", "|---|---|---|---|---|"]
        for c in claims:
            j = judge(c, results)
            counts[j["verdict"]] = counts.get(j["verdict"], 0) + 1
            why = j["why"] + (f"; {c.note}" if c.note else "")
            out.append(f"| {c.table} | {c.claim} | {j['measured']} | **{j['verdict']}** | {why} |")
        out.append("")
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in (HOLDS, FAILS, UNCHECKABLE, UNMEASURED))
    out.insert(out.index("## Records read"), f"Verdicts: {summary}.\n")
    return "\n".join(out).rstrip() + "\n"


def load_results(folders: Sequence[str]) -> List[Tuple[str, Any]]:
    """``[(folder, report._Results), ...]``; ``InputError`` for a folder that is not a bench folder."""
    from ..errors import InputError
    from .report import _Results

    out = []
    for f in folders:
        path = Path(f)
        if not (path / "spec.json").is_file():
            raise InputError(f"{f} is not a results folder of `hashguard bench` (no spec.json); pass folders "
                             "written by hashguard bench --out DIR")
        out.append((f, _Results(path)))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashguard.bench.reproduction",
                                     description="Write docs/reproduction.md from bench results folders.")
    parser.add_argument("--from", dest="folders", nargs="*", default=[], metavar="DIR",
                        help="results folders of hashguard bench, searched in order")
    parser.add_argument("--write", default=None, metavar="FILE", help="write the page here (default: print it)")
    args = parser.parse_args(argv)
    from .._atomic import atomic_write_text
    from ..errors import InputError

    try:
        results = load_results(args.folders)
    except (InputError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "python -m hashguard.bench.reproduction --from " + " ".join(args.folders)
    if args.write:
        command += f" --write {args.write}"
    text = render(results, command)
    if args.write:
        atomic_write_text(Path(args.write), text)
        print(f"wrote {args.write}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
