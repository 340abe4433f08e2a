"""``wrap_model``: a user's own network gets the hashing-model contract, adding nothing to it."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import hashguard
from hashguard.attacks import Knowledge, create_attack
from hashguard.models import WrappedModel, encode_dataset, parse_input_norm, wrap_model
from hashguard.retrieval import mean_average_precision


class UserNet(nn.Module):
    """The tiny victim's layers in a class of the user's own (normalisation outside)."""

    def __init__(self, features: nn.Module, hash_layer: nn.Module, *, tanh=False, tuple_output=False, dict_output=False):
        super().__init__()
        self.features, self.hash_layer = features, hash_layer
        self.tanh, self.tuple_output, self.dict_output = tanh, tuple_output, dict_output

    def forward(self, x):
        f = self.features(x)
        h = self.hash_layer(f)
        h = torch.tanh(h) if self.tanh else h
        if self.tuple_output:
            return f, h
        return {"features": f, "codes": h} if self.dict_output else h


def user_net(victim, **kwargs) -> UserNet:
    return UserNet(copy.deepcopy(victim.features), copy.deepcopy(victim.hash_layer), **kwargs).eval()


VICTIM_NORM = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))  # the cnn backbone's normalisation


@pytest.fixture(scope="module")
def setting(tiny_victim):
    splits, victim = tiny_victim
    return splits, victim, splits.query.batch(slice(0, 12))


def test_wrapper_adds_no_layer_and_no_weight(setting):
    splits, victim, x = setting
    net = user_net(victim)
    model = wrap_model(net, input_norm=VICTIM_NORM, example=x)
    assert list(model.state_dict()) == ["module." + k for k in net.state_dict()]
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in net.parameters())
    assert model.module is net and model.bits == 16 and model.channels == 3 and model.input_shape == (3, 16, 16)


@pytest.mark.parametrize("kind", ["logits", "tanh", "tuple", "dict"])
def test_codes_equal_the_hashguard_model_with_the_same_weights(setting, kind):
    splits, victim, x = setting
    net = user_net(victim, tanh=kind == "tanh", tuple_output=kind == "tuple", dict_output=kind == "dict")
    select = {"tuple": 1, "dict": "codes"}.get(kind)
    model = wrap_model(net, input_norm=VICTIM_NORM, output="tanh" if kind == "tanh" else "logits", select=select, example=x)
    assert torch.equal(model.encode(x), victim.encode(x))
    assert torch.allclose(model(x), victim(x), atol=1e-5)
    assert torch.allclose(model(x, 0.3), victim(x, 0.3), atol=1e-4)  # alpha acts on the recovered logits
    codes = encode_dataset(model, splits.database)
    assert torch.equal(codes, encode_dataset(victim, splits.database))


def test_normalisation_is_applied_inside(setting):
    splits, victim, x = setting
    net = user_net(victim)
    mean, std = torch.tensor(VICTIM_NORM[0]).view(1, 3, 1, 1), torch.tensor(VICTIM_NORM[1]).view(1, 3, 1, 1)
    for norm in (VICTIM_NORM, "0.5,0.5,0.5/0.25,0.25,0.25", ([0.5], [0.25])):
        model = wrap_model(net, input_norm=norm, example=x)
        assert torch.allclose(model.logits(x), net((x - mean) / std), atol=1e-6)
    plain = wrap_model(net, input_norm="none", example=x)
    assert torch.allclose(plain.logits(x), net(x), atol=1e-6)
    imagenet = wrap_model(net, input_norm="imagenet", example=x)
    assert not torch.allclose(imagenet.logits(x), plain.logits(x))


@pytest.mark.parametrize("norm", ["bogus", "1,2/3", (1, 2, 3), ([0.5], [0.0]), "a,b/c,d"])
def test_bad_normalisation_is_refused(norm):
    with pytest.raises(ValueError, match="input_norm"):
        parse_input_norm(norm)


def test_attacks_defenses_and_metrics_take_the_wrapped_network(tiny_attack_setting):
    s = tiny_attack_setting
    victim = s["model"]
    model = wrap_model(user_net(victim), input_norm=VICTIM_NORM, example=s["x"][:2])
    knowledge = Knowledge.from_model(model, s["splits"].train)
    x, y = s["x"][:16], s["y"][:16]
    result = create_attack("pga", model, steps=20, step=2 / 255)(x, y, knowledge=knowledge)
    assert (result.x_adv - x).abs().max() <= 8 / 255 + 1e-6 and result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    clean = mean_average_precision(model.encode(x), s["db_codes"], y, s["db_labels"])
    attacked = mean_average_precision(result.codes_adv, s["db_codes"], y, s["db_labels"])
    assert attacked < clean - 0.1
    # the same attack on hashguard's own model with the same weights: the same result
    same = create_attack("pga", victim, steps=20, step=2 / 255)(x, y, knowledge=s["knowledge"])
    assert attacked == pytest.approx(mean_average_precision(same.codes_adv, s["db_codes"], y, s["db_labels"]), abs=0.03)
    targeted = create_attack("mainstay", model, targeted=True, steps=20, step=2 / 255)(
        x, y, target_labels=s["targets"][:16], knowledge=knowledge)
    t_clean = mean_average_precision(model.encode(x), s["db_codes"], s["targets"][:16], s["db_labels"])
    t_adv = mean_average_precision(targeted.codes_adv, s["db_codes"], s["targets"][:16], s["db_labels"])
    assert t_adv > t_clean + 0.1


def test_defense_returns_a_copy_of_the_users_own_class(tiny_victim):
    from hashguard.defenses import create_defense

    splits, victim = tiny_victim
    net = user_net(victim)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    model = wrap_model(net, input_norm=VICTIM_NORM, example=splits.query.batch(slice(0, 2)))
    robust = create_defense("saat", model, "dpsh", epochs=1, steps=2, batch_size=40).fit(splits.train, progress=False)
    assert isinstance(robust, WrappedModel) and type(robust.module) is UserNet and robust.module is not net
    fresh = user_net(victim)
    fresh.load_state_dict(robust.module.state_dict())  # same keys, same shapes
    assert all(torch.equal(net.state_dict()[k], before[k]) for k in before)  # the original is untouched
    assert any(not torch.equal(robust.module.state_dict()[k], before[k]) for k in before if k.endswith("weight"))


@pytest.mark.parametrize("call", ["attack", "encode_dataset", "knowledge", "defense", "robustness"])
def test_a_bare_module_is_told_to_wrap(tiny_victim, call):
    from hashguard.defenses import create_defense

    splits, victim = tiny_victim
    net = user_net(victim)
    calls = {
        "attack": lambda: create_attack("pga", net),
        "encode_dataset": lambda: encode_dataset(net, splits.query),
        "knowledge": lambda: Knowledge.from_model(net, splits.train),
        "defense": lambda: create_defense("saat", net, "dpsh"),
        "robustness": lambda: hashguard.evaluate_robustness(net, splits),
    }
    with pytest.raises(ValueError, match="hashguard.wrap_model"):
        calls[call]()


class _Shaped(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fc = nn.Linear(3, 8)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.fc(x.mean((2, 3))))


@pytest.mark.parametrize("fn, kwargs, message", [
    (lambda h: h[:, :, None], {}, r"shape \(N, K\)"),
    (lambda h: h.sum(1), {}, r"shape \(N, K\)"),
    (lambda h: h / 0.0, {}, "non-finite"),
    (lambda h: (h, h), {}, "select=INDEX"),
    (lambda h: {"a": h}, {"select": "b"}, "cannot pick"),
    (lambda h: 10 * h + 5, {"output": "tanh"}, "outside \\[-1, 1\\]"),
    (lambda h: torch.nn.functional.dropout(h, 0.5, True), {}, "not deterministic"),
])
def test_the_probe_catches_bad_outputs(fn, kwargs, message):
    with pytest.raises(ValueError, match=message):
        wrap_model(_Shaped(fn), input_norm="none", input_shape=(3, 8, 8), **kwargs)


def test_the_probe_finds_the_input_shape_or_says_how_to_give_it():
    class Fixed(nn.Module):  # DeepHash-style flatten: only 1 x 28 x 28 works
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 28, 12)

        def forward(self, x):
            return self.fc(x.flatten(1))

    model = wrap_model(Fixed(), input_norm="none")
    assert model.input_shape == (1, 28, 28) and model.channels == 1 and model.bits == 12
    with pytest.raises(ValueError, match="input_shape"):
        wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(5, 4)), input_norm="none")
    with pytest.raises(ValueError, match=r"\(3, 32, 32\)"):
        wrap_model(Fixed(), input_norm="none", example=torch.rand(2, 3, 32, 32))


def test_a_model_with_the_contract_is_not_wrapped_twice(tiny_victim):
    with pytest.raises(ValueError, match="already has the hashing-model contract"):
        wrap_model(tiny_victim[1], input_norm="none")


def test_channels_last_only_where_the_network_accepts_it(setting):
    splits, victim, x = setting
    fast = wrap_model(user_net(victim), input_norm=VICTIM_NORM, example=x)
    assert fast.channels_last  # convolutions, then global pooling: any layout works

    class ViewNet(nn.Module):  # DeepHash-style `.view` after the convolutions: NCHW only
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 16 * 16, 8)

        def forward(self, x):
            return self.fc(self.conv(x).view(x.shape[0], -1))

    plain = wrap_model(ViewNet(), input_norm="none", example=x)
    assert not plain.channels_last
    result = create_attack("pga", plain, steps=2)(x, torch.as_tensor(splits.query.labels[:12]).float(),
                                                   knowledge=Knowledge.from_model(plain, splits.train))
    assert result.x_adv.shape == x.shape
