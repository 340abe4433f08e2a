"""Report figures: structure of each figure, PNG / data-URI output, and input checks."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from hashguard.bench.figures import (
    IRRELEVANT_COLOR,
    RELEVANT_COLOR,
    figure_data_uri,
    figure_png_bytes,
    map_vs_iterations,
    pr_curves,
    precision_at_n_curves,
    retrieval_grid,
)
from hashguard.retrieval import pr_curve, precision_at_n

PNG = b"\x89PNG\r\n\x1a\n"


def _codes_and_labels(seed=0, q=6, n=40, k=8, c=4):
    g = np.random.default_rng(seed)
    codes_q = np.where(g.random((q, k)) < 0.5, -1.0, 1.0)
    codes_db = np.where(g.random((n, k)) < 0.5, -1.0, 1.0)
    y_q = np.eye(c)[g.integers(0, c, q)]
    y_db = np.eye(c)[g.integers(0, c, n)]
    return codes_q, codes_db, y_q, y_db


# ---------------------------------------------------------------------------------- curves


@pytest.mark.parametrize("by", ["radius", "rank"])
def test_pr_curves_one_line_per_attack_from_pr_curve_output(by):
    cq, cdb, yq, ydb = _codes_and_labels()
    curves = {
        "clean": pr_curve(cq, cdb, yq, ydb, by=by),
        "PgA": pr_curve(-cq, cdb, yq, ydb, by=by),
        "mainstay": pr_curve(cq[::-1].copy(), cdb, yq, ydb, by=by),
    }
    fig = pr_curves(curves, "PR")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(curves)
    precision, recall = curves["clean"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), recall)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), precision)
    assert ax.get_title() == "PR"


def test_precision_at_n_curves_from_precision_at_n_output():
    cq, cdb, yq, ydb = _codes_and_labels()
    ns = [5, 10, 20, 40]
    curves = {"clean": (ns, precision_at_n(cq, cdb, yq, ydb, ns)), "PgA": (ns, precision_at_n(-cq, cdb, yq, ydb, ns))}
    fig = precision_at_n_curves(curves, "P@N")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_xdata(), ns)
    assert len(ax.get_legend().get_texts()) == 2


def test_map_vs_iterations_log_axis_and_theory_lines_in_curve_colour():
    steps = [10, 100, 1000]
    curves = {"PgA": (steps, [0.5, 0.3, 0.2]), "mainstay": (steps, [0.6, 0.4, 0.35]), "DHTA": (steps, [0.2, 0.5, 0.7])}
    fig = map_vs_iterations(curves, {"PgA": 0.15, "DHTA": 0.8}, "T", ylabel="mAP@1000 (%)")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 3 + 2
    curve_lines, theory_lines = ax.lines[:3], ax.lines[3:]
    np.testing.assert_allclose(curve_lines[0].get_ydata(), [50, 30, 20])
    assert [line.get_linestyle() for line in theory_lines] == [":", ":"]
    assert theory_lines[0].get_color() == curve_lines[0].get_color()
    assert theory_lines[1].get_color() == curve_lines[2].get_color()
    np.testing.assert_allclose(theory_lines[1].get_ydata(), [80, 80])
    assert ax.get_ylabel() == "mAP@1000 (%)"
    assert len(map_vs_iterations(curves).axes[0].lines) == 3  # no theory


def test_curve_inputs_accept_torch_tensors():
    fig = pr_curves({"a": (torch.tensor([1.0, 0.5]), torch.tensor([0.1, 1.0]))})
    assert len(fig.axes[0].lines) == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pr_curves({"a": ([1.0, 0.5, 0.4], [0.1, 1.0])}), "different lengths: 3 and 2"),
        (lambda: pr_curves({"a": ([1.0, 50.0], [0.1, 1.0])}), r"must lie in \[0, 1\]"),
        (lambda: pr_curves({}), "curves is empty"),
        (lambda: pr_curves([([1.0], [1.0])]), "must be a dict"),
        (lambda: pr_curves({"a": ([1.0, 0.5],)}), "must be a pair"),
        (lambda: pr_curves({"a": ([[1.0]], [[1.0]])}), "must be 1-D"),
        (lambda: pr_curves({"a": ([np.nan], [1.0])}), "NaN"),
        (lambda: pr_curves({"a": ([1.0], [1.0])}, title=3), "title must be a str"),
        (lambda: precision_at_n_curves({"a": ([10, 20], [0.5])}), "different lengths: 2 and 1"),
        (lambda: precision_at_n_curves({"a": ([0, 20], [0.5, 0.4])}), "must be positive"),
        (lambda: map_vs_iterations({"a": ([10, 20], [0.5, 0.4, 0.3])}), "different lengths: 2 and 3"),
        (lambda: map_vs_iterations({"a": ([0, 20], [0.5, 0.4])}), "must be positive"),
        (lambda: map_vs_iterations({"a": ([10], [0.5])}, {"b": 0.1}), r"theory names \['b'\] have no curve"),
        (lambda: map_vs_iterations({"a": ([10], [0.5])}, {"a": 12.0}), r"number in \[0, 1\]"),
        (lambda: map_vs_iterations({"a": ([10], [45.0])}), "fractions, not percent"),
    ],
)
def test_curve_functions_reject_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------- grid


def _grid_inputs(n=2, k=10, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.rand(n, 3, size, size, generator=g)
    adv = (query + (torch.rand(query.shape, generator=g) - 0.5) * 0.06).clamp(0, 1)
    clean_top = torch.rand(n, k, 3, size, size, generator=g)
    adv_top = torch.rand(n, k, 3, size, size, generator=g)
    clean_marks = torch.zeros(n, k, dtype=torch.bool)
    clean_marks[:, :7] = True
    adv_marks = torch.zeros(n, k, dtype=torch.bool)
    adv_marks[:, 0] = True
    return dict(query=query, adv_query=adv, perturbation_gain=10.0, clean_top=clean_top, adv_top=adv_top,
                clean_marks=clean_marks, adv_marks=adv_marks)


def test_retrieval_grid_layout_and_marks():
    inputs = _grid_inputs(n=2, k=10)
    fig = retrieval_grid(**inputs, title="PgA on dpsh-32")
    cols = 3 + 2 * 10
    assert len(fig.axes) == 2 * cols
    assert all(len(ax.images) == 1 for ax in fig.axes)
    assert fig.get_suptitle() == "PgA on dpsh-32"

    def frame(row, col):
        return to_rgba(fig.axes[row * cols + col].spines["top"].get_edgecolor())

    assert to_rgba(RELEVANT_COLOR) != to_rgba(IRRELEVANT_COLOR)
    # clean block: columns 3..12, first 7 relevant; adversarial block: 13..22, only the first
    assert frame(0, 3) == to_rgba(RELEVANT_COLOR)
    assert frame(1, 9) == to_rgba(RELEVANT_COLOR)
    assert frame(0, 10) == to_rgba(IRRELEVANT_COLOR)
    assert frame(1, 13) == to_rgba(RELEVANT_COLOR)
    assert frame(1, 14) == to_rgba(IRRELEVANT_COLOR)
    assert frame(0, 3) != frame(0, 10)
    for side in ("top", "bottom", "left", "right"):
        assert fig.axes[3].spines[side].get_visible()


def test_retrieval_grid_shows_the_amplified_clipped_perturbation():
    inputs = _grid_inputs(n=1, k=3)
    fig = retrieval_grid(**inputs)
    shown = np.asarray(fig.axes[2].images[0].get_array())
    q, a = inputs["query"].numpy(), inputs["adv_query"].numpy()
    expected = np.clip((a[0] - q[0]) * 10.0 + 0.5, 0, 1).transpose(1, 2, 0)
    np.testing.assert_allclose(shown, expected)
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), q[0].transpose(1, 2, 0))
    assert len(fig.axes) == 3 + 2 * 3


def test_retrieval_grid_accepts_numpy_and_int_marks():
    inputs = {k: v.numpy() for k, v in _grid_inputs(n=1, k=2).items() if k != "perturbation_gain"}
    inputs["clean_marks"] = inputs["clean_marks"].astype(int)
    fig = retrieval_grid(perturbation_gain=5, **inputs)
    assert len(fig.axes) == 7


def _with(**changes):
    inputs = _grid_inputs(n=2, k=4)
    inputs.update(changes)
    return inputs


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(query=torch.rand(2, 3, 8, 8) * 2), r"query must lie in \[0, 1\]"),
        (dict(adv_top=torch.rand(2, 4, 3, 8, 8) - 0.5), r"adv_top must lie in \[0, 1\]"),
        (dict(query=torch.rand(2, 8, 8, 3)), r"query must be a \(N, 3, H, W\) array"),
        (dict(clean_top=torch.rand(2, 3, 8, 8)), r"clean_top must be a \(N, k, 3, H, W\) array"),
        (dict(adv_query=torch.rand(1, 3, 8, 8)), "adv_query must have the shape of query"),
        (dict(clean_top=torch.rand(3, 4, 3, 8, 8)), "one row per query"),
        (dict(adv_top=torch.rand(2, 5, 3, 8, 8)), "adv_top must have the shape of clean_top"),
        (dict(clean_marks=torch.ones(2, 5, dtype=torch.bool)), r"clean_marks must have shape \(N, k\)"),
        (dict(adv_marks=torch.full((2, 4), 2)), "adv_marks must be booleans"),
        (dict(query=(torch.rand(2, 3, 8, 8) * 255).to(torch.uint8)), "divide uint8 images by 255"),
        (dict(perturbation_gain=0), "perturbation_gain must be a positive number"),
        (dict(perturbation_gain=float("inf")), "perturbation_gain must be a positive number"),
    ],
)
def test_retrieval_grid_rejects_bad_inputs(changes, match):
    with pytest.raises(ValueError, match=match):
        retrieval_grid(**_with(**changes))


# ---------------------------------------------------------------------------------- output


def test_png_bytes_and_data_uri():
    fig = pr_curves({"a": ([1.0, 0.5], [0.1, 1.0])}, "t")
    png = figure_png_bytes(fig, dpi=40)
    assert png.startswith(PNG)
    uri = figure_data_uri(fig, dpi=40)
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri[len(prefix):]).startswith(PNG)
    with pytest.raises(ValueError, match="matplotlib Figure"):
        figure_png_bytes("not a figure")


def test_grid_renders_to_png():
    fig = retrieval_grid(**_grid_inputs(n=1, k=2))
    assert figure_png_bytes(fig, dpi=30).startswith(PNG)
