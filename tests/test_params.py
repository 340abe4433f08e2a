"""The parameter schemas: one checker of type and range, schemas that cannot drift from the constructors."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hashguard._params import BITS, EPS, Param, check_bits, check_defaults, check_params, check_value, resolve_device
from hashguard.attacks import create_attack, list_attacks
from hashguard.attacks.registry import ATTACKS, _parameters
from hashguard.attacks.schema import ENGINE_RULES, _method_rules, attack_schema
from hashguard.defenses import DefenseConfig, create_defense, list_defenses
from hashguard.defenses.registry import DEFENSES
from hashguard.defenses.schema import CONFIG_RULES, METHOD_RULES, defense_schema
from hashguard.errors import InputError
from hashguard.hashing import TrainConfig
from hashguard.hashing.trainer import TRAIN_RULES, train_schema
from hashguard.models import create_hash_model


@pytest.fixture(scope="module")
def model():
    return create_hash_model("cnn", 8, backbone_kwargs={"width": 4}).eval()


# ---------------------------------------------------------------------------- the checker
INT = Param("int", low=1, example=5)
FLOAT = Param("float", low=0, example=1.0)
BOOL = Param("bool", example=True)


@pytest.mark.parametrize("param, value, expected", [
    (INT, 10, 10), (INT, 10.0, 10), (FLOAT, 2, 2), (FLOAT, 0.5, 0.5), (BOOL, False, False),
    (EPS, "8/255", 8 / 255), (EPS, 1, 1), (Param("str", choices=("a", "b")), "b", "b"),
    (Param("list", length=2, item=FLOAT), [0.5, 1], (0.5, 1)), (Param("int", optional=True), None, None),
])
def test_good_values_pass_and_are_normalised(param, value, expected):
    out = check_value("m.x", param, value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("param, value", [
    (INT, 10.5), (INT, True), (INT, "10"), (INT, 0), (INT, None), (FLOAT, "fast"), (FLOAT, True), (FLOAT, -1),
    (FLOAT, math.nan), (FLOAT, math.inf), (BOOL, "no"), (BOOL, "false"), (BOOL, 1), (BOOL, 0),
    (EPS, 5), (EPS, "300/255"), (EPS, 0), (EPS, "eight"), (Param("str", choices=("a", "b")), "c"),
    (Param("list", length=2, item=FLOAT), [0.5]),
])
def test_bad_values_are_refused_naming_the_setting_the_value_and_a_fix(param, value):
    with pytest.raises(InputError) as err:
        check_value("method.setting", param, value, syntax="toml")
    message = str(err.value)
    assert message.startswith("method.setting must be ") and "got " in message
    if param.example is not None and param.item is None and not param.choices and not param.optional:
        assert "e.g. setting = " in message


def test_the_message_reads_like_the_issue_asks():
    with pytest.raises(InputError) as err:
        check_params("saat", defense_schema("saat"), {"lam": "abc"}, syntax="toml")
    assert str(err.value) == 'saat.lam must be a number >= 0, got "abc"; e.g. lam = 1.0'


def test_pixel_budgets_say_what_was_probably_meant():
    with pytest.raises(InputError, match=r"did you mean 5/255 = 0\.0196"):
        check_value("pga.eps", EPS, 5)
    with pytest.raises(InputError, match=r"300/255.*= 1\.176.*8/255"):
        check_value("--eps", EPS, "300/255", syntax="flag")


@pytest.mark.parametrize("text, expected", [("yes", True), ("no", False), ("true", True), ("False", False),
                                            (1, True), (0, False), ("1", True), ("0", False)])
def test_command_line_booleans(text, expected):
    assert check_value("pga.random_start", BOOL, text, syntax="cli") is expected
    with pytest.raises(InputError, match="true or false"):
        check_value("pga.random_start", BOOL, text, syntax="toml")
    with pytest.raises(InputError, match="true or false"):
        check_value("pga.random_start", BOOL, "maybe", syntax="cli")


def test_unknown_keys_of_a_table_name_the_valid_ones():
    with pytest.raises(InputError, match=r"tha\.prototype has no setting 'epoch'; valid settings: .*epochs"):
        check_params("tha", attack_schema("tha"), {"prototype": {"epoch": 5}})


# ---------------------------------------------------------------------------- schemas vs constructors
@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_schema_covers_its_constructor_and_its_defaults_pass(name):
    schema = attack_schema(name)
    assert set(schema) == _parameters(ATTACKS.get(name))  # every argument, and nothing else
    check_defaults(name, schema)
    for rule in _method_rules().get(name, {}):
        assert rule in schema, f"a rule of {name} names {rule!r}, which its constructor does not take"


def test_engine_rules_name_arguments_of_the_engine():
    from hashguard.attacks.base import Attack

    assert set(ENGINE_RULES) <= _parameters(Attack)


@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_builds_from_its_schema_defaults(model, name):
    cls = ATTACKS.get(name)
    schema = attack_schema(name)
    targeted = not cls.supports_untargeted
    params = {k: p.default for k, p in schema.items() if k != "targeted" and not callable(p.default)}
    attack = create_attack(name, model, targeted=targeted, **params)
    assert attack.eps == pytest.approx(schema["eps"].default)


@pytest.mark.parametrize("name", list_defenses())
def test_every_defense_schema_covers_its_parameters_and_its_defaults_pass(model, name):
    cls = DEFENSES.get(name)
    schema = defense_schema(name)
    assert set(schema) == set(DefenseConfig.__dataclass_fields__) | set(cls.method_defaults())
    check_defaults(name, schema)
    assert set(METHOD_RULES.get(name, {})) <= set(cls.method_defaults())
    defense = create_defense(name, model, "dpsh", **{k: p.default for k, p in schema.items()})
    assert defense.config.epochs == schema["epochs"].default


def test_config_and_train_rules_name_real_fields():
    assert set(CONFIG_RULES) <= set(DefenseConfig.__dataclass_fields__)
    assert set(TRAIN_RULES) == {f.name for f in dataclasses.fields(TrainConfig)}
    check_defaults("train", train_schema())


# ---------------------------------------------------------------------------- the Python entry points
@pytest.mark.parametrize("params, words", [
    ({"eps": 5}, ["pga.eps", "5/255"]), ({"eps": "300/255"}, ["pga.eps"]), ({"lr": "fast"}, ["pga.lr"]),
    ({"random_start": "no"}, ["pga.random_start"]), ({"steps": 10.5}, ["pga.steps"]), ({"steps": True}, ["pga.steps"]),
    ({"optimizer": "nadam"}, ["pga.optimizer", "sign, sgd, adam"]), ({"betas": [0.9, 1.5]}, ["pga.betas[1]"]),
])
def test_create_attack_refuses_bad_values(model, params, words):
    with pytest.raises(InputError) as err:
        create_attack("pga", model, **params)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("params, words", [({"eps": 5}, ["pga.eps", "5/255"]), ({"steps": 10.5}, ["pga.steps"]),
                                           ({"random_start": "no"}, ["pga.random_start"]),
                                           ({"optimizer": "adam"}, ["pga", "lr"])])
def test_an_attack_class_built_directly_checks_its_values_like_create_attack(model, params, words):
    # the engine's constructor runs the same rules, so bypassing the registry bypasses nothing
    with pytest.raises(InputError) as err:
        ATTACKS.get("pga")(model, **params)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_the_engine_rule_for_optimizers_lists_every_update_rule():
    from hashguard.attacks.update_rules import list_update_rules

    assert set(ENGINE_RULES["optimizer"].choices) == set(list_update_rules())


def test_create_attack_takes_integers_written_as_floats(model):
    assert create_attack("pga", model, steps=10.0).steps == 10


@pytest.mark.parametrize("params, words", [({"lam": "abc"}, ["saat.lam"]), ({"optimizer": "nadam"}, ["saat.optimizer"]),
                                           ({"epochs": "5"}, ["saat.epochs"]), ({"eps": 8}, ["saat.eps", "8/255"]),
                                           ({"random_start": "yes"}, ["saat.random_start"])])
def test_create_defense_refuses_bad_values(model, params, words):
    with pytest.raises(InputError) as err:
        create_defense("saat", model, "dpsh", **params)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("field, value", [("epochs", "5"), ("lr", "fast"), ("calibrate", "no"), ("epochs", 2.5),
                                          ("lr_step", True), ("num_workers", -1)])
def test_train_config_refuses_bad_values(field, value):
    with pytest.raises(InputError, match=f"train.{field} must be"):
        TrainConfig(**{field: value}).validate()


def test_train_config_normalises_integers_written_as_floats():
    config = TrainConfig(epochs=3.0)
    config.validate()
    assert config.epochs == 3 and type(config.epochs) is int


@pytest.mark.parametrize("bits", [0, 4097, 10 ** 8, 16.5, True])
def test_bits_are_checked_before_a_hash_layer_is_allocated(bits):
    with pytest.raises(InputError, match="bits must be an integer from 1 to 4096"):
        create_hash_model("cnn", bits, backbone_kwargs={"width": 4})
    assert check_bits(4096) == 4096 and BITS.high == 4096


def test_pretrained_must_be_a_real_boolean():
    with pytest.raises(InputError, match='pretrained must be true or false, got .no.'):
        create_hash_model("cnn", 8, pretrained="no")


# ---------------------------------------------------------------------------- devices
def test_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    for bad in ("tpu", "gpu", "cuda:x", "", 3):
        with pytest.raises(InputError, match="must be one of auto, cpu, cuda, cuda:N"):
            resolve_device(bad)
    with pytest.raises(InputError, match="no CUDA device is available"):
        resolve_device("cuda:0")
    if not torch.backends.mps.is_available():
        with pytest.raises(InputError, match="mps"):
            resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(InputError, match=r"asks for GPU 2, but this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")
