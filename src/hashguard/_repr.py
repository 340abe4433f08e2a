"""``__repr__`` of configurable objects (attacks, defenses): the class name and its parameters.

Like torchattacks and foolbox print an attack, e.g. ``PharosGuidedAttack(targeted=False,
eps=8/255, steps=100, margin=-0.5)``: a few key parameters always, then every parameter whose
value differs from the class's default. Pixel-unit values (``eps``, ``step``, ``noise``) that are
whole multiples of 1/255 print as ``k/255`` (still a valid Python expression).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, Iterable

PIXEL_PARAMETERS = ("eps", "step", "noise")


def init_defaults(cls: type) -> Dict[str, Any]:
    """Keyword parameters of the ``__init__`` chain of ``cls`` (``model`` excluded) with the
    default each takes for ``cls``: the most derived ``__init__`` naming a parameter wins;
    ``inspect.Parameter.empty`` where there is none. Stops at an ``__init__`` without ``**kwargs``."""
    defaults: Dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # drop self
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("model", "objective"):
                defaults.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return defaults


def same_value(a: Any, b: Any) -> bool:
    """``a == b`` for plain values (tuples and lists alike); False where equality is not a bool."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # e.g. tensors of several elements
        return False


def format_value(value: Any, *, pixels: bool = False) -> str:
    """``repr(value)``; with ``pixels``, a float that is a whole multiple of 1/255 as ``k/255``."""
    if pixels and isinstance(value, float) and value > 0:
        k = round(value * 255)
        if k >= 1 and k / 255 == value:
            return f"{k}/255"
    if isinstance(value, type):
        return value.__name__
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def dataclass_changes(config: Any, base: Any) -> Dict[str, Any]:
    """The fields of dataclass ``config`` whose values differ from ``base``'s."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if not same_value(getattr(config, f.name), getattr(base, f.name))}


def describe(name: str, items: Iterable[tuple]) -> str:
    """``name(k1=v1, k2=v2)``."""
    return f"{name}(" + ", ".join(f"{k}={format_value(v, pixels=k in PIXEL_PARAMETERS)}" for k, v in items) + ")"


__all__ = ["PIXEL_PARAMETERS", "dataclass_changes", "describe", "format_value", "init_defaults", "same_value"]
