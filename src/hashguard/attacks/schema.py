"""The parameter schema of every registered attack: type and range of each constructor argument.

Names, defaults and types come from each attack's constructor chain (``Attack.__init__`` and the
method's own arguments); the rules below add the ranges and choices a type cannot say. They are
applied by ``check_attack_params`` / ``create_attack``, so the grid reader, ``hashguard attack
--param`` and Python callers refuse a bad value the same way, before any work::

    pga.eps must be a number in (0, 1] ... (pixel units: images lie in [0, 1]), got 5;
    did you mean 5/255 = 0.01961? ...; e.g. eps = "8/255"

A rule names only a range; a rule of one method (``METHOD_RULES``) wins over the engine's
(``ENGINE_RULES``). An argument added to a constructor without a rule is still checked by its type
(annotation, or the type of its default); tests check every attack's defaults against its schema.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Dict

from .._params import EPS, SEED, STEP, Param, dataclass_schema, signature_schema

POSITIVE = Param("float", low=0, low_open=True)
NON_NEGATIVE = Param("float", low=0)
WEIGHT = Param("float", low=0, example=1.0)

# the shared engine of attacks/base.py (Attack.__init__)
ENGINE_RULES: Dict[str, Param] = {
    "targeted": Param("bool"),
    "eps": EPS,
    "step": STEP,
    "steps": Param("int", low=1, example=100),
    "random_start": Param("bool"),
    "alpha": Param("float", low=0, low_open=True, choices=("relative", "none"), optional=True, callable_ok=True,
                   example="relative", note="the tanh scale of the codes during the attack"),
    "optimizer": Param("str", choices=("sign", "sgd", "adam"), example="sign"),
    "lr": Param("float", low=0, low_open=True, optional=True, example=0.01,
                note="the image's learning rate under optimizer sgd / adam"),
    "momentum": Param("float", low=0, high=1, example=0.9),
    "betas": Param("list", length=2, item=Param("float", low=0, high=1, high_open=True), example=[0.9, 0.999]),
    "early_stop": Param("str", choices=("none", "code", "ap", "auto"), optional=True, example="code",
                        note="auto: ap when the call passes a database, else none"),
    "check_every": Param("int", low=1, example=10),
    "seed": SEED,
    "batch_size": Param("int", low=1, optional=True, example=128),
}


def _prototype_table() -> Param:
    from ..codes.prototype import LOSSES, PrototypeConfig

    rules = {
        "loss": Param("str", choices=tuple(LOSSES)),
        "epochs": Param("int", low=1),
        "steps_per_epoch": Param("int", low=1),
        "batch_size": Param("int", low=1),
        "lr": POSITIVE,
        "hidden": Param("int", low=1),
        "seed": SEED,
    }
    return Param("table", optional=True, table=dataclass_schema(PrototypeConfig, rules, where="PrototypeConfig"),
                 example={"epochs": 5})


def _gan_table() -> Param:
    from .prosgan_networks import TARGET_RULES, ProsGANConfig

    rules = {
        "epochs": Param("int", low=1),
        "batch_size": Param("int", low=1),
        "lr": POSITIVE,
        "rec_weight": NON_NEGATIVE,
        "hash_weight": NON_NEGATIVE,
        "adv_weight": NON_NEGATIVE,
        "d_every": Param("int", low=1),
        "batches_per_epoch": Param("int", low=1, optional=True),
        "width": Param("int", low=1),
        "res_blocks": Param("int", low=0),
        "label_channels": Param("int", low=1),
        "target_rule": Param("str", choices=TARGET_RULES),
        "seed": SEED,
    }
    return Param("table", optional=True, table=dataclass_schema(ProsGANConfig, rules, where="ProsGANConfig"),
                 example={"epochs": 10})


def _method_rules() -> Dict[str, Dict[str, Param]]:
    from ..codes.mainstay import WEIGHTINGS
    from .code_choice import CODES
    from .mainstay import LOSSES as MAINSTAY_LOSSES

    code = Param("str", choices=tuple(CODES), optional=True, example="mainstay")
    prototype = {"prototype": _prototype_table(), "prototype_path": Param("str", optional=True, example="prototype.pt")}
    return {
        "fgsm": {"code": code, "step": replace(STEP, optional=True)},  # None: one step of eps
        "ifgsm": {"code": code},
        "dhta": {"n_anchors": Param("int", low=1, example=9)},
        "hag": {"margin": Param("float", low=-1, low_open=True, example=0.5), "balance": WEIGHT},
        "mainstay": {"loss": Param("str", choices=tuple(MAINSTAY_LOSSES), example="linear"),
                     "weighting": Param("str", choices=tuple(WEIGHTINGS), example="paper",
                                        note="mainstay weights: SAAT Eq. 11 (paper) or SAAT's public code (code)")},
        "nag": {"noise": Param("float", low=0, high=1, fraction=True, example="32/255", note="pixel units"),
                "noise_weight": WEIGHT},
        "pga": {"margin": Param("float", low=-1, high=0, low_open=True, high_open=True, example=-0.8,
                                note="the margin t of PgA Eq. 12")},
        "sdha": {"sigma": Param("float", low=0, low_open=True, optional=True, example=5.0),
                 "z": Param("float", low=-1, high=1, optional=True, example=0.5),
                 "weight": WEIGHT,
                 "perturbation": Param("str", choices=("l2", "mse"), example="l2",
                                       note="Eq. 1's L2 norm (l2) or SAAT's public code's per-image MSE (mse)")},
        "tha": prototype,
        "prosgan": {**prototype, "gan": _gan_table(),
                    "bound": Param("str", choices=("none", "tanh"), example="tanh")},
    }


@cache
def attack_schema(name: str) -> Dict[str, Param]:
    """``parameter -> Param`` of attack ``name`` (every keyword its constructor chain takes)."""
    from .registry import ATTACKS

    cls = ATTACKS.get(name)
    rules = {**ENGINE_RULES, **_method_rules().get(cls.name, {})}
    return signature_schema(cls, rules, where=f"attack {cls.name!r}")


__all__ = ["ENGINE_RULES", "attack_schema"]
