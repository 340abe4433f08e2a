"""The built-in datasets: protocol invariants, determinism, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashguard.data import create_dataset, list_datasets
from hashguard.data.mnist_digits import load_mnist_digits
from hashguard.data.mnist_mosaic import build_mnist_mosaic


@pytest.fixture(scope="module")
def mosaic():
    return create_dataset("mnist-mosaic", n_query=200, n_database=600, n_train=300, n_validation=100)


def test_registry_lists_builtin_and_disk_datasets():
    names = list_datasets()
    for name in ["mnist-mosaic", "mnist", "synthetic", "flickr25k", "nus-wide", "ms-coco", "imagenet100", "cifar10"]:
        assert name in names
    with pytest.raises(ValueError, match="valid choices: .*mnist-mosaic"):
        create_dataset("mnist-mosaik")


def test_mnist_digits_are_the_real_5000():
    digits, classes = load_mnist_digits()
    assert digits.shape == (5000, 28, 28) and digits.dtype == np.uint8
    assert np.bincount(classes).tolist() == [500] * 10
    assert digits.max() == 255 and digits.mean() > 20  # real strokes, not blanks


def test_mosaic_images_and_labels(mosaic):
    assert mosaic.multi_label and mosaic.num_classes == 10 and mosaic.default_topk == 1000
    x, y, i = mosaic.query[3]
    assert x.shape == (3, 56, 56) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert i == 3 and y.shape == (10,)
    for split in (mosaic.train, mosaic.query, mosaic.database, mosaic.validation):
        counts = split.labels.sum(1)
        assert counts.min() >= 1 and counts.max() <= 3  # 1 to 3 distinct digits, never the empty label
        assert set(split.labels.unique().tolist()) <= {0.0, 1.0}
    assert len(mosaic.query) == 200 and len(mosaic.database) == 600 and len(mosaic.train) == 300


def test_mosaic_background_is_textured(mosaic):
    # images must not be flat: empty cells still carry colour texture (std well above 0)
    x = mosaic.database.batch(slice(0, 50))
    assert x.std(dim=(2, 3)).mean() > 0.05
    assert x.mean() > 0.15  # not black backgrounds


def test_mosaic_train_and_validation_come_from_the_database(mosaic):
    db = mosaic.database.images.flatten(1)
    rows = {bytes(r.numpy()) for r in db}
    assert all(bytes(r.numpy()) in rows for r in mosaic.train.images.flatten(1))
    train_rows = {bytes(r.numpy()) for r in mosaic.train.images.flatten(1)}
    assert not any(bytes(r.numpy()) in train_rows for r in mosaic.validation.images.flatten(1))


def test_mosaic_query_digits_are_disjoint_from_database_digits():
    # rebuild with the instance pools exposed: no digit instance serves both queries and database
    from hashguard.data import mnist_mosaic

    seen = {}
    original = mnist_mosaic.compose_mosaics

    def spy(n, digits, classes, pool, rng, max_digits=3):
        seen.setdefault("pools", []).append(set(pool.tolist()))
        return original(n, digits, classes, pool, rng, max_digits)

    mnist_mosaic.compose_mosaics = spy
    try:
        build_mnist_mosaic(seed=1, n_query=10, n_database=10)
    finally:
        mnist_mosaic.compose_mosaics = original
    query_pool, database_pool = seen["pools"]
    assert not query_pool & database_pool
    assert len(query_pool) == 1000 and len(database_pool) == 4000


def test_mosaic_is_deterministic_per_seed():
    a = build_mnist_mosaic(seed=3, n_query=20, n_database=30)
    b = build_mnist_mosaic(seed=3, n_query=20, n_database=30)
    c = build_mnist_mosaic(seed=4, n_query=20, n_database=30)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["query_images"], c["query_images"])


def test_mosaic_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHGUARD_CACHE", str(tmp_path))
    first = create_dataset("mnist-mosaic", n_query=20, n_database=60, n_train=30, n_validation=10)
    files = list(tmp_path.glob("mnist-mosaic-*.pt"))
    assert len(files) == 1
    second = create_dataset("mnist-mosaic", n_query=20, n_database=60, n_train=30, n_validation=10)
    assert torch.equal(first.query.images, second.query.images)
    files[0].write_bytes(b"corrupt")  # a damaged cache file is rebuilt, not trusted
    third = create_dataset("mnist-mosaic", n_query=20, n_database=60, n_train=30, n_validation=10)
    assert torch.equal(first.query.images, third.query.images)


def test_mosaic_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="n_train"):
        create_dataset("mnist-mosaic", n_database=100, n_train=90, n_validation=20)


def test_mnist_single_label_protocol():
    s = create_dataset("mnist")
    assert not s.multi_label and len(s.query) == 1000 and len(s.database) == 4000 and len(s.train) == 2000
    assert (s.query.labels.sum(1) == 1).all()
    assert s.query.labels.sum(0).tolist() == [100.0] * 10
    assert s.train.labels.sum(0).tolist() == [200.0] * 10
    x = s.query[0][0]
    assert x.shape == (3, 28, 28) and torch.equal(x[0], x[1])


def test_synthetic_is_tiny_deterministic_and_learnable_structure():
    a, b = create_dataset("synthetic", seed=5), create_dataset("synthetic", seed=5)
    assert torch.equal(a.query.images, b.query.images) and torch.equal(a.train.labels, b.train.labels)
    assert a.query[0][0].shape == (3, 16, 16)
    # images of the same single class are closer to each other than to other classes
    lab, img = a.database.labels, a.database.images.float().flatten(1)
    single = lab.sum(1) == 1
    cls = lab[single].argmax(1)
    x = img[single]
    d = torch.cdist(x, x)
    same = cls[:, None] == cls[None, :]
    assert d[same].mean() < d[~same].mean()
