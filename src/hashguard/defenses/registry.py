"""The defense registry (timm style): ``@register_defense``, ``list_defenses``, ``create_defense``."""

from __future__ import annotations

from typing import Any, Dict, List

from .._registry import Registry

DEFENSES = Registry("defense")


def register_defense(name: str):
    """Class decorator registering a :class:`~hashguard.defenses.base.Defense` under ``name``."""
    return DEFENSES.register_class(name)


def list_defenses() -> List[str]:
    return DEFENSES.names()


def check_defense_params(name: str, params: Dict[str, Any], *, syntax: str = "python") -> Dict[str, Any]:
    """Raise ``ValueError`` for an unknown defense, a parameter it does not take, or a value of the
    wrong type or range (``defenses.schema``); builds nothing. Returns the values normalised;
    ``syntax`` (``"toml"``, ``"cli"``, ``"python"``) is how they were written, for the example fix."""
    return DEFENSES.get(name).check_params(params, syntax=syntax)


def create_defense(name: str, model: Any, objective: Any, **params: Any):
    """Build the defense ``name`` for ``model`` with its hashing ``objective`` (L_ori)."""
    return DEFENSES.get(name)(model, objective, **params)
