"""The parameter schema of every registered defense: the :class:`DefenseConfig` fields (with each
method's paper defaults) and the method's own weights, each with its type and range.

Applied by ``check_defense_params`` / ``create_defense``, so a grid's ``[defenses] params``,
``hashguard defend --param`` and Python callers refuse a bad value the same way, before any
training::

    saat.lam must be a number >= 0, got "abc"; e.g. lam = 1.0
"""

from __future__ import annotations

from functools import cache
from typing import Dict

from .._params import EPS, SEED, STEP, Param, dataclass_schema, defaults_schema
from ..codes.mainstay import WEIGHTINGS

WEIGHT = Param("float", low=0)
FRACTION = Param("float", low=0, high=1, low_open=True)

CONFIG_RULES: Dict[str, Param] = {
    "epochs": Param("int", low=1),
    "batch_size": Param("int", low=2, note="pairwise losses and batch norm need pairs"),
    "optimizer": Param("str", choices=("sgd", "adam")),
    "lr": Param("float", low=0, low_open=True),
    "momentum": Param("float", low=0, high=1),
    "weight_decay": Param("float", low=0),
    "betas": Param("list", length=2, item=Param("float", low=0, high=1, high_open=True)),
    "milestones": Param("list", item=FRACTION, note="fractions of the epochs where the learning rate drops"),
    "gamma": FRACTION,
    "eps": EPS,
    "step": STEP,
    "steps": Param("int", low=1, note="inner PGD iterations"),
    "random_start": Param("bool"),
    "seed": SEED,
}

METHOD_RULES: Dict[str, Dict[str, Param]] = {
    "saat": {"lam": WEIGHT, "mu": WEIGHT,
             "weighting": Param("str", choices=WEIGHTINGS,
                                note="mainstay weights: SAAT Eq. 11 (paper) or SAAT's public code (code)")},
    "atrdh": {"adv_weight": WEIGHT, "prototype_lr": Param("float", low=0, low_open=True),
              "prototype_hidden": Param("int", low=1)},
}


@cache
def defense_schema(name: str) -> Dict[str, Param]:
    """``parameter -> Param`` of defense ``name``: DefenseConfig (its defaults those of the method)
    and the method's own parameters."""
    from .base import DefenseConfig
    from .registry import DEFENSES

    cls = DEFENSES.get(name)
    where = f"defense {cls.name!r}"
    schema = dataclass_schema(DefenseConfig, CONFIG_RULES, where=where, defaults=cls.defaults)
    schema.update(defaults_schema(cls.method_defaults(), METHOD_RULES.get(cls.name, {}), where=where))
    return schema


__all__ = ["CONFIG_RULES", "METHOD_RULES", "defense_schema"]
