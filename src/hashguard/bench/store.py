"""The results store: one JSON record per run, written atomically, keyed by the run's config.

Layout of a results directory::

    store.json             {"format", "version", "protocol"}: what every record below was made with
    records/<key>.json     {"key", "config", "metrics", "timings", "version", "protocol"}

``store.json`` is written when the store is first opened on a directory. Opening the directory again
with another format, hashguard version or evaluation protocol raises ``ValueError`` before anything
is read or written, so records made under different conditions are never mixed in one table.

Every file goes through :func:`hashguard._atomic.atomic_write_json` (a temporary file beside the
target, then ``os.replace``). The temporary files end in ``.tmp``, never in ``.json``, so a file
left behind by a run killed mid-write is never read as a record (docs/design.md#results-and-resuming).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import hashguard
from hashguard._atomic import atomic_write_json

RESULTS_FORMAT = "hashguard-results-v1"

# fields that make a record's file name readable, in this order, when the config has them
SLUG_FIELDS = ("dataset", "name", "backbone", "hash_method", "bits", "defense", "method", "targeted")
_HASH_CHARS = 12
_SLUG_MAX = 80
_RECORD_FIELDS = ("key", "config", "metrics", "timings", "version", "protocol")


def _to_json(value: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars and arrays, 0-d tensors (anything with ``tolist``)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _normalise(value: Any, what: str) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars Python numbers)."""
    try:
        return json.loads(json.dumps(value, default=_to_json))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must hold only JSON values (dict, list, str, int, float, bool, None, numpy "
            f"scalars or arrays); {err}"
        ) from None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_to_json)


def _slug_part(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if field == "targeted" and isinstance(value, bool):
        return "targeted" if value else "untargeted"
    if field == "bits" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value}bits"
    text = re.sub(r"[^A-Za-z0-9.-]+", "-", str(value)).strip(".-")
    return text or None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{what} {path} is not valid JSON ({err}); delete it (a record is re-run by the next "
            f"grid run) or restore it"
        ) from None


class RecordStore:
    """JSON records of runs in ``directory``, one file per config.

    Args:
        directory: the results directory (created when missing).
        protocol: the evaluation protocol every record in this directory follows (eps, steps,
            relevance, top-k, ...), JSON values only. Stored in ``store.json`` and in every record.

    Raises:
        ValueError: ``directory`` already holds results made with another format, hashguard
            version or protocol (or an unreadable ``store.json``, or records without one).

    Example::

        store = RecordStore("results/pga", protocol={"eps": 8 / 255, "steps": 100})
        store.put({"dataset": "mnist-mosaic", "bits": 16}, {"map": 0.81}, {"seconds": 3.2})
        store.get({"bits": 16, "dataset": "mnist-mosaic"})["metrics"]  # {"map": 0.81}
    """

    def __init__(self, directory: str | Path, *, protocol: dict):
        if not isinstance(protocol, dict):
            raise ValueError(f"protocol must be a dict of JSON values, got {type(protocol).__name__}")
        self.directory = Path(directory)
        self.records_dir = self.directory / "records"
        self.protocol = _normalise(protocol, "protocol")
        self.version = hashguard.__version__  # read at open time, so tests can monkeypatch it
        self._open()

    # -- store.json ---------------------------------------------------------------------------

    @property
    def header(self) -> dict:
        return {"format": RESULTS_FORMAT, "version": self.version, "protocol": self.protocol}

    def _open(self) -> None:
        meta_path = self.directory / "store.json"
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"results directory {self.directory} is a file; choose a directory")
        if meta_path.exists():
            meta = _read_json(meta_path, "results store header")
            if not isinstance(meta, dict):
                raise ValueError(f"results store header {meta_path} is not a JSON object; {self._fix()}")
            for field in ("format", "version", "protocol"):
                found, wanted = meta.get(field), self.header[field]
                if found != wanted:
                    raise ValueError(
                        f"results directory {self.directory} holds records made with {field} "
                        f"{_canonical(found)}, but this run uses {field} {_canonical(wanted)}; "
                        f"records of different {field}s must not be mixed. {self._fix()}"
                    )
            return
        if self.records_dir.is_dir() and any(self.records_dir.glob("*.json")):
            raise ValueError(
                f"results directory {self.directory} holds records but no store.json, so their "
                f"format, version and protocol are unknown. {self._fix()}"
            )
        atomic_write_json(meta_path, self.header)

    def _fix(self) -> str:
        return f"Use a new results directory, or delete {self.directory} to start over."

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def key_of(config: dict) -> str:
        """A stable, filesystem-safe key: a readable slug plus a short sha256 of the whole config.

        The slug joins the :data:`SLUG_FIELDS` the config has (``mnist-mosaic_cnn_dpsh_16bits_pga_
        targeted``); the hash is over the canonical JSON (sorted keys) of the full config, so the
        key does not depend on the dict's order and differs for any two different configs.
        """
        if not isinstance(config, dict):
            raise ValueError(f"a config must be a dict, got {type(config).__name__}")
        try:
            canonical = _canonical(config)
        except (TypeError, ValueError) as err:
            raise ValueError(f"config must hold only JSON values; {err}") from None
        digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:_HASH_CHARS]
        parts = [_slug_part(f, config[f]) for f in SLUG_FIELDS if f in config]
        slug = "_".join(p for p in parts if p)[:_SLUG_MAX].rstrip("_.-")
        return f"{slug}-{digest}" if slug else digest

    def path_of(self, config: dict) -> Path:
        return self.records_dir / f"{self.key_of(config)}.json"

    # -- records ------------------------------------------------------------------------------

    def has(self, config: dict) -> bool:
        """Whether a record for ``config`` exists (finished runs only: writes are atomic)."""
        return self.path_of(config).is_file()

    def get(self, config: dict) -> dict | None:
        """The record of ``config``, or None. A corrupt record file raises ``ValueError``."""
        path = self.path_of(config)
        if not path.is_file():
            return None
        record = self._load(path)
        if record["config"] != _normalise(config, "config"):
            raise ValueError(
                f"record {path} holds config {_canonical(record['config'])}, not "
                f"{_canonical(config)} (a hash collision or an edited file); delete the file"
            )
        return record

    def put(self, config: dict, metrics: dict, timings: dict) -> Path:
        """Write the record of ``config`` atomically (replacing an older one) and return its path."""
        for name, value in (("metrics", metrics), ("timings", timings)):
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
        key = self.key_of(config)
        record = {
            "key": key,
            "config": _normalise(config, "config"),
            "metrics": _normalise(metrics, "metrics"),
            "timings": _normalise(timings, "timings"),
            "version": self.version,
            "protocol": self.protocol,
        }
        return atomic_write_json(self.records_dir / f"{key}.json", record)

    def records(self) -> list[dict]:
        """Every record, sorted by key. Temporary files (``*.tmp``) and other files are ignored."""
        if not self.records_dir.is_dir():
            return []
        paths = sorted(p for p in self.records_dir.iterdir() if p.suffix == ".json" and p.is_file())
        return sorted((self._load(p) for p in paths), key=lambda r: r["key"])

    def __repr__(self) -> str:
        return f"RecordStore({str(self.directory)!r}, version={self.version!r})"

    def _load(self, path: Path) -> dict:
        record = _read_json(path, "record file")
        if not isinstance(record, dict) or any(f not in record for f in _RECORD_FIELDS):
            raise ValueError(
                f"record file {path} is not a hashguard record (expected an object with "
                f"{', '.join(_RECORD_FIELDS)}); delete it and re-run the grid"
            )
        if record["key"] != path.stem:
            raise ValueError(f"record file {path} holds key {record['key']!r}, not {path.stem!r}; delete it")
        return record


__all__ = ["RecordStore", "RESULTS_FORMAT", "SLUG_FIELDS"]
