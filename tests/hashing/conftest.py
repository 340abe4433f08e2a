"""Fixtures for the hashing tests: the built-in ``synthetic`` dataset and tiny ``cnn`` models."""

from __future__ import annotations

import pytest
import torch

from hashguard.data import create_dataset
from hashguard.models import create_hash_model


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Run torch (and the numba retrieval kernels) on one thread, restored after the module.

    On two busy cores, torch's intra-op pool spends far more time synchronising than computing on
    16x16 inputs (measured: 0.8 s vs 0.01 s for three forwards), and numba's OpenMP workers keep
    spinning after each mAP kernel and starve the next torch forward (0.47 s vs 0.03 s to encode
    280 images).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency, but the numpy backend needs none
        numba = None
    if numba is not None:
        # first: launching numba's OpenMP pool resets the OpenMP thread count torch reads
        previous_numba = numba.get_num_threads()
        numba.set_num_threads(1)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    if numba is not None:
        numba.set_num_threads(previous_numba)
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def splits():
    """``synthetic``: 16x16 RGB, 4 classes, multi-label; 120 train, 40 validation, 40 query, 240 database."""
    return create_dataset("synthetic", seed=0)


@pytest.fixture
def make_model():
    """Factory of small from-scratch ``cnn`` models (width 8) with a fixed random init."""

    def make(bits: int = 16, seed: int = 0):
        torch.manual_seed(seed)
        return create_hash_model("cnn", bits, backbone_kwargs={"width": 8})

    return make
