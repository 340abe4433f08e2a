"""One batching API for every dataset: ``batch(indices)`` equals stacking ``load_image``.

Covers a dataset read from disk (``ImageListDataset``), in-memory ones (uint8 and float
``TensorImageDataset``), subsets of each, and ``data.batching`` on top of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashguard.data import ImageListDataset, TensorImageDataset
from hashguard.data.base import as_index
from hashguard.data.batching import iterate_batches, load_images
from hashguard.data.transforms import AsIsTransform

N = 6
INDICES = [slice(None), slice(1, 5, 2), slice(4, 2), slice(None, None, -2), [5, 0, 0], np.array([3, 1]), torch.tensor([2, 4]),
           torch.tensor([-1]), np.array([True, False, True, False, False, True])]


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> ImageListDataset:
    root = tmp_path_factory.mktemp("disk")
    rng = np.random.default_rng(0)
    names = []
    for i in range(N):
        names.append(f"im{i}.png")
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(root / names[-1])
    return ImageListDataset(names, np.eye(N), root=root, transform=AsIsTransform((6, 5)))


def _datasets(disk: ImageListDataset) -> dict:
    uint8 = TensorImageDataset(torch.randint(0, 256, (N, 3, 6, 5), dtype=torch.uint8), torch.eye(N))
    floats = TensorImageDataset(torch.rand(N, 3, 6, 5), torch.eye(N))
    return {"disk": disk, "uint8": uint8, "float": floats}


def _stacked(dataset, indices) -> torch.Tensor:
    idx = as_index(indices, len(dataset))
    if idx.numel() == 0:
        return torch.zeros(0, 3, 6, 5)
    return torch.stack([dataset.load_image(int(i)) for i in idx])


@pytest.mark.parametrize("kind", ["disk", "uint8", "float"])
def test_batch_equals_stacked_load_image(disk: ImageListDataset, kind: str) -> None:
    dataset = _datasets(disk)[kind]
    assert dataset.in_memory == (kind != "disk")
    for indices in INDICES:
        batch = dataset.batch(indices)
        assert batch.dtype == torch.float32 and batch.dim() == 4
        assert torch.equal(batch, _stacked(dataset, indices)), indices


@pytest.mark.parametrize("kind", ["disk", "uint8", "float"])
def test_subset_batch_maps_to_the_parent(disk: ImageListDataset, kind: str) -> None:
    parent = _datasets(disk)[kind]
    subset = parent.subset([4, 1, 3, 0])
    assert subset.in_memory == parent.in_memory
    assert torch.equal(subset.batch(slice(None)), parent.batch([4, 1, 3, 0]))
    assert torch.equal(subset.batch([2, -1]), _stacked(subset, [2, -1]))
    nested = subset.subset([3, 0])
    assert torch.equal(nested.batch(slice(None)), parent.batch([0, 4]))


def test_disk_batch_is_the_query_api(disk: ImageListDataset) -> None:
    assert disk.batch(slice(0, 100)).shape == (N, 3, 6, 5)  # a slice past the end is clipped


@pytest.mark.parametrize(
    "indices, error, message",
    [
        (3, ValueError, r"single index 3.*\[3\] for a batch of one"),
        (torch.tensor(2), ValueError, "single index"),
        ([0, N], IndexError, rf"index {N} is out of range for a dataset of {N} items"),
        ([-N - 1], IndexError, "out of range"),
        (np.array([0.5]), ValueError, "1-D sequence of integers"),
        (np.array([True]), ValueError, "boolean mask must have one entry per item"),
        ("ab", ValueError, "indices must be"),
    ],
)
def test_bad_indices(disk: ImageListDataset, indices, error, message) -> None:
    for dataset in _datasets(disk).values():
        with pytest.raises(error, match=message):
            dataset.batch(indices)


def test_batching_helpers_use_batch(disk: ImageListDataset) -> None:
    for dataset in _datasets(disk).values():
        order = torch.tensor([5, 2, 0, 1, 4, 3, 2])
        assert torch.equal(load_images(dataset, order[:3]), dataset.batch(order[:3]))
        batches = list(iterate_batches(dataset, order, batch_size=3))
        assert [b[2].tolist() for b in batches] == [[5, 2, 0], [1, 4, 3, 2]]  # the lone item joins
        for images, labels, idx in batches:
            assert torch.equal(images, dataset.batch(idx)) and torch.equal(labels, dataset.labels[idx])


def test_iterate_batches_with_workers_on_disk(disk: ImageListDataset) -> None:
    order = torch.tensor([3, 0, 5, 1])
    (images, labels, idx), = list(iterate_batches(disk, order, batch_size=4, num_workers=1))
    assert idx.tolist() == order.tolist() and torch.equal(images, disk.batch(order))


def test_duck_typed_dataset_without_batch() -> None:
    class Plain:
        labels = torch.eye(3)

        def load_image(self, index: int) -> torch.Tensor:
            return torch.full((1, 2, 2), float(index))

    assert load_images(Plain(), torch.tensor([2, 0]))[:, 0, 0, 0].tolist() == [2.0, 0.0]
