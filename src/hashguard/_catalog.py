"""What ``hashguard list`` and the command line's ``--help`` show, readable without importing torch.

The registries (attacks, defenses, datasets, backbones, hashing objectives) live in modules that
import torch, which takes seconds to load; ``hashguard --help`` and ``hashguard list`` must not pay
for that. So their names, one-line descriptions, modes and paper defaults are kept in a generated
table, :mod:`hashguard._catalog_data`, built by :func:`build` from the registries themselves: the
descriptions from the docstrings, the modes from the attack classes, the defaults from the
parameter schemas (``attacks.schema``, ``defenses.schema``) and the constructors. Nothing in it is
written by hand. ``tests/test_catalog.py`` rebuilds it and fails when it differs, so the table
cannot drift from the code; after changing a registry, a docstring or a default, regenerate it::

    python -m hashguard._catalog --write

:func:`names` and :func:`entries` read the table (no torch); :func:`build` needs the registries.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

KINDS = ("attacks", "defenses", "datasets", "backbones", "objectives", "presets", "protocols")
DATA_FILE = Path(__file__).with_name("_catalog_data.py")


def _table() -> Dict[str, List[Dict[str, Any]]]:
    from ._catalog_data import CATALOG

    return CATALOG


def entries(kind: str) -> List[Dict[str, Any]]:
    """The entries of ``kind`` (one of :data:`KINDS`), each a dict with at least ``name`` and ``description``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid choices: {', '.join(KINDS)}")
    return [dict(e) for e in _table()[kind]]


def names(kind: str, *, targeted: Optional[bool] = None) -> List[str]:
    """The registered names of ``kind``; for attacks, ``targeted=True`` / ``False`` keeps that mode."""
    out = []
    for e in _table()[kind]:
        if targeted is not None and ("targeted" if targeted else "untargeted") not in e["modes"]:
            continue
        out.append(e["name"])
    return out


# ------------------------------------------------------------------------------------------------
# building the table from the registries (imports torch)


ABBREVIATIONS = ("al", "Eq", "Eqs", "Sec", "Fig", "Tab", "e.g", "i.e", "vs")


def summary(doc: Optional[str]) -> str:
    """The one-line description in a docstring: its first sentence, without paper titles, links to
    docs/ and trailing equation or section numbers (``DHTA, deep hashing targeted attack (Bai et
    al., ECCV 2020)``); a long one is cut at its first colon."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "")
    text = re.sub(r',\s*"[^"]*"', "", text)  # paper titles inside a citation
    text = re.sub(r"\s*\(docs/[^)]*\)|;\s*docs/[^)\s]*", "", text)  # links to the design notes
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            if not any(text[:i].endswith(a) for a in ABBREVIATIONS):
                text = text[:i]
                break
    text = re.sub(r",\s*(Eq|Eqs|Sec)\.[^()]*$", "", text)
    if len(text) > 120 and ": " in text[30:]:
        text = text[: text.index(": ", 30)]
    return text.rstrip(".;: ")


def _plain(value: Any) -> Any:
    """A default as JSON data: tuples as lists, numbers as they are."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _table_defaults(param: Any) -> Any:
    """A table setting's effective defaults (a ``None`` default means the table's own)."""
    if param.default is None and param.table:
        return {k: _plain(p.default) for k, p in param.table.items()}
    return _plain(param.default)


ALWAYS = ("eps", "step", "steps")  # an attack's budget and iterations, always shown
NEVER = ("targeted", "seed", "batch_size", "check_every", "early_stop")  # per call, not the method's


def _attack(name: str) -> Dict[str, Any]:
    import inspect

    from .attacks.base import Attack
    from .attacks.registry import ATTACKS
    from .attacks.schema import attack_schema

    cls = ATTACKS.get(name)
    schema = attack_schema(name)
    engine = inspect.signature(Attack.__init__).parameters
    sign_steps = schema["optimizer"].default == "sign" and not cls.fixed_steps  # else `step` is unused
    defaults = {k: _plain(schema[k].default) for k in ALWAYS if k in schema and (k != "step" or sign_steps)}
    for key, param in schema.items():
        own = key not in engine or engine[key].default != param.default
        if own and key not in NEVER and key not in ALWAYS:
            defaults[key] = _table_defaults(param)
    modes = [m for m, ok in (("untargeted", cls.supports_untargeted), ("targeted", cls.supports_targeted)) if ok]
    return {"name": name, "description": summary(sys.modules[cls.__module__].__doc__), "modes": modes,
            "fixed_steps": bool(cls.fixed_steps), "defaults": defaults}


DEFENSE_ALWAYS = ("epochs", "eps", "step", "steps")


def _defense(name: str) -> Dict[str, Any]:
    from .defenses.base import DefenseConfig
    from .defenses.registry import DEFENSES
    from .defenses.schema import defense_schema

    cls = DEFENSES.get(name)
    base = DefenseConfig()
    defaults = {}
    for key, param in defense_schema(name).items():
        if key == "seed":
            continue
        if key in DEFENSE_ALWAYS or not hasattr(base, key) or getattr(base, key) != param.default:
            defaults[key] = _plain(param.default)
    return {"name": name, "description": summary(sys.modules[cls.__module__].__doc__), "defaults": defaults}


def _dataset(name: str) -> Dict[str, Any]:
    from .data.benchmarks import BENCHMARKS
    from .data.loading import needs_data_dir
    from .data.registry import DATASETS

    factory = DATASETS.get(name)
    disk = needs_data_dir(name)
    if name in BENCHMARKS:
        topk = BENCHMARKS[name].default_topk
    elif disk:  # your own list files: the whole database
        topk = None
    else:  # built in: what the dataset itself says (generated in seconds, then cached)
        topk = factory(seed=0).default_topk
    return {"name": name, "description": summary(factory.__doc__ or sys.modules[factory.__module__].__doc__),
            "source": "--data-dir" if disk else "built in", "default_topk": topk}


def _backbone(name: str) -> Dict[str, Any]:
    from .models.backbones import BACKBONES

    return {"name": name, "description": summary(BACKBONES.get(name).__doc__)}


def _objective(name: str) -> Dict[str, Any]:
    from ._params import MISSING, constructor_parameters
    from .hashing.base import OBJECTIVES

    cls = OBJECTIVES.get(name)
    params = constructor_parameters(cls) or {}
    defaults = {k: _plain(d) for k, (d, _) in params.items() if k not in ("bits", "train_labels") and d is not MISSING}
    return {"name": name, "description": summary(sys.modules[cls.__module__].__doc__), "defaults": defaults}


def _preset(name: str) -> Dict[str, Any]:
    from .bench.plan import plan
    from .bench.presets import PRESETS
    from .bench.status import count_runs

    factory = PRESETS[name]
    spec = factory()
    counts = count_runs(plan(spec))
    return {"name": name, "description": summary(factory.__doc__), "models": spec.n_models,
            "runs": sum(counts.values()), "runs_by_kind": counts}


def _protocols() -> List[Dict[str, Any]]:
    """The protocols hashguard implements (``bench/protocols.py``): the default of
    docs/design.md#evaluation-protocol first, then one per seed paper, each value with its provenance."""
    from .bench.protocol import PROTOCOL_FORMAT, SUCCESS_DEFINITION
    from .bench.protocols import DEFAULT, PROTOCOLS
    from .bench.results import protocol_of
    from .bench.spec import BenchSpec

    spec = BenchSpec().validate()
    fixed = protocol_of(spec)
    shared = {
        "format": PROTOCOL_FORMAT,
        "relevance": fixed["relevance"],
        "ap_denominator": fixed["ap_denominator"],
        "empty_queries": fixed["empty_queries"],
        "ties": fixed["ties"],
        "success": dict(SUCCESS_DEFINITION),
    }
    out = []
    for name, protocol in PROTOCOLS.items():
        entry = protocol.describe()
        entry.pop("paper")
        if name == DEFAULT:
            entry.update({
                "description": "the evaluation protocol of docs/design.md#evaluation-protocol, used by every command",
                "eps": fixed["eps"], "queries": spec.queries,
                "steps": "each attack's paper default (hashguard list attacks)",
                "topk": "each dataset's paper cut-off (hashguard list datasets); 0 / None = the whole database",
                "target": "one per query, drawn uniformly from the database's distinct label rows that share no "
                          "label with the query (never all-zero); drawn once per seed and saved with the queries",
            })
        else:
            entry["description"] = f"{protocol.paper}: {protocol.description}"
            entry["steps"] = "each attack's paper default (hashguard list attacks)"
        out.append({**entry, **shared})
    return out


def build() -> Dict[str, List[Dict[str, Any]]]:
    """The table, from the registries (imports every registering module, hence torch)."""
    from .attacks import list_attacks
    from .bench.presets import list_presets
    from .data import list_datasets
    from .defenses import list_defenses
    from .hashing import list_hashing
    from .models import list_backbones

    return {
        "attacks": [_attack(n) for n in list_attacks()],
        "defenses": [_defense(n) for n in list_defenses()],
        "datasets": [_dataset(n) for n in list_datasets()],
        "backbones": [_backbone(n) for n in list_backbones()],
        "objectives": [_objective(n) for n in list_hashing()],
        "presets": [_preset(n) for n in list_presets()],
        "protocols": _protocols(),
    }


HEADER = '''"""Generated by ``python -m hashguard._catalog --write`` from the registries; do not edit.

``tests/test_catalog.py`` fails when this table differs from what the registries say.
"""

# ruff: noqa: E501
from typing import Any, Dict, List

'''


def render(catalog: Dict[str, List[Dict[str, Any]]]) -> str:
    import pprint

    return HEADER + "CATALOG: Dict[str, List[Dict[str, Any]]] = " + pprint.pformat(catalog, width=118, sort_dicts=False) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(build())
    if args == ["--write"]:
        DATA_FILE.write_text(text)
        print(f"wrote {DATA_FILE}")
        return 0
    if args == ["--check"]:
        if DATA_FILE.read_text() != text:
            print(f"{DATA_FILE} is out of date; run python -m hashguard._catalog --write", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m hashguard._catalog --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
