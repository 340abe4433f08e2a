"""Fixtures for the hashing tests: the built-in ``synthetic`` dataset and tiny ``cnn`` models."""

from __future__ import annotations

import pytest
import torch

from hashguard.data import create_dataset
from hashguard.models import create_hash_model


@pytest.fixture(autouse=True, scope="module")
def _single_thread(single_thread):
    """Every module here trains or runs tiny models: one thread (see tests/conftest.py)."""
    yield


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
