"""SDHA's perturbation experiments (Lu et al., ICMR 2021, Tables 2-4) read off a ``[perturbation]`` sweep.

Each method of the ``[perturbation]`` set runs at several strengths (SDHA: the weight alpha K of
Eq. 1; the others: the L-inf eps), every query stopping once its AP reaches 0 (1 if targeted), as
Sec. 5.1 does for SDHA, HAG and DHTA. Each run gives one point: (mean L2 of the perturbation over
the queries, mAP or t-MAP). From a method's points:

- **L2 to reach the goal** (Tables 2-3): the smallest mean L2 among the points whose mAP is at most
  ``map_goal`` (t-MAP at least ``t_map_goal``); none: the goal is not reached (the paper underlines
  such cells), reported with the method's best point.
- **mAP within an L2 budget** (Table 4): the best mAP among the points whose mean L2 is at most the
  budget; none: no point is that small. The paper reads the mAP at the iteration where the L2
  reaches the budget inside one run; a sweep gives the same kind of trade-off curve without
  logging every iteration, so a cell here is a lower envelope over the sweep's runs.
- **Final** (Table 4's last column): the strongest point's mAP and mean L2.

The paper's "L2" is the Euclidean norm of each image's perturbation in [0, 1] pixel units,
averaged over the queries (``perceptibility()["l2"]``); values depend on the image size (the
paper's images are 224 x 224 x 3, mnist-mosaic's far smaller), so compare methods, not datasets.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

Point = Tuple[float, float]  # (mean L2, mAP or t-MAP)


def metric_of(targeted: bool) -> str:
    return "t_map" if targeted else "map"


def reaches(value: float, goal: float, targeted: bool) -> bool:
    """Whether a (t-)mAP meets the goal: at most it (untargeted), at least it (targeted)."""
    return value >= goal if targeted else value <= goal


def l2_to_goal(points: Sequence[Point], goal: float, targeted: bool) -> Optional[float]:
    """The smallest mean L2 among the points that reach ``goal``; None when none does."""
    hits = [l2 for l2, value in points if reaches(value, goal, targeted)]
    return min(hits) if hits else None


def best_within(points: Sequence[Point], budget: float, targeted: bool) -> Optional[float]:
    """The strongest (t-)mAP among the points whose mean L2 is at most ``budget``; None when none is."""
    inside = [value for l2, value in points if l2 <= budget]
    if not inside:
        return None
    return max(inside) if targeted else min(inside)


def strongest(points: Sequence[Point], targeted: bool) -> Optional[Point]:
    """The point with the strongest (t-)mAP (the smaller L2 on a tie)."""
    if not points:
        return None
    key = (lambda p: (-p[1], p[0])) if targeted else (lambda p: (p[1], p[0]))
    return min(points, key=key)


def sweep_points(res: Any, identity: Dict[str, Any], method: str, targeted: bool) -> List[Tuple[Any, Point]]:
    """``[(swept value, (mean L2, mAP)), ...]`` of the finished perturbation runs of one method, in
    sweep order; ``res`` is the report's results (``report._Results``)."""
    from .plan import PERTURBATION

    out = []
    for r in res.runs_of(PERTURBATION, identity):
        if r.config["method"] != method or bool(r.config["targeted"]) != targeted:
            continue
        rec = res.record(r)
        if rec is None:
            continue
        m = rec["metrics"]
        out.append((r.extra.get("value"), (float(m["perceptibility"]["l2"]), float(m[metric_of(targeted)]))))
    return out


def _num(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def perturbation_section(doc: Any, res: Any) -> None:
    """The report's SDHA section: per model and mode, the L2-to-goal table, the mAP-within-budget
    table, the sweep's points and the L2-against-mAP figure. Nothing when the grid has no
    ``[perturbation]`` set."""
    from . import figures
    from .names import display_name

    p = res.spec.perturbation
    if not (p.methods or p.targeted):
        return
    doc.heading("Perturbation size against mAP (SDHA Tables 2-4)", 2)
    doc.para(
        f"Each method ran at several strengths (SDHA: the weight alpha K of Eq. 1; the others: eps), every query "
        f"stopping at AP 0 (1 if targeted), on {p.queries} queries. L2 = the Euclidean norm of each image's "
        "perturbation (pixels in [0, 1]) averaged over the queries. \"L2 to reach\": the smallest mean L2 of a run "
        "reaching the goal (SDHA Tables 2-3; *not reached* gives the best run instead). \"within L2 <= b\": the "
        "best mAP of the runs whose mean L2 is at most b (Table 4, read off the sweep rather than inside one run)."
    )
    for m in res.models:
        for targeted in (False, True):
            methods = p.targeted if targeted else p.methods
            if not methods:
                continue
            goal = p.t_map_goal if targeted else p.map_goal
            what = "t-MAP" if targeted else "mAP"
            relation = ">=" if targeted else "<="
            header = ["attack", "swept", f"L2 to reach {what} {relation} {100 * goal:.0f}%"]
            header += [f"{what} (%) within L2 <= {b:g}" for b in p.budgets] + [f"final {what} (%) / L2"]
            rows, curves, detail = [], {}, []
            for method in methods:
                pts = sweep_points(res, m, method, targeted)
                name = display_name(method)
                swept = p.sweep_of(method)[0]
                if not pts:
                    rows.append([name, swept, "not measured"] + ["–"] * (len(p.budgets) + 1))
                    continue
                points = [pt for _, pt in pts]
                need = l2_to_goal(points, goal, targeted)
                best = strongest(points, targeted)
                assert best is not None
                reach = _num(need) if need is not None else f"*not reached* (best {_pct(best[1])}% at {best[0]:.3f})"
                row = [name, swept, reach] + [_pct(best_within(points, b, targeted)) for b in p.budgets]
                rows.append(row + [f"{_pct(best[1])} / {best[0]:.3f}"])
                order = sorted(points)
                curves[name] = ([pt[0] for pt in order], [pt[1] for pt in order])
                detail.append(f"{name}: " + ", ".join(f"{swept} {v} → L2 {pt[0]:.3f}, {what} {_pct(pt[1])}%"
                                                     for v, pt in pts))
            doc.heading(f"{res.label(m)}, {'targeted' if targeted else 'untargeted'}", 3)
            doc.table(header, rows)
            if detail:
                doc.items(detail)
            if curves:
                fig = figures.l2_vs_map(curves, goal=goal, budgets=p.budgets,
                                        title=f"{res.label(m)}, {'targeted' if targeted else 'untargeted'}",
                                        ylabel=f"{what} (%)")
                doc.figure(figures.figure_png_bytes(fig),
                           f"{what} against the mean L2 of the perturbation, one point per swept strength, "
                           f"{res.label(m)}; dashed: the goal {relation} {100 * goal:.0f}%, dotted: the L2 budgets")


def perturbation_rows(res: Any) -> List[Dict[str, Any]]:
    """One dict per (model, mode, method) with the derived figures (fractions), for other readers
    (``bench.reproduction``): ``l2_to_goal``, ``goal``, ``within`` {budget: mAP}, ``final``."""
    p = res.spec.perturbation
    rows = []
    for m in res.models:
        for method, targeted in p.runs():
            points = [pt for _, pt in sweep_points(res, m, method, targeted)]
            goal = p.t_map_goal if targeted else p.map_goal
            rows.append({
                "model": m, "method": method, "targeted": targeted, "goal": goal, "points": points,
                "l2_to_goal": l2_to_goal(points, goal, targeted) if points else None,
                "within": {b: best_within(points, b, targeted) for b in p.budgets} if points else {},
                "final": strongest(points, targeted),
            })
    return rows


__all__ = ["best_within", "l2_to_goal", "perturbation_rows", "perturbation_section", "reaches", "strongest",
           "sweep_points"]
