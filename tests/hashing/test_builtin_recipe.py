"""The built-in recipe on the built-in dataset (slow: minutes on 2 CPU cores; run with -m slow)."""

from __future__ import annotations

import pytest

from hashguard.cli import main
from hashguard.models import read_checkpoint_config


@pytest.mark.slow
def test_dpsh_32_bits_from_scratch_reaches_the_target_map(tmp_path):
    # the README's main job: DPSH from a random init must escape the pairwise saddle and reach
    # clean mAP@1000 >= 0.80 (the foundation issue's target; measured 0.95)
    out = tmp_path / "dpsh-32.pt"
    assert main(["train", "--dataset", "mnist-mosaic", "--backbone", "cnn", "--hash", "dpsh", "--bits", "32",
                 "--seed", "0", "--out", str(out), "--quiet"]) == 0
    config = read_checkpoint_config(out)
    assert config["topk"] == 1000
    assert config["clean_map"] >= 0.80
    losses = [epoch["loss"] for epoch in config["training"]["history"]]
    assert losses[-1] < losses[0]
