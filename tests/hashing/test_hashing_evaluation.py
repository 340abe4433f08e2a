"""Clean retrieval evaluation: retrieval_map is mAP of the encoded query and database codes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hashguard.hashing.evaluation import retrieval_map, validation_map
from hashguard.models import encode_dataset
from hashguard.retrieval import mean_average_precision


@pytest.fixture
def model(make_model):
    return make_model(bits=12).eval()


@pytest.mark.parametrize("topk", [None, 10, 1000])
def test_retrieval_map_is_map_of_encoded_codes(model, splits, topk):
    q = encode_dataset(model, splits.query)
    d = encode_dataset(model, splits.database)
    expected = mean_average_precision(q, d, splits.query.labels, splits.database.labels, topk=topk)
    got = retrieval_map(model, splits.query, splits.database, topk=topk, batch_size=64)
    assert isinstance(got, float)
    assert got == expected
    assert 0.0 <= got <= 1.0


def test_validation_map_ranks_validation_against_train(model, splits):
    result = validation_map(model, splits)
    assert set(result) == {"val_map"}
    assert result["val_map"] == retrieval_map(model, splits.validation, splits.train)
    no_validation = dataclasses.replace(splits, validation=None)
    assert validation_map(model, no_validation) == {}


def test_encode_dataset_equals_encode_of_all_images(model, splits):
    codes = encode_dataset(model, splits.query, batch_size=7)
    assert codes.dtype == torch.float32 and codes.device == torch.device("cpu")
    assert codes.shape == (len(splits.query), 12)
    assert torch.equal(codes, model.encode(splits.query.batch(slice(None))))


def test_encode_dataset_through_a_data_loader_keeps_the_order(model, splits):
    idx = [39, 3, 17, 0, 25, 8, 11]
    subset = splits.query.subset(idx)  # not in memory: goes through a DataLoader
    codes = encode_dataset(model, subset, batch_size=3)
    assert torch.equal(codes, model.encode(splits.query.batch(torch.tensor(idx))))


def test_encode_dataset_restores_train_mode_and_ignores_batch_statistics(model, splits):
    expected = encode_dataset(model, splits.query)
    model.train()
    assert torch.equal(encode_dataset(model, splits.query, batch_size=5), expected)
    assert model.training


def test_encode_dataset_of_an_empty_dataset(model, splits):
    codes = encode_dataset(model, splits.query.subset([]))
    assert codes.shape == (0, 12)
