"""Anchor-code attacks (P2P, DHTA, NAG) refuse a target label no reference sample carries,
instead of silently aiming at the all-+1 code an empty vote would give."""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks import Knowledge, create_attack
from hashguard.attacks.anchors import checked_anchor_codes
from hashguard.models import create_hash_model


def reference_set():
    torch.manual_seed(0)
    codes = torch.where(torch.rand(6, 8) < 0.5, -1.0, 1.0)
    labels = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)  # class 2 never occurs
    return Knowledge(codes, labels)


@pytest.mark.parametrize("name", ["p2p", "dhta", "nag"])
def test_anchor_attacks_refuse_a_target_no_reference_sample_shares(name):
    model = create_hash_model("cnn", 8, backbone_kwargs={"width": 4}).eval()
    x = torch.rand(2, 3, 16, 16)
    y = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    targets = torch.tensor([[0, 1.0, 0], [0, 0, 1.0]])
    attack = create_attack(name, model, targeted=True, steps=1)
    with pytest.raises(ValueError, match="no reference sample carries"):
        attack(x, y, target_labels=targets, knowledge=reference_set())


def test_checked_anchor_codes_names_the_query_and_label():
    knowledge = reference_set()
    targets = torch.tensor([[0, 1.0, 0], [0, 0, 1.0]])
    with pytest.raises(ValueError, match=r"target label \[2\] \(query 11\)"):
        checked_anchor_codes(targets, knowledge, n_anchors=1, seed=0, ids=[10, 11])
    codes = checked_anchor_codes(targets[:1], knowledge, n_anchors=3, seed=0, ids=[10])
    assert codes.shape == (1, 8) and bool(((codes == 1) | (codes == -1)).all())
