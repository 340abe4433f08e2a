"""Parameter schemas: the type and range of every setting, checked where a grid or a command line is read.

One :class:`Param` says what one setting accepts (an integer >= 1, a number in (0, 1], true or
false, one of a few names, a table of further settings ...). A *schema* maps the names of a
method's settings to their ``Param``. :func:`signature_schema` and :func:`dataclass_schema` derive
one from a constructor or a config dataclass -- names, defaults and types come from the signature
(annotations, or the type of the default) -- and explicit rules add what the type cannot say:
ranges, choices, examples. So a parameter added to a constructor is checked by its type at once,
and a schema cannot name a parameter the constructor does not take.

:func:`check_value` and :func:`check_params` are the one checker that the grid reader
(``bench.spec``), the command line (``--param``, ``--eps``, the train flags) and the Python
entry points (``create_attack``, ``create_defense``, ``TrainConfig.validate``) share. A bad value
raises :class:`~hashguard.errors.InputError` naming the setting, the value, what it must be and an
example fix, written the way the user wrote the value (``syntax``)::

    saat.lam must be a number >= 0, got "abc"; e.g. lam = 1.0

Rules of the checker: booleans must be real booleans (TOML / YAML / JSON ``true`` / ``false``; on
the command line also yes / no / 1 / 0), never a truthy string; an integer may be written as a
float with no fraction (``10.0`` is 10, ``10.5`` is refused) but never as a boolean; numbers are
finite; pixel-unit budgets (``fraction``) also accept text such as ``"8/255"``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import numbers
import typing
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import InputError


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no default / no example
SYNTAXES = ("python", "toml", "cli", "flag")


@dataclass(frozen=True)
class Param:
    """What one setting accepts.

    Args:
        kind: ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"list"``, ``"table"``, or None to take
            it from the signature the schema is derived from.
        low, high: bounds of a number (inclusive unless ``low_open`` / ``high_open``).
        choices: the names a ``"str"`` accepts; for a number, names accepted besides numbers
            (``alpha = "relative"``).
        optional: None is accepted (the method's own default then applies).
        fraction: pixel units: text such as ``"8/255"`` is read as a number.
        callable_ok: Python callers may pass a function (never from a file or the command line).
        item, length: a ``"list"``'s element and, if fixed, its length.
        table: a ``"table"``'s own settings (None: any keys).
        example: a good value, shown in the error message (default: the default value).
        note: said after the range (``(pixel units, images in [0, 1])``).
    """

    kind: Optional[str] = None
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: Tuple[Any, ...] = ()
    optional: bool = False
    fraction: bool = False
    callable_ok: bool = False
    item: Optional[Param] = None
    length: Optional[int] = None
    table: Optional[Mapping[str, Param]] = None
    example: Any = MISSING
    default: Any = MISSING
    note: str = ""

    def describe(self) -> str:
        """``an integer >= 1``, ``a number in (0, 1]``, ``one of the valid choices sgd, adam`` ..."""
        kind = self.kind
        if kind == "bool":
            text = "true or false"
        elif kind == "int":
            text = "an integer" + _range(self, integer=True)
        elif kind == "float":
            text = "a number" + _range(self)
        elif kind == "str":
            text = f"one of the valid choices {', '.join(map(str, self.choices))}" if self.choices else "text"
        elif kind == "list":
            size = f"{self.length} " if self.length else ""
            text = f"a list of {size}values, each " + (self.item.describe() if self.item else "any value")
        elif kind == "table":
            text = "a table of settings" + (f" ({', '.join(self.table)})" if self.table else "")
        else:
            text = "a value"
        if self.choices and kind != "str":
            text += f", or one of the valid choices {', '.join(map(str, self.choices))}"
        notes = [n for n in (self.note, "a fraction such as 8/255 works too" if self.fraction else "") if n]
        if notes:
            text += f" ({'; '.join(notes)})"
        return text


def _num(x: float) -> str:
    return f"{x:g}"


def _range(p: Param, integer: bool = False) -> str:
    lo, hi = p.low, p.high
    if lo is not None and hi is not None:
        if integer and not p.low_open and not p.high_open:
            return f" from {_num(lo)} to {_num(hi)}"
        return f" in {'(' if p.low_open else '['}{_num(lo)}, {_num(hi)}{')' if p.high_open else ']'}"
    if lo is not None:
        return f" {'>' if p.low_open else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if p.high_open else '<='} {_num(hi)}"
    return ""


# ------------------------------------------------------------------------------------------------
# showing values and examples


def _show(value: Any, syntax: str = "toml") -> str:
    """A value as the user wrote it: ``"abc"`` (text in double quotes), ``true``, ``5``, ``[1, 2]``."""
    if syntax == "python" and not callable(value):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if callable(value) and not isinstance(value, (list, tuple, dict)):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return repr(value)


def example_text(name: str, value: Any, syntax: str) -> str:
    """``lam = 1.0`` (toml), ``--param lam=1.0`` (cli), ``--lr 0.01`` (flag), ``lam=1.0`` (python)."""
    if syntax == "toml":
        return f"{name} = {_toml(value)}"
    if syntax == "cli":
        return f"--param {name}={_text(value)}"
    if syntax == "flag":
        return f"{name} {_text(value)}"
    return f"{name}={value!r}"


def _example(p: Param) -> Any:
    if p.example is not MISSING:
        return p.example
    if p.default is not MISSING and p.default is not None and not callable(p.default):
        return p.default
    return MISSING


# ------------------------------------------------------------------------------------------------
# the checker


class _Bad(Exception):
    def __init__(self, hint: str = "") -> None:
        self.hint = hint


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def _from_command_line(p: Param, value: Any) -> Any:
    """A ``--param`` value (JSON when it parsed, else text) read for ``p``: yes / no / 1 / 0 for a
    boolean, none / null for an optional setting."""
    if p.optional and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    if p.kind == "bool":
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
    return value


def parse_fraction(text: str) -> float:
    """``"8/255"`` or ``"0.0314"`` -> float; raises ``ValueError`` on anything else."""
    text = text.strip()
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    return float(text)


def _in_range(p: Param, v: float) -> bool:
    if p.low is not None and (v <= p.low if p.low_open else v < p.low):
        return False
    if p.high is not None and (v >= p.high if p.high_open else v > p.high):
        return False
    return True


def _budget_hint(v: float) -> str:
    if 1 < v <= 255 and float(v).is_integer():
        return f"did you mean {_num(v)}/255 = {v / 255:.4g}?"
    if v > 1:
        return "at most 1 = 255/255; the papers use 8/255"
    return ""


def _check(label: str, p: Param, value: Any, syntax: str) -> Any:
    if value is None:
        if p.optional:
            return None
        raise _Bad()
    if p.callable_ok and callable(value) and not isinstance(value, (str, type)):
        return value
    if p.choices and isinstance(value, str) and value in p.choices:
        return value
    kind = p.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Bad()
        return value
    v: Any  # the checked value, of the parameter's kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _Bad()
        if isinstance(value, numbers.Integral):
            v = int(value)
        elif math.isfinite(float(value)) and float(value).is_integer():
            v = int(float(value))
        else:
            raise _Bad()
        if not _in_range(p, v):
            raise _Bad()
        return v
    if kind == "float":
        if isinstance(value, bool):
            raise _Bad()
        if isinstance(value, str) and p.fraction:
            try:
                v = parse_fraction(value)
            except (ValueError, ZeroDivisionError):
                raise _Bad() from None
        elif isinstance(value, numbers.Real):
            v = value if isinstance(value, (int, float)) else float(value)
        else:
            raise _Bad()
        if not math.isfinite(float(v)):
            raise _Bad("it must be finite")
        if not _in_range(p, float(v)):
            raise _Bad(_budget_hint(float(v)) if p.fraction and p.high == 1 else "")
        return float(v) if isinstance(value, str) else v
    if kind == "str":
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            raise _Bad()
        return value
    if kind == "list":
        if not isinstance(value, (list, tuple)) or (p.length is not None and len(value) != p.length):
            raise _Bad()
        if p.item is None:
            return tuple(value)
        return tuple(check_value(f"{label}[{i}]", p.item, v, syntax=syntax, name=None) for i, v in enumerate(value))
    if kind == "table":
        if not isinstance(value, dict):
            raise _Bad()
        if p.table is None:
            return dict(value)
        return check_params(label, p.table, value, syntax=syntax, what="setting")
    return value  # any value


def check_value(label: str, p: Param, value: Any, *, syntax: str = "python", name: Optional[str] = None) -> Any:
    """``value`` checked against ``p`` and normalised (``10.0`` -> 10, ``"8/255"`` -> 0.0314, on the
    command line ``"yes"`` -> True); raises :class:`InputError` saying what ``label`` must be.

    ``syntax`` is how the value was written, so the example fix is written the same way:
    ``"toml"`` (grid files), ``"cli"`` (``--param``), ``"flag"`` (``label`` is the flag, ``--lr``)
    or ``"python"`` (keyword arguments). ``name`` is the setting's name in the example (default:
    the last part of ``label``)."""
    if syntax not in SYNTAXES:
        raise ValueError(f"syntax must be one of {', '.join(SYNTAXES)}, got {syntax!r}")
    original = value
    if syntax in ("cli", "flag"):
        value = _from_command_line(p, value)
    try:
        return _check(label, p, value, syntax)
    except _Bad as bad:
        shown = _show(original, syntax)
        if p.fraction and isinstance(original, str):
            try:
                shown += f" (= {parse_fraction(original):.4g})"
            except (ValueError, ZeroDivisionError):
                pass
        message = f"{label} must be {p.describe()}, got {shown}"
        if bad.hint:
            message += f" ({bad.hint})"
        example = _example(p)
        if example is not MISSING:
            key = name if name is not None else (label if syntax == "flag" else label.rsplit(".", 1)[-1])
            message += f"; e.g. {example_text(key, example, syntax)}"
        raise InputError(message) from None


def check_params(owner: str, schema: Mapping[str, Param], params: Mapping[str, Any], *, syntax: str = "python",
                 what: str = "parameter") -> Dict[str, Any]:
    """Every entry of ``params`` checked against ``schema`` (a key it lacks is refused, naming the
    valid ones); returns the normalised values. ``owner`` names the method (``saat``, ``pga``)."""
    if not isinstance(params, Mapping):
        raise InputError(f"{owner} must be a table of settings, got {_show(params)}")
    unknown = [k for k in params if k not in schema]
    if unknown:
        raise InputError(f"{owner} has no {what} {', '.join(map(repr, unknown))}; valid {what}s: "
                         f"{', '.join(sorted(schema))}")
    return {k: check_value(f"{owner}.{k}", schema[k], v, syntax=syntax, name=k) for k, v in params.items()}


def check_defaults(owner: str, schema: Mapping[str, Param]) -> None:
    """Raise if a default value of ``schema`` fails its own rule (a schema drifted from its constructor)."""
    for key, p in schema.items():
        if p.default is not MISSING:
            check_value(f"{owner}.{key}", p, p.default)
        if p.example is not MISSING:
            check_value(f"{owner}.{key}", p, p.example)


# ------------------------------------------------------------------------------------------------
# schemas derived from signatures


def _from_type(hint: Any, default: Any) -> Optional[Param]:
    """The kind a type annotation (or, without one, the default's type) gives; None if neither says."""
    optional = default is None
    if hint is not MISSING and hint is not inspect.Parameter.empty and hint is not None:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Union and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            optional, hint = True, (rest[0] if len(rest) == 1 else typing.Any)
            origin = typing.get_origin(hint)
        base = origin or hint
        kinds = {bool: "bool", int: "int", float: "float", str: "str", tuple: "list", list: "list", dict: "table"}
        if isinstance(base, type) and base in kinds:
            return Param(kinds[base], optional=optional)
        if base is not typing.Any:
            return None
    if default is MISSING or default is None:
        return None
    for t, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (tuple, "list"), (list, "list"),
                    (dict, "table")):
        if isinstance(default, t):
            return Param(kind, optional=optional)
    return None


def _merge(where: str, name: str, rule: Optional[Param], derived: Optional[Param], default: Any) -> Param:
    if rule is None and derived is None:
        raise TypeError(f"{where}: parameter {name!r} has neither a type annotation nor a default that says its "
                        "type; give it a rule in the schema")
    if rule is None:
        param = derived
    elif rule.kind is None:
        if derived is None:
            raise TypeError(f"{where}: the rule of {name!r} needs a kind (the signature does not say its type)")
        param = replace(rule, kind=derived.kind, optional=rule.optional or derived.optional)
    else:
        param = rule
    assert param is not None  # rule and derived are not both None (checked above)
    return replace(param, default=default)


def constructor_parameters(cls: type) -> Optional[Dict[str, Tuple[Any, Any]]]:
    """``name -> (default, annotation)`` of the keyword parameters the ``__init__`` chain of ``cls``
    accepts (the most derived default, the first annotation found), without ``self`` / ``model``;
    None when the chain ends open (``**kwargs`` all the way up)."""
    found: Dict[str, Tuple[Any, Any]] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that does not resolve: fall back to the defaults
            hints = {}
        params = list(inspect.signature(init).parameters.values())[1:]
        for p in params:
            if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name == "model":
                continue
            default = MISSING if p.default is p.empty else p.default
            hint = hints.get(p.name, MISSING)
            if p.name in found:
                old_default, old_hint = found[p.name]
                found[p.name] = (old_default, old_hint if old_hint is not MISSING else hint)
            else:
                found[p.name] = (default, hint)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return found
    return None


def signature_schema(cls: type, rules: Mapping[str, Param], *, where: str,
                     skip: Tuple[str, ...] = ()) -> Dict[str, Param]:
    """The schema of the constructor of ``cls``: one :class:`Param` per keyword parameter, its type
    from the signature, its range from ``rules`` (a rule with a kind replaces the derived one)."""
    params = constructor_parameters(cls)
    if params is None:
        raise TypeError(f"{where}: the constructor of {cls.__name__} takes **kwargs all the way up; its "
                        "parameters cannot be listed")
    return {name: _merge(where, name, rules.get(name), _from_type(hint, default), default)
            for name, (default, hint) in params.items() if name not in skip}


def dataclass_schema(cls: type, rules: Mapping[str, Param], *, where: str, defaults: Optional[Mapping[str, Any]] = None,
                     skip: Tuple[str, ...] = ()) -> Dict[str, Param]:
    """The schema of a config dataclass (its fields, types and defaults), ``defaults`` overriding
    the field defaults (a method's paper settings)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    out: Dict[str, Param] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else MISSING)
        if defaults and f.name in defaults:
            default = defaults[f.name]
        out[f.name] = _merge(where, f.name, rules.get(f.name), _from_type(hints.get(f.name, MISSING), default), default)
    return out


def defaults_schema(defaults: Mapping[str, Any], rules: Mapping[str, Param], *, where: str) -> Dict[str, Param]:
    """The schema of settings known only by their defaults (``{"lam": 1.0, "mu": 1e-4}``)."""
    return {name: _merge(where, name, rules.get(name), _from_type(MISSING, default), default)
            for name, default in defaults.items()}


# ------------------------------------------------------------------------------------------------
# settings shared by several layers

MAX_BITS = 4096
BITS = Param("int", low=1, high=MAX_BITS, example=32,
             note="the code length; the papers use 12 to 128 bits")
EPS = Param("float", low=0, high=1, low_open=True, fraction=True, example="8/255",
            note="pixel units: images lie in [0, 1]")
STEP = Param("float", low=0, high=1, low_open=True, fraction=True, example="1/255", note="pixel units")
SEED = Param("int", low=0, example=0)


def check_bits(value: Any, *, label: str = "bits", syntax: str = "python") -> int:
    """A code length from 1 to :data:`MAX_BITS`, checked before any network is built."""
    return check_value(label, BITS, value, syntax=syntax, name="bits" if syntax != "flag" else label)


def resolve_device(name: Any, *, label: str = "--device") -> str:
    """``auto`` -> ``cuda`` when CUDA is present, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` (N a
    present GPU) and ``mps`` (where PyTorch has it) as given; anything else raises
    :class:`InputError` listing the choices."""
    import torch

    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    choices = "auto, cpu, cuda, cuda:N" + (", mps" if mps else "")
    text = str(name).strip().lower() if isinstance(name, str) else None
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    if text == "mps":
        if not mps:
            raise InputError(f"{label} mps asks for Apple's Metal backend, which this PyTorch does not have here; "
                             f"valid choices: {choices.replace(', mps', '')}")
        return "mps"
    if text is not None and (text == "cuda" or text.startswith("cuda:")):
        index = text[5:]
        if index and not index.isdigit():
            raise InputError(f"{label} must be one of {choices} (N a GPU number such as 0), got {_show(name)}")
        if not torch.cuda.is_available():
            raise InputError(f"{label} {text} asks for CUDA, but no CUDA device is available; use {label} cpu "
                             "(or auto)")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise InputError(f"{label} {text} asks for GPU {int(index)}, but this machine has {count} CUDA "
                             f"device{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1}); use one of those "
                             "or auto")
        return text
    raise InputError(f"{label} must be one of {choices}, got {_show(name)}")


__all__ = ["BITS", "EPS", "MAX_BITS", "MISSING", "Param", "SEED", "STEP", "check_bits", "check_defaults",
           "check_params", "check_value", "constructor_parameters", "dataclass_schema", "defaults_schema",
           "example_text", "parse_fraction", "resolve_device", "signature_schema"]
