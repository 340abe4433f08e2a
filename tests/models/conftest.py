"""Fixtures for the model tests: a tiny seeded ``cnn`` hash model and image batches in [0, 1]."""

from __future__ import annotations

import pytest
import torch

from hashguard.models import create_hash_model

BITS = 16


@pytest.fixture(autouse=True, scope="module")
def _single_thread(single_thread):
    """Every module here trains or runs tiny models: one thread (see tests/conftest.py)."""
    yield


@pytest.fixture
def make_model():
    """Factory of small from-scratch ``cnn`` models (width 8) with a fixed random init."""

    def make(bits: int = BITS, seed: int = 0, width: int = 8):
        torch.manual_seed(seed)
        return create_hash_model("cnn", bits, backbone_kwargs={"width": width})

    return make


@pytest.fixture
def model(make_model):
    """A 16-bit tiny model in eval mode whose BatchNorm running statistics are not the defaults."""
    m = make_model()
    # move the running statistics away from (0, 1) so that train and eval mode differ visibly
    # and checkpoints carry non-trivial buffers
    m.train()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(8, 3, 16, 16, generator=g))
    m.eval()
    return m


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(123)
    return torch.rand(10, 3, 16, 16, generator=g)
