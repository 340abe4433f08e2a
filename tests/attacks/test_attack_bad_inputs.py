"""Inputs the attacks used to mishandle (issue 12): float64 images failed inside a layer, and label
rows of ±1, x5 or all zeros were accepted although the metrics refuse them (one check now)."""

from __future__ import annotations

import warnings

import pytest
import torch

from hashguard.attacks import create_attack, list_attacks
from hashguard.attacks.registry import ATTACKS
from hashguard.retrieval import mean_average_precision

pytestmark = pytest.mark.usefixtures("single_thread")

EPS = 0.1
TINY_PROTOTYPE = {"epochs": 1, "steps_per_epoch": 20, "hidden": 32, "lr": 1e-3}
PARAMS = {"tha": {"steps": 3, "prototype": TINY_PROTOTYPE},
          "prosgan": {"prototype": TINY_PROTOTYPE, "gan": {"epochs": 1, "width": 8, "res_blocks": 1, "label_channels": 8},
                      "bound": "tanh"}}  # the eps-ball variant (the paper's "none" has no budget)
CASES = [
    pytest.param(name, targeted, id=f"{name}-{'targeted' if targeted else 'untargeted'}")
    for name in list_attacks()
    for targeted in (False, True)
    if getattr(ATTACKS.get(name), "supports_targeted" if targeted else "supports_untargeted")
]


def attack_of(setting, name, targeted=False):
    params = {"eps": EPS, **PARAMS.get(name, {"steps": 3})}
    return create_attack(name, setting["model"], targeted=targeted, **params).fit(setting["knowledge"], setting["splits"].train)


@pytest.mark.parametrize("name, targeted", CASES)
def test_float64_images_are_accepted_and_attacked_in_the_models_precision(tiny_attack_setting, name, targeted):
    """float64 images (numpy's default) used to fail with 'expected scalar type Double but found Float'."""
    s = tiny_attack_setting
    x, y = s["x"][:4], s["y"][:4]
    tl = s["targets"][:4] if targeted else None
    x64 = x.double()
    result = attack_of(s, name, targeted)(x64, y, target_labels=tl, knowledge=s["knowledge"])
    assert float((result.x_adv.double() - x64).abs().max()) <= EPS + 1e-6
    assert float(result.x_adv.min()) >= 0 and float(result.x_adv.max()) <= 1
    assert bool((result.codes_adv.abs() == 1).all())
    assert torch.equal(x64, x.double()), "the input was modified"


def test_float64_images_encode_to_the_float32_codes(tiny_attack_setting):
    s = tiny_attack_setting
    model, x = s["model"], s["x"]
    assert torch.equal(model.encode(x.double()), model.encode(x))
    assert torch.allclose(model(x.double()), model(x))


@pytest.mark.parametrize("bad, hint", [(lambda y: 2 * y - 1, "-1"), (lambda y: 5 * y, "5")])
@pytest.mark.parametrize("which", ["labels", "target_labels"])
def test_label_values_other_than_0_1_are_refused_like_the_metrics_do(tiny_attack_setting, bad, hint, which):
    s = tiny_attack_setting
    x, y, tl = s["x"][:4], s["y"][:4], s["targets"][:4]
    targeted = which == "target_labels"
    attack = create_attack("pga", s["model"], targeted=targeted, steps=2)
    labels, targets = (y, bad(tl)) if targeted else (bad(y), None)
    with pytest.raises(ValueError, match=rf"{which} must be multi-hot with only 0/1 entries, but it contains {hint}"):
        attack(x, labels, target_labels=targets, knowledge=s["knowledge"])
    # the very same check as the metrics
    db = s["db_codes"]
    with pytest.raises(ValueError, match="must be multi-hot with only 0/1 entries"):
        mean_average_precision(db[:4], db, bad(y), s["db_labels"])


def test_all_zero_target_rows_are_refused(tiny_attack_setting):
    s = tiny_attack_setting
    x, y = s["x"][:4], s["y"][:4]
    targets = s["targets"][:4].clone()
    targets[2] = 0
    attack = create_attack("pga", s["model"], targeted=True, steps=2)
    with pytest.raises(ValueError, match="target_labels has 1 all-zero rows .* e.g. row 2"):
        attack(x, y, target_labels=targets, knowledge=s["knowledge"])


def test_all_zero_query_rows_are_attacked_with_a_warning(tiny_attack_setting):
    s = tiny_attack_setting
    x, y = s["x"][:4], s["y"][:4].clone()
    y[1] = 0
    attack = create_attack("pga", s["model"], steps=2)
    with pytest.warns(UserWarning, match="all-zero .* AP is 0 with or without the attack"):
        attack(x, y, knowledge=s["knowledge"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labelled queries: no warning
        attack(x, s["y"][:4], knowledge=s["knowledge"])
