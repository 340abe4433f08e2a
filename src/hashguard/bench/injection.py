"""The bench's database-injection runs (NAG, Xiao & Wang, CVPR 2021, Sec. 1 and 4): one run, its
record, and the report's "Injection" section.

An ``[injection]`` run (``bench.plan``: role ``injection``) poisons the database of one of the
grid's trained models (the victim) with ``per_target`` images per target category, crafted by a
targeted attack toward the category on a surrogate: the victim itself (white-box) or a surrogate
model of another backbone / seed trained by the grid (black-box, the paper's threat model). It
calls :func:`hashguard.injection.evaluate_injection`, which appends the poisoned codes to a copy of
the victim's database codes in memory, so the victim's checkpoint, its records and the dataset are
never touched. The record keeps the figures of that function (per target category and their
means, the unperturbed baseline ``clean_*``) with the poisoned ids reduced to their count.

The report's section: per victim a table (rows: method x attacker images x white-/black-box;
columns: radius-r success, top-k success and t-MAP-style mAP, each as poisoned / unperturbed
baseline), the ratio of NAG's black-box radius success to the PGD-style baseline's (I-FGSM) when
both ran (the paper's claim: 1.2-3x, Sec. 1), and a bar chart of the radius success.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

BASELINE = "ifgsm"  # the PGD-style baseline NAG's claim is measured against (NAG Sec. 1: "compared to PGD")
CLAIM = (1.2, 3.0)  # NAG Sec. 1: "1.2-3x improvements of black-box transferability compared with ... PGD"


def run_injection(ctx: Any, run: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(metrics, timings)`` of one injection run in the runner's context ``ctx`` (its loaded
    splits and models): :func:`hashguard.injection.evaluate_injection` with the run's settings."""
    from ..injection import evaluate_injection

    c = run.config
    splits = ctx.splits(c)
    victim = ctx.model(c["model"])
    surrogate = ctx.model(c["surrogate"]) if c["surrogate"] else None
    params = dict(c["params"])
    params["eps"] = ctx.spec.eps
    if c["steps"] is not None:
        params["steps"] = c["steps"]
    start = time.perf_counter()
    record = evaluate_injection(
        victim, splits, c["method"], surrogate=surrogate, targets=c["targets"] or None, per_target=c["per_target"],
        source=c["source"], params=params, radius=c["radius"], k=c["k"], topk=ctx.topk(splits) or 0,
        queries=c["queries"] or None, mine=c["mine"], noise_proxy=c["noise_proxy"], seed=ctx.spec.seed,
        batch_size=c["batch_size"], progress=ctx.progress,
    )
    return summarise(record), {"attack_seconds": record["seconds"], "injection_seconds": time.perf_counter() - start}


def summarise(record: Dict[str, Any]) -> Dict[str, Any]:
    """The bench record of an :func:`~hashguard.injection.evaluate_injection` result: the same
    figures, with each list of poisoned ids replaced by its count (``n_poisoned``)."""
    out = {k: v for k, v in record.items() if k not in ("poisoned_ids", "per_target_metrics", "seconds")}
    out["n_poisoned"] = len(record["poisoned_ids"])
    out["per_target_metrics"] = [
        {**{k: v for k, v in p.items() if k != "poisoned_ids"}, "n_poisoned": len(p["poisoned_ids"])}
        for p in record["per_target_metrics"]
    ]
    return out


# ------------------------------------------------------------------------------------------------
# report


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _pair(metrics: Dict[str, Any], key: str) -> str:
    return f"{_pct(metrics.get(key))} / {_pct(metrics.get('clean_' + key))}"


def threat_label(run: Any) -> str:
    from .plan import surrogate_label

    return "white-box" if run.surrogate is None else f"black-box from {surrogate_label(run.surrogate)}"


def claim_ratios(res: Any, victim: Dict[str, Any]) -> List[Tuple[str, str, Optional[float], float, float, float]]:
    """``(threat, source, ratio, nag, baseline, unperturbed)`` of every black-box setting of
    ``victim`` where both NAG and the baseline have a record: the ratio of their mean radius
    success (None when the baseline's is 0) and the unperturbed images' radius success."""
    from .plan import INJECTION

    found: Dict[Tuple[str, str], Dict[str, float]] = {}
    for r in res.runs_of(INJECTION, victim):
        rec = res.record(r)
        if rec is None or r.surrogate is None or r.config["method"] not in ("nag", BASELINE):
            continue
        values = found.setdefault((threat_label(r), r.config["source"]), {})
        values[r.config["method"]] = rec["metrics"]["radius_success"]
        values["unperturbed"] = rec["metrics"]["clean_radius_success"]
    out = []
    for (threat, source), values in found.items():
        if "nag" in values and BASELINE in values:
            base = values[BASELINE]
            out.append((threat, source, values["nag"] / base if base > 0 else None, values["nag"], base, values["unperturbed"]))
    return out


NO_TRANSFER = 0.01  # both within 1 point of the unperturbed images: nothing transferred, the ratio means little


def ratio_lines(res: Any, victim: Dict[str, Any]) -> List[str]:
    """One sentence per black-box setting of ``victim`` with both NAG and the baseline: their radius
    success, the unperturbed images', and the ratio against NAG's claim (the section and the summary)."""
    from .names import display_name

    radius = res.spec.injection.radius
    lines = []
    for threat, source, ratio, nag, base, clean in claim_ratios(res, victim):
        verdict = ("no baseline success to divide by" if ratio is None else
                   f"**{ratio:.2f}x**, {'inside' if CLAIM[0] <= ratio <= CLAIM[1] else 'outside'} the paper's "
                   f"{CLAIM[0]:g}-{CLAIM[1]:g}x")
        if max(nag, base) - clean < NO_TRANSFER:
            verdict += (f"; but neither is {100 * NO_TRANSFER:g} point above the unperturbed images: nothing "
                        "transferred, so the ratio compares noise")
        lines.append(f"NAG / {display_name(BASELINE)} black-box radius-{radius} success, {threat}, {source} "
                     f"images: {_pct(nag)}% / {_pct(base)}% (unperturbed images: {_pct(clean)}%) = {verdict}")
    return lines


def injection_section(doc: Any, res: Any) -> None:
    """The report's "Injection" section (module docstring); nothing without ``[injection]`` runs."""
    from .figures import figure_png_bytes
    from .names import display_name
    from .plan import INJECTION, SURROGATE, surrogate_label

    runs = res.runs_of(INJECTION)
    if not runs:
        return
    inj = res.spec.injection
    doc.heading("Database injection (NAG's threat model)", 2)
    doc.para(
        f"The attacker perturbs {inj.per_target} images of its own per target category toward the category on a "
        "surrogate (the victim itself: white-box; a model of another backbone or seed: black-box), and they are "
        "appended to a copy of the victim's database; the victim's benign queries of the category are then "
        f"scored. radius-{inj.radius}: share of those queries with a poisoned image within Hamming radius "
        f"{inj.radius}; top-{inj.k}: with one among their first {inj.k} results; t-MAP: mAP with the poisoned "
        "images of the category as the relevant items. Each cell: poisoned / unperturbed attacker images "
        "(the baseline), in %, averaged over the target categories. Attacker images: train = in-distribution "
        "(the training split, never carrying the target), noise = out-of-distribution (smooth noise)."
    )
    surrogates = []
    for r in res.runs_of(SURROGATE):
        rec = res.record(r)
        surrogates.append(f"surrogate {surrogate_label(r.model)}: " + (
            "not trained yet" if rec is None else
            f"clean mAP {_pct(rec['metrics']['clean_map'])}%, trained in {rec['timings'].get('train_seconds', 0):.0f} s"))
    doc.items(surrogates)
    for victim in res.models:
        victim_runs = res.runs_of(INJECTION, victim)
        if not victim_runs:
            continue
        header = ["attack", "images", "threat", f"radius-{inj.radius} success (%)", f"top-{inj.k} success (%)",
                  "t-MAP (%)", "surrogate hit (%)", "RMSE", "poisoned"]
        rows: List[List[str]] = []
        bars: Dict[str, Dict[str, float]] = {}
        for r in victim_runs:
            rec = res.record(r)
            name = display_name(r.config["method"]) + f" (T={r.config['steps'] if r.config['steps'] is not None else 'default'})"
            if rec is None:
                rows.append([name, r.config["source"], threat_label(r), "not run"] + ["–"] * 5)
                continue
            m = rec["metrics"]
            rows.append([name, r.config["source"], threat_label(r), _pair(m, "radius_success"), _pair(m, "topk_success"),
                         _pair(m, "t_map"), _pct(m.get("surrogate_radius_hit")), f"{m['perceptibility']['rmse']:.4f}",
                         str(m["n_poisoned"])])
            group = f"{'white-box' if r.surrogate is None else 'black-box'}, {r.config['source']}"
            bars.setdefault(group, {"unperturbed": m["clean_radius_success"]})[display_name(r.config["method"])] = \
                m["radius_success"]
        doc.heading(f"Injection into {res.label(victim)}", 3)
        doc.table(header, rows)
        doc.items(ratio_lines(res, victim))
        if bars:
            fig = injection_bars(bars, f"Injection into {res.label(victim)}", f"radius-{inj.radius} success (%)")
            doc.figure(figure_png_bytes(fig, dpi=80), f"radius-{inj.radius} success of the injection runs into "
                                                      f"{res.label(victim)} (and with unperturbed images)")


def injection_bars(groups: Dict[str, Dict[str, float]], title: str, ylabel: str):
    """A grouped bar chart: one group per ``groups`` key, one bar per (method -> share in [0, 1])."""
    import numpy as np

    from .figures import _finish, _new_figure, series_style

    names = list(dict.fromkeys(n for bars in groups.values() for n in bars))
    fig = _new_figure((max(4.0, 1.6 * len(groups) + 1.5), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(groups))
    for i, name in enumerate(names):
        heights = [100 * groups[g].get(name, np.nan) for g in groups]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, heights, width, label=name, color=series_style(i)["color"])
    ax.set_xticks(x)
    ax.set_xticklabels(list(groups), fontsize=8)
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3, axis="y")
    return _finish(fig, ax, "", ylabel, title)


__all__ = ["BASELINE", "NO_TRANSFER", "claim_ratios", "injection_bars", "injection_section", "run_injection", "summarise"]
