"""Figures for the benchmark report, built from already-computed numbers and images.

Every function takes plain data (numpy arrays, torch tensors or lists; nothing is computed here:
no model, no attack, no metric) and returns a :class:`matplotlib.figure.Figure` drawn on its own
Agg canvas, never touching pyplot's global state, so they are safe in threads, tests and headless
runs. Save one with ``fig.savefig(path)``, or embed it in a self-contained HTML page with
:func:`figure_data_uri`.

    pr_curves              precision-recall curves, one line per attack (``retrieval.pr_curve``)
    precision_at_n_curves  P@N curves, one line per attack (``retrieval.precision_at_n``)
    map_vs_iterations      mAP against PGD iterations (log x), dotted theory lines
    retrieval_grid         query / adversarial query / perturbation, then the top retrieved images
                           for each, framed green (relevant) or red (not)
    figure_png_bytes       the PNG bytes of a figure
    figure_data_uri        ``"data:image/png;base64,..."`` for an ``<img src=...>``

Bad inputs (mismatched lengths, values outside [0, 1], wrong image shapes) raise ``ValueError``.
"""

from __future__ import annotations

import base64
import io
import math
import numbers
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "pr_curves",
    "precision_at_n_curves",
    "map_vs_iterations",
    "l2_vs_map",
    "retrieval_grid",
    "figure_png_bytes",
    "figure_data_uri",
    "series_style",
    "RELEVANT_COLOR",
    "IRRELEVANT_COLOR",
]

RELEVANT_COLOR = "#2ca02c"  # green frame: the retrieved item is relevant (targeted: carries the target label)
IRRELEVANT_COLOR = "#d62728"  # red frame: it is not
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# every series of a figure gets its own colour AND marker: tab20's 20 colours with 7 markers, whose
# periods are coprime, so the first 140 series never repeat a (colour, marker) pair and the first 20
# never repeat a colour (readable in grey print and for colour-blind readers through the markers)
_TAB20 = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def series_style(i: int) -> dict[str, Any]:
    """``{"color": ..., "marker": ...}`` of the i-th series of a figure (distinct pairs for i < 140)."""
    return {"color": _TAB20[i % len(_TAB20)], "marker": _MARKERS[i % len(_MARKERS)]}


def _markevery(n: int) -> int:
    return max(1, n // 12)


# --------------------------------------------------------------------------------------------
# input checks


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device; torch is not imported here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_title(title: Any) -> str:
    if not isinstance(title, str):
        raise ValueError(f"title must be a str, got {type(title).__name__}")
    return title


def _check_curves(curves: Any, what: str) -> Mapping:
    if not isinstance(curves, Mapping):
        raise ValueError(f"curves must be a dict of name -> {what}, got {type(curves).__name__}")
    if not curves:
        raise ValueError(f"curves is empty: give at least one name -> {what}")
    return curves


def _pair(value: Any, name: str, what: str) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"curve {name!r} must be a pair {what}, got {type(value).__name__}")
    return value[0], value[1]


def _vector(values: Any, name: str) -> np.ndarray:
    try:
        arr = _to_numpy(values).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers, got {values!r:.80}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _unit(arr: np.ndarray, name: str) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (fractions, not percent), got values in [{lo:.4g}, {hi:.4g}]")
    return arr


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what} have different lengths: {len(a)} and {len(b)}")


def _images(x: Any, name: str, ndim: int, shape_text: str) -> np.ndarray:
    arr = _to_numpy(x)
    if arr.ndim != ndim or arr.shape[ndim - 3] != 3:
        raise ValueError(f"{name} must be a {shape_text} array of RGB images, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floating point in [0, 1], got dtype {arr.dtype}; divide uint8 images by 255")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (pixel units), got values in [{lo:.4g}, {hi:.4g}]")
    return arr


def _marks(marks: Any, name: str, shape: tuple[int, int]) -> np.ndarray:
    arr = _to_numpy(marks)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape (N, k) = {shape}, matching the retrieved images; got {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be booleans (True = relevant), got dtype {arr.dtype} with other values")
        arr = arr.astype(bool)
    return arr


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------------------------
# curves


def pr_curves(curves: Mapping[str, tuple[Any, Any]], title: str = "") -> Figure:
    """Precision-recall curves, one line per attack (or per model, defense, ...).

    Args:
        curves: name -> ``(precision, recall)``, exactly what :func:`hashguard.retrieval.pr_curve`
            returns (``by="radius"`` or ``by="rank"``): two 1-D arrays of the same length in [0, 1].
        title: the axes title.

    Returns:
        A Figure with one axes holding one line per entry (recall on x, precision on y), in the
        dict's order, with a legend.
    """
    curves = _check_curves(curves, "(precision, recall)")
    title = _check_title(title)
    data = []
    for name, value in curves.items():
        p, r = _pair(value, name, "(precision, recall)")
        p = _unit(_vector(p, f"precision of {name!r}"), f"precision of {name!r}")
        r = _unit(_vector(r, f"recall of {name!r}"), f"recall of {name!r}")
        _same_length(p, r, f"precision and recall of {name!r}")
        data.append((str(name), p, r))
    return _line_figure([(name, r, p) for name, p, r in data], "recall", "precision", title, xlim=(0, 1.02))


def _line_figure(series: List[tuple[str, np.ndarray, np.ndarray]], xlabel: str, ylabel: str, title: str, *,
                 xlim: Optional[tuple[float, float]] = None) -> Figure:
    """One axes with one line per ``(name, x, y)`` (its own colour and marker), y in [0, 1.02],
    grid and legend: the frame the PR and P@N figures share."""
    fig = _new_figure((5, 4))
    ax = fig.add_subplot()
    for i, (name, x, y) in enumerate(series):
        ax.plot(x, y, ms=4, markevery=_markevery(len(y)), label=name, **series_style(i))
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    return _finish(fig, ax, xlabel, ylabel, title)


def precision_at_n_curves(curves: Mapping[str, tuple[Any, Any]], title: str = "") -> Figure:
    """P@N curves, one line per attack.

    Args:
        curves: name -> ``(ns, precisions)``: the N values passed to
            :func:`hashguard.retrieval.precision_at_n` (positive) and the array it returns
            (in [0, 1]), of the same length.
        title: the axes title.

    Returns:
        A Figure with one axes holding one line (with markers) per entry and a legend.
    """
    curves = _check_curves(curves, "(ns, precisions)")
    title = _check_title(title)
    data = []
    for name, value in curves.items():
        ns, p = _pair(value, name, "(ns, precisions)")
        ns = _vector(ns, f"ns of {name!r}")
        if (ns <= 0).any():
            raise ValueError(f"ns of {name!r} must be positive, got {ns.tolist()}")
        p = _unit(_vector(p, f"precisions of {name!r}"), f"precisions of {name!r}")
        _same_length(ns, p, f"ns and precisions of {name!r}")
        data.append((str(name), ns, p))
    return _line_figure(data, "N (top retrieved)", "precision@N", title)


def map_vs_iterations(
    curves: Mapping[str, tuple[Any, Any]],
    theory: Mapping[str, float] | None = None,
    title: str = "",
    *,
    ylabel: str = "mAP (%)",
) -> Figure:
    """mAP against the number of attack iterations, on a log x axis, with dotted theory lines.

    Args:
        curves: name -> ``(steps, maps)``: positive iteration counts and the mAP (a fraction in
            [0, 1]) reached with each, of the same length. Plotted in percent.
        theory: optional name -> the mAP of the attack's ideal codes (fraction in [0, 1]), drawn as
            a dotted horizontal line in the colour of the curve of the same name. Every name must
            be in ``curves``; curves without an entry get no line.
        title: the axes title.
        ylabel: the y axis label (say which mAP: ``"mAP@1000 (%)"``, t-MAP for targeted attacks).

    Returns:
        A Figure with one axes: one line per curve, then one dotted line per theory entry.
    """
    curves = _check_curves(curves, "(steps, maps)")
    title = _check_title(title)
    if not isinstance(ylabel, str):
        raise ValueError(f"ylabel must be a str, got {type(ylabel).__name__}")
    theory = {} if theory is None else theory
    if not isinstance(theory, Mapping):
        raise ValueError(f"theory must be a dict of name -> mAP or None, got {type(theory).__name__}")
    unknown = [name for name in theory if name not in curves]
    if unknown:
        raise ValueError(f"theory names {unknown} have no curve; curves are {list(curves)}")
    data = []
    for name, value in curves.items():
        steps, maps = _pair(value, name, "(steps, maps)")
        steps = _vector(steps, f"steps of {name!r}")
        if (steps <= 0).any():
            raise ValueError(f"steps of {name!r} must be positive (log axis), got {steps.tolist()}")
        maps = _unit(_vector(maps, f"maps of {name!r}"), f"maps of {name!r}")
        _same_length(steps, maps, f"steps and maps of {name!r}")
        level = None
        if name in theory:
            t = theory[name]
            if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 <= float(t) <= 1.0:
                raise ValueError(f"theory of {name!r} must be a number in [0, 1], got {t!r}")
            level = float(t)
        data.append((str(name), steps, maps, level))
    fig = _new_figure((6, 4))
    ax = fig.add_subplot()
    colors = []
    for i, (name, steps, maps, _) in enumerate(data):
        (line,) = ax.plot(steps, maps * 100, label=name, **series_style(i))
        colors.append(line.get_color())
    for (_, _, _, level), color in zip(data, colors, strict=True):
        if level is not None:
            ax.axhline(level * 100, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    return _finish(fig, ax, "PGD iterations T", ylabel, title)


def _finish(fig: Figure, ax: Any, xlabel: str, ylabel: str, title: str) -> Figure:
    """The axis labels, title and legend every line figure here ends with; a tight layout."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def l2_vs_map(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    goal: float | None = None,
    budgets: Sequence[float] = (),
    title: str = "",
    ylabel: str = "mAP (%)",
) -> Figure:
    """mAP against the mean L2 size of the perturbation (SDHA Tables 2-4), one marked line per method.

    Args:
        curves: name -> ``(l2s, maps)``: non-negative mean L2 sizes and the mAP (a fraction in
            [0, 1]) of each run, of the same length. Plotted in percent.
        goal: a mAP (fraction) drawn as a dashed horizontal line (the preset mAP of Tables 2-3).
        budgets: L2 budgets drawn as dotted vertical lines (Table 4).
        title, ylabel: the axes title and y label.
    """
    curves = _check_curves(curves, "(l2s, maps)")
    title = _check_title(title)
    fig = _new_figure((6, 4))
    ax = fig.add_subplot()
    for i, (name, value) in enumerate(curves.items()):
        l2s, maps = _pair(value, name, "(l2s, maps)")
        l2s = _vector(l2s, f"l2s of {name!r}")
        if (l2s < 0).any():
            raise ValueError(f"l2s of {name!r} must be >= 0, got {l2s.tolist()}")
        maps = _unit(_vector(maps, f"maps of {name!r}"), f"maps of {name!r}")
        _same_length(l2s, maps, f"l2s and maps of {name!r}")
        order = np.argsort(l2s, kind="stable")
        ax.plot(l2s[order], maps[order] * 100, label=str(name), **series_style(i))
    if goal is not None:
        ax.axhline(float(goal) * 100, color="0.3", ls="--", lw=1)
    for b in budgets:
        ax.axvline(float(b), color="0.6", ls=":", lw=1)
    return _finish(fig, ax, "mean L2 of the perturbation", ylabel, title)


# --------------------------------------------------------------------------------------------
# image grid


def _show(ax, image_chw: np.ndarray) -> None:
    ax.imshow(np.transpose(image_chw, (1, 2, 0)), vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax, color: str) -> None:
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(3)


def retrieval_grid(
    query: Any,
    adv_query: Any,
    perturbation_gain: float,
    clean_top: Any,
    adv_top: Any,
    clean_marks: Any,
    adv_marks: Any,
    title: str = "",
) -> Figure:
    """One row per example: query, adversarial query, amplified perturbation, then the top-k.

    Columns: the benign query, the adversarial query, the perturbation shown as
    ``clip((adv_query - query) * perturbation_gain + 0.5, 0, 1)`` (grey = unchanged), the top-k
    database images retrieved for the benign query, then those for the adversarial query. Each
    retrieved image is framed :data:`RELEVANT_COLOR` (green) when its mark is True and
    :data:`IRRELEVANT_COLOR` (red) otherwise; for a targeted attack, pass as marks whether each
    item carries the target label.

    Args:
        query, adv_query: ``(N, 3, H, W)`` float images in [0, 1] (torch or numpy), same shape.
        perturbation_gain: positive amplification of the perturbation (e.g. 10 for eps = 8/255).
        clean_top, adv_top: ``(N, k, 3, H', W')`` float images in [0, 1], same shape (k = 10 in
            the report).
        clean_marks, adv_marks: ``(N, k)`` booleans, True = relevant.
        title: the figure title.

    Returns:
        A Figure with ``N * (3 + 2k)`` axes, one image each, row by row.
    """
    title = _check_title(title)
    q = _images(query, "query", 4, "(N, 3, H, W)")
    qa = _images(adv_query, "adv_query", 4, "(N, 3, H, W)")
    if qa.shape != q.shape:
        raise ValueError(f"adv_query must have the shape of query {q.shape}, got {qa.shape}")
    if (
        isinstance(perturbation_gain, bool)
        or not isinstance(perturbation_gain, numbers.Real)
        or not math.isfinite(perturbation_gain)
        or perturbation_gain <= 0
    ):
        raise ValueError(f"perturbation_gain must be a positive number, got {perturbation_gain!r}")
    ct = _images(clean_top, "clean_top", 5, "(N, k, 3, H, W)")
    at = _images(adv_top, "adv_top", 5, "(N, k, 3, H, W)")
    if ct.shape[0] != q.shape[0]:
        raise ValueError(f"clean_top must hold one row per query ({q.shape[0]}), got shape {ct.shape}")
    if at.shape != ct.shape:
        raise ValueError(f"adv_top must have the shape of clean_top {ct.shape}, got {at.shape}")
    n, k = ct.shape[:2]
    cm = _marks(clean_marks, "clean_marks", (n, k))
    am = _marks(adv_marks, "adv_marks", (n, k))
    delta = np.clip((qa - q) * float(perturbation_gain) + 0.5, 0.0, 1.0)

    cols = 3 + 2 * k
    cell, head = 0.8, 0.55  # inches per image, inches above the first row for titles
    width, height = cell * cols, cell * n + head
    fig = _new_figure((width, height))
    axes = fig.subplots(n, cols, squeeze=False)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.02 / height, top=1 - head / height, wspace=0.1, hspace=0.1)
    heads = ["query", "adversarial", f"δ × {float(perturbation_gain):g}"]
    heads += [f"clean {i + 1}" for i in range(k)] + [f"adv. {i + 1}" for i in range(k)]
    for row in range(n):
        _show(axes[row, 0], q[row])
        _show(axes[row, 1], qa[row])
        _show(axes[row, 2], delta[row])
        for i in range(k):
            for offset, images, marks in ((3, ct, cm), (3 + k, at, am)):
                ax = axes[row, offset + i]
                _show(ax, images[row, i])
                _frame(ax, RELEVANT_COLOR if marks[row, i] else IRRELEVANT_COLOR)
    for col, head in enumerate(heads):
        axes[0, col].set_title(head, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# output


def figure_png_bytes(fig: Figure, *, dpi: float | None = 100) -> bytes:
    """The figure rendered as PNG bytes (``dpi=None``: the figure's own dpi)."""
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi if dpi is not None else "figure")
    return buf.getvalue()


def figure_data_uri(fig: Figure, *, dpi: float | None = 100) -> str:
    """``"data:image/png;base64,..."``: the figure as an inline image for a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(figure_png_bytes(fig, dpi=dpi)).decode("ascii")
