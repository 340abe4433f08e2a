"""Hamming ranking of a database for a batch of queries: input preparation and kernel dispatch.

The metric functions (:mod:`.average_precision`, :mod:`.precision`, :mod:`.pr_curve`) call
:func:`prepare` once to validate and pack their inputs, then one of the dispatchers below, which
run either the numba kernels (:mod:`._kernels_numba`) or the numpy fallback
(:mod:`._kernels_numpy`); see :mod:`._backend` for how the backend is chosen.

Ranking rule everywhere: database items sorted by Hamming distance to the query, ties at equal
distance in database index order (a stable sort), unless a tie-aware average is asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ._backend import run_kernel
from ._inputs import as_codes, as_labels, check_choice, check_pair_codes, check_pair_labels
from .packing import _bits_to_words, label_words

RELEVANCE = ("share", "exact")
TIES = ("index", "average")
EMPTY = ("zero", "skip")


@dataclass(frozen=True)
class Problem:
    """Validated, packed inputs of one retrieval evaluation.

    Attributes:
        qw, dw: query / database codes as uint64 words, ``(Q, W)`` and ``(N, W)``.
        ql, dl: query / database label bitmasks as uint64 words, ``(Q, Wc)`` and ``(N, Wc)``.
        n_bits: code length ``K``.
        exact: relevance is "identical label rows" (``relevance="exact"``) instead of "share a label".
    """

    qw: np.ndarray
    dw: np.ndarray
    ql: np.ndarray
    dl: np.ndarray
    n_bits: int
    exact: bool

    @property
    def n_query(self) -> int:
        return self.qw.shape[0]

    @property
    def n_db(self) -> int:
        return self.dw.shape[0]


def prepare(query_codes: Any, db_codes: Any, query_labels: Any, db_labels: Any, relevance: str = "share") -> Problem:
    """Validate the four inputs (docs/design.md#retrieval-conventions) and pack them for the kernels."""
    check_choice(relevance, "relevance", RELEVANCE)
    qc = as_codes(query_codes, "query_codes")
    dc = as_codes(db_codes, "db_codes")
    check_pair_codes(qc, dc)
    qlab = as_labels(query_labels, "query_labels")
    dlab = as_labels(db_labels, "db_labels")
    check_pair_labels(qlab, dlab, qc.shape[0], dc.shape[0])
    return Problem(
        qw=_bits_to_words(qc > 0),
        dw=_bits_to_words(dc > 0),
        ql=label_words(qlab),
        dl=label_words(dlab),
        n_bits=int(qc.shape[1]),
        exact=relevance == "exact",
    )


def ranked_stats(p: Problem, topk: int | None, ties: str = "index", cutoffs: Sequence[int] = (), backend: str | None = None):
    """Per-query AP over the top ``topk`` ranks, relevant count in the top ``topk``, hits at ``cutoffs``.

    Args:
        p: a :class:`Problem`.
        topk: ranks evaluated; None or anything above ``N`` means the whole database.
        ties: ``"index"`` (stable order) or ``"average"`` (tie-aware expectations).
        cutoffs: ranks at which to count relevant items (any order, duplicates allowed; values
            above ``topk`` are clipped to it).

    Returns:
        ``(ap, n_relevant, hits)``: float64 arrays of shape ``(Q,)``, ``(Q,)`` and
        ``(Q, len(cutoffs))``, ``hits`` in the order of ``cutoffs``.
    """
    check_choice(ties, "ties", TIES)
    k = p.n_db if topk is None else min(int(topk), p.n_db)
    cut = np.minimum(np.asarray(list(cutoffs), dtype=np.int64), k)
    uniq, inverse = np.unique(cut, return_inverse=True)
    ap, n_rel, hits = run_kernel(
        backend, "ranked_stats",
        p.qw, p.dw, p.ql, p.dl, k, p.exact, ties == "average", np.ascontiguousarray(uniq, dtype=np.int64),
    )
    return ap, n_rel, hits[:, inverse.reshape(-1)]


def rank_curve_sums(p: Problem, length: int, backend: str | None = None):
    """Sums over queries of precision@r and recall@r, r = 1..length; and the number of queries
    with no relevant item in the database (which add nothing to either sum)."""
    length = min(int(length), p.n_db)
    n_chunks = max(1, min(p.n_query, _num_threads()))  # one (n_chunks, N) accumulator row per chunk
    return run_kernel(backend, "rank_curve_sums", p.qw, p.dw, p.ql, p.dl, length, p.exact, n_chunks)


def distance_histograms(p: Problem, backend: str | None = None):
    """Per query, counts of all and of relevant database items at each distance 0..K.

    Returns:
        ``(items, relevant)``: int64 arrays of shape ``(Q, K + 1)``.
    """
    items, relevant = run_kernel(backend, "distance_histograms", p.qw, p.dw, p.ql, p.dl, p.exact)
    return items[:, : p.n_bits + 1], relevant[:, : p.n_bits + 1]


def _num_threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover - numba missing
        return os.cpu_count() or 1
