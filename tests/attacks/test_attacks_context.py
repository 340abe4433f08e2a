"""The state of an attack call lives in its context, not on the attack: per-query tensors on the
images' device and subset together, shared ones kept, the iteration passed explicitly."""

from __future__ import annotations

import copy

import pytest
import torch

from hashguard.attacks import AttackContext, Knowledge, create_attack
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


def test_per_query_tensors_are_built_on_the_requested_device():
    # the engine subsets every per-query tensor with a mask on the images' device when a query
    # stops early; one left on the CPU (NAG's ids once were) breaks on CUDA. The meta device
    # shows the placement without a GPU.
    _, x, y, knowledge = _setup()
    codes = torch.ones(4, BITS)
    ctx = AttackContext.of_batch(x, y, [7, 8, 9, 10], device="meta", target_labels=y.flip(0), given_codes=codes,
                                 knowledge=knowledge)
    for name in ("x", "labels", "ids", "target_labels", "given_codes"):
        assert getattr(ctx, name).device.type == "meta", name
    assert ctx.ids.dtype == torch.long and ctx.knowledge is knowledge


def test_subset_keeps_the_rows_of_every_per_query_tensor_and_the_shared_ones():
    _, x, y, knowledge = _setup()
    ctx = AttackContext.of_batch(x, y, [7, 8, 9, 10], device="cpu", target_labels=y.flip(0), knowledge=knowledge)
    ctx.reference = torch.ones(4, BITS)
    ctx.per_query["clean"] = torch.arange(4.0)
    keep = torch.tensor([True, False, True, False])
    sub = ctx.subset(keep)
    assert sub.id_list == [7, 9]
    assert torch.equal(sub.x, x[keep]) and torch.equal(sub.labels, y[keep]) and torch.equal(sub.target_labels, y.flip(0)[keep])
    assert torch.equal(sub.per_query["clean"], torch.tensor([0.0, 2.0])) and sub.reference.shape == (2, BITS)
    assert sub.given_codes is None and sub.target is None
    assert sub.knowledge is knowledge and ctx.id_list == [7, 8, 9, 10]  # the original is unchanged


def test_a_call_leaves_no_state_on_the_attack():
    model, x, y, knowledge = _setup()
    attack = create_attack("nag", model, targeted=True, steps=3, early_stop="code")
    before = copy.copy(vars(attack))
    first = attack(x, y, target_labels=y.flip(0), knowledge=knowledge)
    assert vars(attack).keys() == before.keys() and all(vars(attack)[k] is before[k] for k in before)
    again = attack(x, y, target_labels=y.flip(0), knowledge=knowledge)
    assert torch.equal(first.x_adv, again.x_adv)


def test_nag_noise_follows_the_iteration_it_is_given():
    model, x, y, knowledge = _setup()
    attack = create_attack("nag", model, targeted=True, steps=2)
    ctx = AttackContext.of_batch(x, y, range(4), device="cpu", target_labels=y.flip(0), knowledge=knowledge)
    attack.prepare(ctx)
    loss = {t: attack.objective(x, ctx, t=t, alpha=1.0)[0] for t in (0, 0, 1)}
    assert torch.equal(attack.objective(x, ctx, t=0, alpha=1.0)[0], loss[0])
    assert not torch.equal(loss[0], loss[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nag_early_stop_on_cuda():
    model, x, y, knowledge = _setup("cuda")
    attack = create_attack("nag", model, targeted=True, steps=20, early_stop="code")
    result = attack(x, y, target_labels=y.flip(0), knowledge=knowledge)
    assert result.x_adv.device.type == "cuda"


def test_missing_entries_are_named():
    _, x, y, _ = _setup()
    ctx = AttackContext.of_batch(x, y, range(4), device="cpu")
    with pytest.raises(ValueError, match="'goal'"):
        ctx.required("goal")
    with pytest.raises(ValueError, match=r"Knowledge\.from_model"):
        ctx.reference_set  # noqa: B018
    assert ctx.required("labels") is ctx.labels
