"""``from_tensors`` (bring your own arrays) and the float storage of ``TensorImageDataset``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.data import TensorImageDataset, from_tensors

N = {"train": 6, "query": 3, "database": 8}


def _uint8(n: int, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _classes(n: int) -> torch.Tensor:
    return torch.arange(n) % 4


def _pairs(make_x=_uint8, make_y=_classes) -> dict:
    return {split: (make_x(n, seed=i), make_y(n)) for i, (split, n) in enumerate(N.items())}


# ------------------------------------------------------------------------------------ accepted inputs


def test_uint8_tensors_with_class_indices() -> None:
    pairs = _pairs()
    splits = from_tensors(**pairs)
    assert splits.name == "tensors" and splits.num_classes == 4 and not splits.multi_label
    assert splits.default_topk is None and splits.validation is None and splits.image_size == (8, 8)
    assert splits.query.images.dtype == torch.uint8
    assert torch.equal(splits.query.labels, torch.nn.functional.one_hot(_classes(3), 4).float())
    x, y, i = splits.database[5]
    assert torch.equal(x, pairs["database"][0][5].float() / 255) and i == 5
    assert splits.info["label_format"]["train"] == "class indices"


def test_float_images_are_kept_as_float32_never_quantised() -> None:
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    splits = from_tensors((x, _classes(6)), (x[:2], _classes(2)), (x, _classes(6)))
    assert splits.train.images.dtype == torch.float32
    assert torch.equal(splits.train.batch(slice(None)), x.float())  # not rounded to 1/255 steps
    assert torch.equal(splits.train.load_image(3), x[3].float())
    assert splits.info["dtype"]["train"] == "float32"


def test_numpy_arrays_and_multi_hot_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 1, 5, 7), dtype=np.uint8)  # grey, non-square
    y = np.zeros((6, 3), dtype=bool)
    y[:, 0] = True
    y[2, 1] = True  # one row with two labels: multi-label
    splits = from_tensors((x, y), (x, y.astype(np.int32)), (x.astype(np.float32) / 255, y.astype(np.float64)))
    assert splits.multi_label and splits.num_classes == 3 and splits.image_size == (5, 7)
    assert torch.allclose(splits.database.batch([2]), splits.train.batch([2]))
    assert splits.train.labels.dtype == torch.float32 and splits.train.labels[2].tolist() == [1, 1, 0]


def test_class_count_spans_all_splits_and_validation() -> None:
    pairs = _pairs()
    pairs["validation"] = (_uint8(2), torch.tensor([0, 6]))
    splits = from_tensors(**pairs, name="mine", default_topk=5)
    assert splits.num_classes == 7 and splits.train.labels.shape == (6, 7)
    assert splits.validation is not None and len(splits.validation) == 2
    assert splits.name == "mine" and splits.default_topk == 5


def test_mixed_index_and_multi_hot_splits_share_the_class_list() -> None:
    splits = from_tensors((_uint8(6), _classes(6)), (_uint8(3), torch.eye(5)[:3]), (_uint8(8), _classes(8)))
    assert splits.num_classes == 5 and splits.train.labels.shape == (6, 5)


# ------------------------------------------------------------------------------------ errors


def _one_hot(n: int) -> torch.Tensor:
    return torch.eye(4)[_classes(n)]


def _with(split: str, x=None, y=None, make_y=_classes) -> dict:
    pairs = _pairs(make_y=make_y)
    old_x, old_y = pairs[split]
    pairs[split] = (old_x if x is None else x, old_y if y is None else y)
    return pairs


@pytest.mark.parametrize(
    "pairs, message",
    [
        (_with("query", x=torch.zeros(3, 8, 8, dtype=torch.uint8)), r"query images must be a 4-D NCHW.*x\[:, None\]"),
        (_with("train", x=torch.zeros(6, 8, 8, 3)), r"look like NHWC.*x\.permute\(0, 3, 1, 2\).*np\.transpose\(x, \(0, 3, 1, 2\)\)"),
        (_with("train", x=np.zeros((6, 8, 8, 1), dtype=np.uint8)), r"train images of shape \(6, 8, 8, 1\) look like NHWC"),
        (_with("database", x=torch.full((8, 3, 8, 8), 255.0)), r"database images must be in \[0, 1\].*255.*divide 0\.\.255 pixels by 255.*do not\s+normalise"),
        (_with("query", x=torch.randn(3, 3, 8, 8)), r"query images must be in \[0, 1\].*range from -"),
        (_with("query", x=torch.full((3, 3, 8, 8), float("nan"))), r"query images must be in \[0, 1\], but they contain NaN"),
        (_with("train", x=torch.zeros(6, 3, 8, 8, dtype=torch.int64)), r"dtype torch\.int64.*uint8 in \[0, 255\] or floating"),
        (_with("train", x=[[0]]), r"train images must be a torch tensor or a numpy array, got list"),
        (_with("query", y=_classes(4)), r"query has 3 images but 4 labels"),
        (_with("query", y=torch.ones(3, 5), make_y=_one_hot), r"different widths across splits \(train 4, query 5"),
        (_with("train", y=torch.ones(6, 4) * 2), r"train labels must be 0 or 1, found 2\.0 at row 0, column 0"),
        (_with("train", y=_classes(6)[:, None] + 1), r"looks like class indices of shape \(N, 1\): pass y\.flatten\(\)"),
        (_with("train", y=torch.rand(6)), r"must be integer class indices.*y\.long\(\)"),
        (_with("train", y=-_classes(6) - 1), r"class indices must be >= 0"),
        (_with("train", y=torch.zeros(6, 2, 2)), r"\(N, C\) 0/1 multi-hot matrix or an \(N,\) vector"),
        (_with("query", x=_uint8(3, c=1)), r"train images have 3 channels but query images have 1"),
        (_with("database", x=_uint8(8, h=9)), r"size 8x8 \(height x width\) but database images are 9x8"),
        ({**_pairs(), "train": (_uint8(1), _classes(1))}, r"train holds 1 item\(s\); it needs at least 2"),
        ({**_pairs(), "query": (_uint8(0), _classes(0))}, r"query holds 0 item\(s\); it needs at least 1"),
        ({**_pairs(), "train": _uint8(6)}, r"train must be an \(images, labels\) pair"),
    ],
)
def test_errors_name_the_problem_and_the_fix(pairs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_tensors(**pairs)


def test_class_index_outside_the_multi_hot_width() -> None:
    with pytest.raises(ValueError, match=r"train class index 5 is out of range for the 5 classes"):
        from_tensors((_uint8(6), torch.arange(6)), (_uint8(3), torch.eye(5)[:3]), (_uint8(8), _classes(8)))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_default_topk_is_checked(bad) -> None:
    with pytest.raises(ValueError, match="default_topk"):
        from_tensors(**_pairs(), default_topk=bad)


# ------------------------------------------------------------------------------------ TensorImageDataset


def test_float_tensor_dataset_batches_never_alias_the_storage() -> None:
    images = torch.rand(5, 3, 4, 4)
    dataset = TensorImageDataset(images.clone(), torch.eye(5))
    for indices in (slice(None), slice(1, 3), [0, 2], np.array([4]), torch.tensor([1, 1])):
        batch = dataset.batch(indices)
        batch.fill_(7.0)
    dataset.load_image(2).fill_(7.0)
    dataset.subset([3, 1]).batch(slice(None)).fill_(7.0)
    assert torch.equal(dataset.images, images)


def test_uint8_tensor_dataset_is_unchanged() -> None:
    images = _uint8(5)
    dataset = TensorImageDataset(images, torch.eye(5))
    expected = images.to(torch.float32).div_(255.0)
    assert torch.equal(dataset.batch(slice(1, 4)), expected[1:4])
    assert torch.equal(dataset.batch(torch.tensor([4, 0])), expected[[4, 0]])
    assert torch.equal(dataset.load_image(2), expected[2])


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.full((2, 3, 4, 4), 2.0), r"float images must lie in \[0, 1\].*range from 2 to 2.*divide"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.int32), r"uint8 NCHW tensor.*or a float NCHW tensor"),
        (torch.zeros(2, 4, 4, dtype=torch.uint8), r"uint8 NCHW tensor"),
    ],
)
def test_tensor_dataset_rejects_bad_images(images: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TensorImageDataset(images, torch.eye(2))
