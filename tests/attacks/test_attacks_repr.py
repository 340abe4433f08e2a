"""``repr`` of attacks and defenses: the class name, mode and budget, then every parameter that
differs from the class's default (as torchattacks / foolbox print an attack)."""

from __future__ import annotations

import pytest
import torch

from hashguard.attacks import create_attack, list_attacks
from hashguard.attacks.registry import ATTACKS
from hashguard.defenses import create_defense, list_defenses
from hashguard.hashing import create_hashing
from hashguard.models import create_hash_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_hash_model("cnn", 8, backbone_kwargs={"width": 4}).eval()


def test_default_attack_shows_mode_budget_and_iterations_only(model):
    assert repr(create_attack("pga", model)) == "PharosGuidedAttack(targeted=False, eps=8/255, steps=100)"
    assert repr(create_attack("hag", model)) == "HammingAttack(targeted=False, eps=8/255, steps=2000)"


def test_non_default_parameters_are_listed(model):
    attack = create_attack("pga", model, eps="4/255", margin=-0.5, seed=3, early_stop="code", batch_size=16)
    assert repr(attack) == ("PharosGuidedAttack(targeted=False, eps=4/255, steps=100, margin=-0.5, early_stop='code', "
                            "seed=3, batch_size=16)")
    assert repr(create_attack("sdha", model, targeted=True, lr=0.05)) == (
        "SmartDeepHashingAttack(targeted=True, eps=8/255, steps=1500, lr=0.05, sigma=10.0, z=-0.3)")
    assert repr(create_attack("tha", model, targeted=True, prototype={"epochs": 2})) == (
        "TargetedHashingAttack(targeted=True, eps=8/255, steps=100, prototype={'epochs': 2})")
    assert "gan={'epochs': 3}" in repr(create_attack("prosgan", model, targeted=True, gan={"epochs": 3}))


@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_has_a_repr_naming_its_class(model, name):
    targeted = not ATTACKS.get(name).supports_untargeted
    text = repr(create_attack(name, model, targeted=targeted, eps=0.1))
    assert text.startswith(type(create_attack(name, model, targeted=targeted)).__name__ + "(")
    assert f"targeted={targeted}" in text and "eps=0.1" in text


def test_defense_repr_shows_the_objective_and_the_changed_settings(model):
    assert repr(create_defense("saat", model, "dpsh")) == (
        "SemanticAwareAdversarialTraining(objective='dpsh', epochs=20, eps=8/255, step=2/255, steps=7)")
    objective = create_hashing("dpsh", bits=8, train_labels=torch.eye(3))
    text = repr(create_defense("atrdh", model, objective, epochs=3, lr=0.01, adv_weight=2.0))
    assert text == f"ATRDH(objective={type(objective).__name__}, epochs=3, eps=8/255, step=2/255, steps=7, lr=0.01, adv_weight=2.0)"


@pytest.mark.parametrize("name", list_defenses())
def test_every_defense_has_a_repr(model, name):
    defense = create_defense(name, model, "dpsh", epochs=2)
    assert repr(defense).startswith(type(defense).__name__ + "(objective='dpsh', epochs=2,")
