"""PrototypeNet (THA / ProS-GAN learned target codes): losses, training, determinism, save/load."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hashguard.codes.prototype import (
    PrototypeConfig,
    PrototypeNet,
    circle_code_prototype_loss,
    circle_prototype_loss,
    dpsh_prototype_loss,
    load_prototype_net,
    save_prototype_net,
    train_prototype_net,
)

pytestmark = pytest.mark.usefixtures("single_thread")


# ------------------------------------------------------------------------------------- helpers


def _random_problem(seed=0, b=5, n=7, c=4, k=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(b, k, generator=g, dtype=dtype) * 2 - 1
    targets = (torch.rand(b, c, generator=g) < 0.4).to(dtype)
    targets[0] = 0  # no positives
    targets[1] = 1  # no negatives (shares a label with every non-empty reference row)
    ref_labels = (torch.rand(n, c, generator=g) < 0.4).to(dtype)
    ref_labels[ref_labels.sum(1) == 0, 0] = 1
    ref_codes = torch.where(torch.rand(n, k, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    return h, targets, ref_codes, ref_labels


def _shares(y1, y2):
    return any(float(a) * float(b) > 0 for a, b in zip(y1, y2))


def _sign(x):
    return 1.0 if x >= 0 else -1.0


def _logsumexp(xs):
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _circle_reference(h, targets, ref_codes, ref_labels, gamma, margin, quantization):
    """Per-pair loops over plain floats."""
    b, k = h.shape
    rows = []
    for i in range(b):
        pos_terms, neg_terms = [], []
        for j in range(ref_codes.shape[0]):
            s = sum(float(h[i, t]) * float(ref_codes[j, t]) for t in range(k)) / k
            if _shares(targets[i], ref_labels[j]):
                a = max(1 + margin - s, 0.0)
                pos_terms.append(-gamma * a * (s - (1 - margin)))
            else:
                a = max(s + margin, 0.0)
                neg_terms.append(gamma * a * (s - margin))
        if not pos_terms and not neg_terms:
            rows.append(0.0)
            continue
        z = (_logsumexp(pos_terms) if pos_terms else 0.0) + (_logsumexp(neg_terms) if neg_terms else 0.0)
        rows.append(_softplus(z))
    quant = sum((_sign(float(h[i, t])) - float(h[i, t])) ** 2 for i in range(b) for t in range(k)) / b
    return sum(rows) / b + quantization * quant


def _circle_code_reference(h, targets, ref_codes, ref_labels, gamma, quantization):
    """THA's / SAAT's public-code circle loss, per-pair loops over plain floats: every (prototype,
    reference) pair of the batch goes into one pooled list per side, a_p = [2 - s]+, a_n = [s + 2]+,
    softplus of the two logsumexps, divided by the batch size."""
    b, k = h.shape
    pos_terms, neg_terms = [], []
    for i in range(b):
        for j in range(ref_codes.shape[0]):
            s = sum(float(h[i, t]) * float(ref_codes[j, t]) for t in range(k)) / k
            if _shares(targets[i], ref_labels[j]):
                pos_terms.append(-gamma * max(2 - s, 0.0) * s)
            else:
                neg_terms.append(gamma * max(s + 2, 0.0) * s)
    pooled = 0.0
    if pos_terms or neg_terms:
        z = (_logsumexp(pos_terms) if pos_terms else 0.0) + (_logsumexp(neg_terms) if neg_terms else 0.0)
        pooled = _softplus(z) / b
    quant = sum((_sign(float(h[i, t])) - float(h[i, t])) ** 2 for i in range(b) for t in range(k)) / b
    return pooled + quantization * quant


def _dpsh_reference(h, pred, targets, ref_codes, ref_labels, a1, a2, a3):
    b, k = h.shape
    n = ref_codes.shape[0]
    j1 = 0.0
    for i in range(b):
        for j in range(n):
            omega = 0.5 * sum(float(h[i, t]) * float(ref_codes[j, t]) for t in range(k))
            s = 1.0 if _shares(targets[i], ref_labels[j]) else 0.0
            j1 -= s * omega - math.log1p(math.exp(omega))
    j1 /= b * n
    j2 = sum((float(h[i, t]) - _sign(float(h[i, t]))) ** 2 for i in range(b) for t in range(k)) / b
    j3 = sum((float(pred[i, c]) - float(targets[i, c])) ** 2 for i in range(b) for c in range(targets.shape[1]))
    j3 /= targets.numel()
    return a1 * j1 + a2 * j2 + a3 * j3


def _hadamard_rows(k):
    h = torch.ones(1, 1)
    while h.shape[0] < k:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@pytest.fixture(scope="module")
def toy():
    """4 classes, K = 16: each class a Hadamard-row code (8 bits from the others) with 2 bits
    flipped per sample; 10 single-label rows per class and 3 two-label rows (c, c+1) per class."""
    g = torch.Generator().manual_seed(1)
    c, k = 4, 16
    centres = _hadamard_rows(k)[1 : c + 1]
    labels, codes = [], []
    for cls in range(c):
        for count, extra, flips in ((10, None, 2), (3, (cls + 1) % c, 1)):
            y = torch.zeros(c)
            y[cls] = 1
            if extra is not None:
                y[extra] = 1
            for _ in range(count):
                code = centres[cls].clone()
                code[torch.randperm(k, generator=g)[:flips]] *= -1
                labels.append(y)
                codes.append(code)
    return torch.stack(codes), torch.stack(labels)


def _quick(**kw):
    base = dict(epochs=1, steps_per_epoch=5, batch_size=8, lr=1e-3, hidden=32)
    base.update(kw)
    return PrototypeConfig(**base)


# -------------------------------------------------------------------------------------- losses


@pytest.mark.parametrize("gamma,margin,quantization", [(1.0, 0.0, 1e-4), (4.0, 0.25, 0.1), (0.5, 0.1, 0.0)])
def test_circle_loss_matches_per_pair_reference(gamma, margin, quantization):
    h, targets, ref_codes, ref_labels = _random_problem(seed=3)
    got = circle_prototype_loss(h, targets, ref_codes, ref_labels, gamma=gamma, margin=margin, quantization=quantization)
    want = _circle_reference(h, targets, ref_codes, ref_labels, gamma, margin, quantization)
    assert got.dim() == 0
    assert float(got) == pytest.approx(want, abs=1e-6)


def test_circle_loss_rows_without_positives_or_negatives_give_finite_gradients():
    h, targets, ref_codes, ref_labels = _random_problem(seed=4)
    h.requires_grad_(True)
    circle_prototype_loss(h, targets, ref_codes, ref_labels).backward()
    assert torch.isfinite(h.grad).all()
    assert h.grad[0].abs().sum() > 0 and h.grad[1].abs().sum() > 0  # one-sided rows still learn
    # an empty reference set: every row has neither positives nor negatives -> only quantisation
    empty = circle_prototype_loss(h.detach(), targets, ref_codes[:0], ref_labels[:0], quantization=0.0)
    assert float(empty) == 0.0


@pytest.mark.parametrize("gamma,quantization", [(1.0, 1e-4), (3.0, 0.1)])
def test_circle_code_loss_matches_per_pair_reference(gamma, quantization):
    h, targets, ref_codes, ref_labels = _random_problem(seed=3)
    got = circle_code_prototype_loss(h, targets, ref_codes, ref_labels, gamma=gamma, quantization=quantization)
    want = _circle_code_reference(h, targets, ref_codes, ref_labels, gamma, quantization)
    assert got.dim() == 0
    assert float(got) == pytest.approx(want, abs=1e-9)
    # it is another loss than the textbook one (pooled pairs, other weights)
    textbook = circle_prototype_loss(h, targets, ref_codes, ref_labels, gamma=gamma, quantization=quantization)
    assert float(got) != pytest.approx(float(textbook), abs=1e-3)


def test_circle_code_loss_gradients_are_finite_and_empty_sets_drop_out():
    h, targets, ref_codes, ref_labels = _random_problem(seed=4)
    h.requires_grad_(True)
    circle_code_prototype_loss(h, targets, ref_codes, ref_labels).backward()
    assert torch.isfinite(h.grad).all()
    assert h.grad[0].abs().sum() > 0 and h.grad[1].abs().sum() > 0
    empty = circle_code_prototype_loss(h.detach(), targets, ref_codes[:0], ref_labels[:0], quantization=0.0)
    assert float(empty) == 0.0
    only_pos = targets[1:2]  # shares a label with every reference row: no negative pair at all
    got = circle_code_prototype_loss(h[1:2].detach(), only_pos, ref_codes, ref_labels, quantization=0.0)
    want = _circle_code_reference(h[1:2].detach(), only_pos, ref_codes, ref_labels, 1.0, 0.0)
    assert float(got) == pytest.approx(want, abs=1e-9)


def test_dpsh_loss_matches_per_pair_reference():
    h, targets, ref_codes, ref_labels = _random_problem(seed=5)
    pred = torch.rand(targets.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for alphas in ((1.0, 1e-4, 1.0), (0.3, 0.5, 2.0)):
        got = dpsh_prototype_loss(h, pred, targets, ref_codes, ref_labels, *alphas)
        want = _dpsh_reference(h, pred, targets, ref_codes, ref_labels, *alphas)
        assert float(got) == pytest.approx(want, abs=1e-6)


def test_circle_loss_every_prototype_sees_every_reference_code():
    """THA's public code masks the (batch x reference) similarity with triu(1), so row i ignores
    reference samples 0..i. Here the loss is the mean of independent per-row losses."""
    h, targets, ref_codes, ref_labels = _random_problem(seed=6, b=4, n=6)
    targets = targets.clone()
    targets[:] = ref_labels[0]  # reference sample 0 is a positive of every row
    kw = dict(gamma=2.0, margin=0.25)
    batch = circle_prototype_loss(h, targets, ref_codes, ref_labels, **kw)
    singles = [circle_prototype_loss(h[i : i + 1], targets[i : i + 1], ref_codes, ref_labels, **kw) for i in range(4)]
    assert float(batch) == pytest.approx(float(sum(singles) / 4), abs=1e-12)
    perm = torch.tensor([3, 1, 0, 2])
    assert float(circle_prototype_loss(h[perm], targets[perm], ref_codes, ref_labels, **kw)) == pytest.approx(float(batch))

    def grads(codes):
        x = h.clone().requires_grad_(True)
        circle_prototype_loss(x, targets, codes, ref_labels, **kw).backward()
        return x.grad

    changed = ref_codes.clone()
    changed[0] = -changed[0]
    before, after = grads(ref_codes), grads(changed)
    for row in (0, -1):
        assert not torch.allclose(before[row], after[row]), f"row {row} ignores reference sample 0"


def test_loss_shape_mismatches_raise():
    h, targets, ref_codes, ref_labels = _random_problem()
    with pytest.raises(ValueError, match="bits"):
        circle_prototype_loss(h[:, :5], targets, ref_codes, ref_labels)
    with pytest.raises(ValueError, match="label rows"):
        circle_prototype_loss(h, targets, ref_codes, ref_labels[:3])
    with pytest.raises(ValueError, match="label_pred"):
        dpsh_prototype_loss(h, targets[:, :2], targets, ref_codes, ref_labels)


# ------------------------------------------------------------------------------------------ net


def test_net_outputs_codes_and_modes():
    torch.manual_seed(0)
    net = PrototypeNet(num_classes=5, bits=12, hidden=16, feature_dim=8)
    y = torch.eye(5)[:3]
    feat, h, pred = net(y)
    assert feat.shape == (3, 8) and h.shape == (3, 12) and pred.shape == (3, 5)
    assert h.abs().max() < 1 and ((pred > 0) & (pred < 1)).all()
    assert net.features(y).requires_grad
    net.train()
    codes = net.codes(y)
    assert net.training and not codes.requires_grad
    assert codes.dtype == torch.float32 and set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(codes, torch.where(h >= 0, 1.0, -1.0))
    with torch.no_grad():  # h = tanh(0) = 0 everywhere -> sign(0) = +1
        net.hash[0].weight.zero_()
        net.hash[0].bias.zero_()
    assert torch.equal(net.codes(y), torch.ones(3, 12))
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        net(torch.ones(5))


# ------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("loss", ["circle", "circle-code", "dpsh"])
def test_training_puts_each_class_prototype_nearest_its_own_codes(toy, loss):
    ref_codes, ref_labels = toy
    config = PrototypeConfig(loss=loss, epochs=2, steps_per_epoch=100, batch_size=16, lr=1e-3, hidden=64)
    net = train_prototype_net(ref_codes, ref_labels, config=config)
    assert not net.training
    assert net.config == dataclasses.asdict(config)
    protos = net.codes(torch.eye(4))
    dist = (16 - protos @ ref_codes.t()) / 2  # (classes, N) Hamming distances
    single = ref_labels.sum(1) == 1
    for cls in range(4):
        mean_to = [float(dist[cls][single & (ref_labels[:, other] == 1)].mean()) for other in range(4)]
        own = mean_to.pop(cls)
        assert own < min(mean_to), f"{loss}: class {cls} prototype is {own} from its codes vs {mean_to}"


def test_training_is_deterministic_and_leaves_global_rng_alone(toy):
    ref_codes, ref_labels = toy
    state = torch.get_rng_state()
    a = train_prototype_net(ref_codes, ref_labels, config=_quick(seed=7)).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    b = train_prototype_net(ref_codes, ref_labels, config=_quick(seed=7)).state_dict()
    c = train_prototype_net(ref_codes, ref_labels, config=_quick(seed=8)).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_label_pool_and_progress_bar(toy, capsys):
    ref_codes, ref_labels = toy
    pool = torch.eye(4)[:2].repeat(3, 1)  # duplicates collapse to two distinct rows
    net = train_prototype_net(ref_codes, ref_labels, label_pool=pool, config=_quick(loss="dpsh"), progress=True)
    assert net.codes(torch.eye(4)).shape == (4, 16)
    assert "prototype" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_runs_on_the_device_of_the_reference_codes(toy):
    ref_codes, ref_labels = toy
    net = train_prototype_net(ref_codes.cuda(), ref_labels, config=_quick())
    assert next(net.parameters()).is_cuda
    assert net.codes(torch.eye(4).cuda()).is_cuda


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(config=PrototypeConfig(loss="hinge")), r"'circle'.*'dpsh'"),
        (dict(config=_quick(epochs=0)), "epochs"),
        (dict(config=_quick(steps_per_epoch=0)), "steps_per_epoch"),
        (dict(config=_quick(batch_size=0)), "batch_size"),
        (dict(ref_codes="tanh"), "±1"),
        (dict(ref_codes="flat"), "2-D|\\(N, K\\)"),
        (dict(ref_labels="short"), "label rows"),
        (dict(label_pool=torch.eye(5)), "columns"),
        (dict(label_pool=torch.zeros(3, 4)), "no non-zero label rows"),
        (dict(ref_labels="zeros"), "no non-zero label rows"),
    ],
)
def test_bad_inputs_raise_helpful_errors(toy, change, match):
    ref_codes, ref_labels = toy
    kwargs = dict(config=_quick())
    kwargs.update(change)
    if kwargs.get("ref_codes") == "tanh":
        kwargs["ref_codes"] = ref_codes * 0.9
    elif kwargs.get("ref_codes") == "flat":
        kwargs["ref_codes"] = ref_codes.flatten()
    else:
        kwargs["ref_codes"] = ref_codes
    if kwargs.get("ref_labels") == "short":
        kwargs["ref_labels"] = ref_labels[:-1]
    elif kwargs.get("ref_labels") == "zeros":
        kwargs["ref_labels"] = torch.zeros_like(ref_labels)
    else:
        kwargs["ref_labels"] = ref_labels
    codes, labels = kwargs.pop("ref_codes"), kwargs.pop("ref_labels")
    with pytest.raises(ValueError, match=match):
        train_prototype_net(codes, labels, **kwargs)


# ------------------------------------------------------------------------------------ save/load


def test_save_load_round_trip(toy, tmp_path):
    ref_codes, ref_labels = toy
    net = train_prototype_net(ref_codes, ref_labels, config=_quick(loss="dpsh", seed=2))
    path = save_prototype_net(tmp_path / "sub" / "proto.pt", net)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = load_prototype_net(path)
    assert not loaded.training
    assert loaded.config == net.config
    assert (loaded.num_classes, loaded.bits, loaded.hidden, loaded.feature_dim) == (4, 16, 32, 512)
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]])
    assert torch.equal(loaded.codes(labels), net.codes(labels))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_loading_other_files_raises(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match=r"other\.pt.*hashguard-prototype.*weights"):
        load_prototype_net(other)
    wrong_format = tmp_path / "ckpt.pt"
    torch.save({"format": "hashguard-checkpoint-v1", "config_json": "{}", "state_dict": {}}, wrong_format)
    with pytest.raises(ValueError, match="hashguard-checkpoint-v1"):
        load_prototype_net(wrong_format)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_prototype_net(garbage)
    with pytest.raises(FileNotFoundError):
        load_prototype_net(tmp_path / "missing.pt")
