"""Retrieval examples for the report: what a few queries retrieve before and after the attack."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from ..data.batching import load_images
from ..retrieval import per_query_scores, top_k_indices
from .figures import retrieval_grid

TOP = 10  # retrieved images shown per query


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x


def example_figure(details: Dict[str, Any], splits, *, rows: int = 4, eps: float = 8 / 255, title: str = ""):
    """The retrieval grid (``figures.retrieval_grid``) of ``rows`` queries of one attack run.

    ``details`` is the second value of ``run_attack(..., return_details=True)``. The rows are the
    first queries the attack succeeded on (then the others, if fewer succeeded), so the figure
    shows what success looks like. Retrieved images are framed green when relevant: sharing a
    label with the query (untargeted) or carrying the target label (targeted, both rows, so the
    benign row shows how few target items a clean query retrieves). The perturbation is amplified
    by ``0.5 / eps`` (the full budget maps to black / white).
    """
    result, database = details["result"], details["database"]
    targeted = details["target_labels"] is not None
    goal = details["target_labels"] if targeted else details["labels"]
    codes_adv = result.codes_adv.cpu()
    _, p10 = per_query_scores(codes_adv, database.codes, goal, database.labels, topk=database.topk, n=TOP)
    ok = p10 >= 0.5 if targeted else p10 < 0.5
    order = np.concatenate([np.flatnonzero(ok), np.flatnonzero(~ok)])[: max(1, int(rows))]
    sel = torch.as_tensor(order)
    k = min(TOP, len(database.codes))
    clean_idx = top_k_indices(details["clean_codes"][sel], database.codes, k)
    adv_idx = top_k_indices(codes_adv[sel], database.codes, k)
    both = torch.as_tensor(np.concatenate([clean_idx.ravel(), adv_idx.ravel()]))
    images = _rgb(load_images(splits.database, both)).float()
    shape = (len(sel), k, *images.shape[1:])
    clean_top, adv_top = images[: clean_idx.size].reshape(shape), images[clean_idx.size :].reshape(shape)
    db_labels = torch.as_tensor(np.asarray(database.labels)).float()
    goal_rows = torch.as_tensor(np.asarray(goal)).float()[sel]

    def marks(idx: np.ndarray) -> np.ndarray:
        return ((db_labels[torch.as_tensor(idx)] * goal_rows[:, None, :]).sum(-1) > 0).numpy()

    return retrieval_grid(
        _rgb(details["x"][sel]).float().clamp(0, 1), _rgb(result.x_adv[sel].cpu()).float().clamp(0, 1), 0.5 / eps,
        clean_top, adv_top, marks(clean_idx), marks(adv_idx), title=title,
    )


__all__ = ["example_figure"]
