"""Review regressions for the attack engine and individual attacks."""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks import Knowledge, create_attack
from hashguard.models import create_hash_model

pytestmark = pytest.mark.usefixtures("single_thread")

BITS = 8


def _setup(device="cpu"):
    torch.manual_seed(0)
    model = create_hash_model("cnn", BITS, backbone_kwargs={"width": 4}).to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g)
    y = torch.eye(3)[[0, 1, 2, 0]]
    ref_labels = torch.eye(3)[torch.arange(30) % 3]
    ref_codes = torch.where(torch.rand(30, BITS, generator=g) < 0.5, -1.0, 1.0)
    return model, x, y, Knowledge(ref_codes, ref_labels)


@pytest.mark.parametrize("bad", ["tanh", "binary"])
def test_given_codes_must_be_sign_codes(bad):
    model, x, y, _ = _setup()
    codes = torch.tanh(torch.randn(4, BITS)) if bad == "tanh" else (torch.rand(4, BITS) < 0.5).float()
    attack = create_attack("mainstay", model, steps=1)
    with pytest.raises(ValueError, match="±1"):
        attack(x, y, codes=codes)


def test_nag_context_tensors_live_on_the_image_device():
    # the engine subsets every non-"_" context tensor with a mask on the images' device when a
    # query stops early; a CPU tensor indexed by a CUDA mask raises
    model, x, y, knowledge = _setup()
    attack = create_attack("nag", model, targeted=True, steps=2)
    ctx = attack.prepare(x, y, y.flip(0), knowledge, [0, 1, 2, 3])
    assert ctx["ids"].device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nag_early_stop_on_cuda():
    model, x, y, knowledge = _setup("cuda")
    attack = create_attack("nag", model, targeted=True, steps=20, early_stop="code")
    result = attack(x, y, target_labels=y.flip(0), knowledge=knowledge)
    assert result.x_adv.device.type == "cuda"


def test_anchor_attacks_refuse_a_target_no_reference_sample_shares():
    """P2P / DHTA / NAG must not silently aim at an all-+1 code when the reference set has no
    sample of the target label."""
    import pytest as _pytest
    import torch as _torch

    from hashguard.attacks import Knowledge, create_attack
    from hashguard.models import create_hash_model

    _torch.manual_seed(0)
    model = create_hash_model("cnn", 8, backbone_kwargs={"width": 4}).eval()
    codes = _torch.where(_torch.rand(6, 8) < 0.5, -1.0, 1.0)
    labels = _torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)  # class 2 never occurs
    knowledge = Knowledge(codes, labels)
    x = _torch.rand(2, 3, 16, 16)
    y = _torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    targets = _torch.tensor([[0, 1.0, 0], [0, 0, 1.0]])
    for name in ("p2p", "dhta", "nag"):
        attack = create_attack(name, model, targeted=True, steps=1)
        with _pytest.raises(ValueError, match="no reference sample carries"):
            attack(x, y, target_labels=targets, knowledge=knowledge)
