"""A results directory's identity: its grid (``spec.json``) and its store with the shared protocol.

Both the runner (which writes a results directory) and the report (which reads one) need these;
they live here so that neither of those two modules imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from .spec import BenchSpec
from .store import RecordStore

SPEC_FILE = "spec.json"


def protocol_of(spec: BenchSpec) -> Dict[str, Any]:
    """The evaluation protocol shared by every record of a results directory (docs/design.md#evaluation-protocol)."""
    from .protocol import PROTOCOL_FORMAT, SUCCESS_DEFINITION

    out = {
        "attack_protocol": PROTOCOL_FORMAT,
        "eps": spec.eps,
        "seed": spec.seed,
        "queries": spec.queries,
        "topk": spec.topk,
        "relevance": "share at least one label",
        "ap_denominator": "relevant items retrieved in the top k",
        "empty_queries": "AP = 0",
        "ties": "database index order",
        "success": SUCCESS_DEFINITION,
    }
    if spec.protocol != "default":  # a named protocol's folder never takes another protocol's records
        from .protocols import get_protocol

        named = get_protocol(spec.protocol)
        out.update({"protocol": named.name, "target_rule": named.target_rule, "anchor_source": named.anchor_source})
    return out


def open_store(spec: BenchSpec, out: str | Path) -> RecordStore:
    """The results store of ``out`` for ``spec``; ``ValueError`` if it holds other records."""
    return RecordStore(out, protocol=protocol_of(spec))


def load_spec_of(out: str | Path) -> BenchSpec:
    """The grid a results directory was last run with (its ``spec.json``)."""
    path = Path(out) / SPEC_FILE
    if not path.is_file():
        raise ValueError(f"{out} has no {SPEC_FILE}: it is not a directory written by `hashguard bench`")
    return spec_from_json(json.loads(path.read_text()))


def spec_from_json(data: Dict[str, Any]) -> BenchSpec:
    return BenchSpec.from_dict(data, source=SPEC_FILE, check_files=False)


__all__ = ["SPEC_FILE", "load_spec_of", "open_store", "protocol_of", "spec_from_json"]
