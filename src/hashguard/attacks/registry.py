"""The attack registry (timm style): ``@register_attack``, ``list_attacks``, ``create_attack``."""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Set

from .._registry import Registry
from ..errors import InputError

ATTACKS = Registry("attack")


def register_attack(name: str):
    """Class decorator registering an :class:`~hashguard.attacks.base.Attack` under ``name``."""
    return ATTACKS.register_class(name)


def list_attacks(targeted: bool | None = None) -> List[str]:
    """Registered attack names; ``targeted=True`` / ``False`` keeps those supporting that mode."""
    names = ATTACKS.names()
    if targeted is None:
        return names
    key = "supports_targeted" if targeted else "supports_untargeted"
    return [n for n in names if getattr(ATTACKS.get(n), key)]


def check_attack_params(name: str, params: Dict[str, Any], *, syntax: str = "python") -> Dict[str, Any]:
    """Raise ``ValueError`` (an ``InputError``) if attack ``name`` is unknown, lacks the mode
    ``params["targeted"]`` asks for, takes none of some key of ``params``, or a value has the wrong
    type or range (``attacks.schema``); builds nothing. Returns the values normalised (``10.0`` ->
    10, ``"8/255"`` -> 0.0314). ``syntax`` is how they were written (``"toml"``, ``"cli"``,
    ``"python"``), for the example fix in the message."""
    from .._params import check_params
    from .schema import attack_schema

    cls = ATTACKS.get(name)
    accepted = _parameters(cls)
    unknown = sorted(set(params) - accepted) if accepted is not None else []
    if unknown:
        raise InputError(
            f"attack {name!r} has no parameter {', '.join(repr(k) for k in unknown)}; "
            f"valid parameters: {', '.join(sorted(accepted or ()))}"
        )
    checked = check_params(cls.name, attack_schema(cls.name), params, syntax=syntax)
    targeted = bool(checked.get("targeted", False))
    if targeted and not cls.supports_targeted:
        raise InputError(
            f"attack {name!r} has no targeted mode; targeted attacks: {', '.join(list_attacks(True))}"
        )
    if not targeted and not cls.supports_untargeted:
        raise InputError(
            f"attack {name!r} is targeted only; pass targeted=True (--targeted), or choose an untargeted "
            f"attack: {', '.join(list_attacks(False))}"
        )
    return checked


def create_attack(name: str, model: Any, **params: Any):
    """Build the attack ``name`` on ``model``; unknown names list the valid choices."""
    params = check_attack_params(name, params)
    return ATTACKS.get(name)(model, **params)


def _parameters(cls) -> Optional[Set[str]]:
    """Keyword parameters the ``__init__`` chain of ``cls`` accepts (None if open-ended), so an
    unknown ``--param`` is a ``ValueError`` naming the valid ones instead of a ``TypeError``."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # drop self
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"model"}
    return None
