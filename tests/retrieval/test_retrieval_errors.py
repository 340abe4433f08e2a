"""Bad inputs raise ValueError with messages that say what was expected and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.retrieval import (
    hamming_distances,
    mean_average_precision,
    pack_codes,
    pr_curve,
    precision_at_n,
    precision_within_radius,
)
from retrieval_reference import random_problem

QC, DC, QL, DL = random_problem(0, n_query=4, n_db=10)


def test_continuous_codes_are_rejected():
    tanh_codes = torch.tanh(torch.randn(4, 8))
    with pytest.raises(ValueError, match=r"codes must be ±1.*torch\.sign.*model\.encode"):
        mean_average_precision(tanh_codes, DC, QL, DL)
    with pytest.raises(ValueError, match=r"codes must be ±1.*db_codes"):
        mean_average_precision(QC, DC * 0.5, QL, DL)
    with pytest.raises(ValueError, match="codes must be ±1"):
        pack_codes(np.sign(np.array([[0.0, 1.0]])))  # sign(0) = 0 is not a code
    with pytest.raises(ValueError, match="codes must be ±1"):
        hamming_distances(np.array([[1.0, np.nan]]), np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"2 \* bits - 1"):
        mean_average_precision(QC > 0, DC, QL, DL)


def test_code_shapes():
    with pytest.raises(ValueError, match=r"query_codes has 8 bits .* db_codes has 6 bits"):
        mean_average_precision(QC, DC[:, :6], QL, DL)
    with pytest.raises(ValueError, match=r"2-D \(N, K\).*codes\[None\]"):
        mean_average_precision(QC[0], DC, QL[:1], DL)
    with pytest.raises(ValueError, match="empty"):
        mean_average_precision(QC[:0], DC, QL[:0], DL)
    with pytest.raises(ValueError, match="empty"):
        precision_within_radius(QC, DC[:0], QL, DL[:0])


def test_label_shapes_and_values():
    with pytest.raises(ValueError, match=r"query_labels has shape \(4, 5\) but db_labels has shape \(10, 4\)"):
        mean_average_precision(QC, DC, QL, DL[:, :4])
    with pytest.raises(ValueError, match=r"query_labels has 3 rows .* query_codes has 4"):
        mean_average_precision(QC, DC, QL[:3], DL)
    with pytest.raises(ValueError, match=r"db_labels has 9 rows .* db_codes has 10"):
        mean_average_precision(QC, DC, QL, DL[:9])
    with pytest.raises(ValueError, match="one_hot"):
        mean_average_precision(QC, DC, np.arange(4), DL)
    with pytest.raises(ValueError, match=r"0/1 .*labels > 0"):
        mean_average_precision(QC, DC, 2 * QL - 1, DL)


@pytest.mark.parametrize("topk", [0, -3, 2.5, True, "5", np.float64(3.0)])
def test_bad_topk(topk):
    with pytest.raises(ValueError, match="topk must be a positive int or None"):
        mean_average_precision(QC, DC, QL, DL, topk=topk)


def test_numpy_integer_topk_is_fine():
    assert mean_average_precision(QC, DC, QL, DL, topk=np.int64(3)) == mean_average_precision(QC, DC, QL, DL, topk=3)


def test_bad_choices_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"empty must be one of 'zero', 'skip'; got 'neg'"):
        mean_average_precision(QC, DC, QL, DL, empty="neg")
    with pytest.raises(ValueError, match=r"ties must be one of 'index', 'average'"):
        mean_average_precision(QC, DC, QL, DL, ties="random")
    with pytest.raises(ValueError, match=r"relevance must be one of 'share', 'exact'"):
        mean_average_precision(QC, DC, QL, DL, relevance="any")
    with pytest.raises(ValueError, match=r"by must be one of 'radius', 'rank'"):
        pr_curve(QC, DC, QL, DL, by="recall")
    with pytest.raises(ValueError, match=r"empty must be one of"):
        precision_within_radius(QC, DC, QL, DL, empty="error")
    with pytest.raises(ValueError, match=r"backend must be one of 'auto', 'numba', 'numpy'"):
        mean_average_precision(QC, DC, QL, DL, backend="faiss")


def test_bad_n_and_radius():
    for n in (0, [10, 0], [], 2.0, "100"):
        with pytest.raises(ValueError, match="n must"):
            precision_at_n(QC, DC, QL, DL, n=n)
    for radius in (-1, 1.5, None):
        with pytest.raises(ValueError, match="radius must be a non-negative int"):
            precision_within_radius(QC, DC, QL, DL, radius=radius)


def test_review_findings_give_clear_errors():
    """Inputs a reviewer found mishandled: unsigned 0/1 codes, all-NaN codes, zero label columns."""
    import warnings

    import numpy as np

    from hashguard.retrieval import mean_average_precision, pack_codes, precision_at_n, unpack_codes

    rng = np.random.default_rng(0)
    codes = np.where(rng.random((6, 16)) < 0.5, 1, -1).astype(np.int8)
    labels = np.eye(3)[rng.integers(0, 3, 6)]
    for dtype in (np.uint8, bool):
        with pytest.raises(ValueError, match="signed integer or float"):
            unpack_codes(pack_codes(codes), 16, dtype=dtype)
    with pytest.raises(ValueError, match="0/1 bits.*2 \\* bits - 1"):
        mean_average_precision((codes > 0).astype(np.uint8), codes, labels, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error message itself must not warn
        with pytest.raises(ValueError, match="no finite values"):
            mean_average_precision(np.full((6, 16), np.nan), codes, labels, labels)
    with pytest.raises(ValueError, match="zero classes"):
        mean_average_precision(codes, codes, labels[:, :0], labels[:, :0])
    assert precision_at_n(codes, codes, labels, labels, n=np.array(2)) == precision_at_n(codes, codes, labels, labels, n=2)
