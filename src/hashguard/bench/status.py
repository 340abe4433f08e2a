"""What a grid would run and what a results folder holds, read without writing or locking anything.

Used by ``hashguard bench --dry-run`` (the plan of a grid against its ``--out``) and ``hashguard
status DIR`` (a results folder's progress). Both only read: the records' file names and timings,
``store.json``, ``spec.json`` and the lock file's text. They never open a :class:`RecordStore` (which
writes ``store.json`` into a new folder) and never take the folder lock, so they can look at a
folder while ``hashguard bench`` is writing into it.

Runs are counted as the runner runs them: configs that coincide (a convergence run equal to a table
run, the "none" row of the defense table equal to a table attack) are one record, counted once,
under the kind that comes first in the plan.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from .plan import ATTACK, CONVERGENCE, DEFENSE, INJECTION, PERTURBATION, REATTACK, SURROGATE, TRAIN, TRANSFER, Run

KINDS = (TRAIN, ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRANSFER, PERTURBATION, SURROGATE, INJECTION)
ATTACK_KINDS = (ATTACK, CONVERGENCE, REATTACK, TRANSFER, PERTURBATION, INJECTION)
DEFAULT_QUERIES = 1000  # what "all queries" (queries = 0) counts as in a time estimate

# Seconds per unit of work on 2 (busy) CPU cores with the quick preset's cnn on mnist-mosaic (56x56),
# measured 2026-11-30 with torch 2.14: one query x one attack iteration (PgA), one training
# image-epoch, one adversarial-training image-epoch per inner step, and the fixed cost of a training
# run (the clean mAP) or an attack run. Only a first guess for a folder without timings: other
# backbones, image sizes and devices differ by orders of magnitude.
ROUGH_SECONDS = {"attack_query_step": 2.5e-3, "attack_run": 1.0, "train_image_epoch": 1e-2, "train_run": 20.0,
                 "defense_image_epoch_step": 6e-3}
ROUGH_TRAIN_IMAGES = 3000  # mnist-mosaic's training split; the size of other datasets is not known here
ROUGH_FIT_SECONDS = {"tha": 5.0, "prosgan": 10.0}  # the prototype / generator training of the quick settings


def distinct_runs(runs: List[Run]) -> List[Run]:
    """One run per record key, the first of the plan (in plan order)."""
    seen: Dict[str, Run] = {}
    for r in runs:
        seen.setdefault(r.key, r)
    return list(seen.values())


def count_runs(runs: List[Run]) -> Dict[str, int]:
    """Distinct runs per kind (only kinds that occur), in :data:`KINDS` order."""
    counts = {k: 0 for k in KINDS}
    for r in distinct_runs(runs):
        counts[r.role] += 1
    return {k: n for k, n in counts.items() if n}


# ------------------------------------------------------------------------------------------------
# reading a folder


def record_files(out: str | Path) -> Dict[str, Path]:
    """``key -> path`` of the finished records of a results folder (writes are atomic: a record
    file that exists is complete; temporary files do not end in ``.json``)."""
    records = Path(out) / "records"
    if not records.is_dir():
        return {}
    return {p.stem: p for p in records.iterdir() if p.suffix == ".json" and p.is_file()}


def read_records(paths: Dict[str, Path]) -> Dict[str, Dict[str, Any]]:
    """The readable records among ``paths`` (an unreadable one is skipped: the runner reports it)."""
    out = {}
    for key, path in paths.items():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("config"), dict):
            out[key] = record
    return out


def store_mismatch(out: str | Path, spec) -> Optional[str]:
    """Why ``hashguard bench`` would refuse ``out`` for ``spec`` (another format, version or
    protocol in its ``store.json``), or None. Reads ``store.json`` only."""
    import hashguard

    from .results import protocol_of
    from .store import RESULTS_FORMAT

    path = Path(out) / "store.json"
    if not path.is_file():
        return None
    try:
        header = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"{path} is unreadable ({err})"
    wanted = {"format": RESULTS_FORMAT, "version": hashguard.__version__,
              "protocol": json.loads(json.dumps(protocol_of(spec)))}
    for field, value in wanted.items():
        if not isinstance(header, dict) or header.get(field) != value:
            found = header.get(field) if isinstance(header, dict) else header
            return f"{out} holds records made with another {field} ({json.dumps(found, sort_keys=True)[:120]})"
    return None


def lock_holder(out: str | Path) -> Optional[Dict[str, Any]]:
    """Who holds the folder lock of ``out``: ``pid``, ``host``, ``since`` and ``alive`` (True / False
    for a process on this host, None for another host, which cannot be asked), or None when no lock
    file is there. Reads the lock file's text only (:mod:`hashguard._lock`): never opens it for
    writing and never takes the lock, so a ``hashguard bench`` starting meanwhile is not disturbed."""
    import socket

    from .._lock import LOCK_NAME, _alive

    path = Path(os.path.realpath(out)) / LOCK_NAME
    if not path.is_file():
        return None  # the holder removes the file when it finishes
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    info = info if isinstance(info, dict) else {}
    pid, host = info.get("pid"), info.get("host")
    alive: Optional[bool] = None
    if isinstance(pid, int) and host == socket.gethostname():
        alive = _alive(pid)
    return {"pid": pid, "host": host, "since": info.get("since"), "alive": alive}


# ------------------------------------------------------------------------------------------------
# time estimates


def _iterations(config: Dict[str, Any]) -> int:
    from .._catalog import entries

    if config.get("steps"):
        return int(config["steps"])
    entry = next((e for e in entries("attacks") if e["name"] == config.get("method")), None)
    if entry is None or entry["fixed_steps"]:
        return 1
    return int(entry["defaults"].get("steps") or 1)


def work(config: Dict[str, Any]) -> float:
    """A run's size in the unit its kind's time scales with (queries x iterations for attacks,
    image-epochs for training, epochs x inner steps for defenses)."""
    kind = config.get("kind")
    if kind == DEFENSE:
        from .._catalog import entries

        entry: Dict[str, Any] = next((e for e in entries("defenses") if e["name"] == config.get("defense")),
                                     {"defaults": {}})
        epochs = config.get("epochs") or entry["defaults"].get("epochs", 1)
        steps = dict(config.get("params") or {}).get("steps") or entry["defaults"].get("steps", 1)
        return float(epochs) * float(steps)
    if kind == TRAIN:
        train = dict(config.get("train") or {})
        warmup = train.get("warmup_epochs", 0 if config.get("pretrained") else 2)
        return float(train.get("epochs", 6)) + float(warmup)
    if kind == ATTACK:
        return float(config.get("queries") or DEFAULT_QUERIES) * _iterations(config)
    if kind == INJECTION:  # poisoned images crafted (about 10 target categories when all) x iterations
        crafted = float(config.get("per_target") or 1) * float(config.get("targets") or 10) * max(config.get("mine") or 1, 1)
        return crafted * (2 if config.get("noise_proxy") else 1) * _iterations(config)
    return 1.0  # an existing model: load and evaluate


def _rough(run: Run) -> float:
    c = run.config
    if run.role in (TRAIN, SURROGATE):
        if c.get("kind") != TRAIN:
            return 5.0
        return work(c) * ROUGH_TRAIN_IMAGES * ROUGH_SECONDS["train_image_epoch"] + ROUGH_SECONDS["train_run"]
    if run.role == DEFENSE:
        return work(c) * ROUGH_TRAIN_IMAGES * ROUGH_SECONDS["defense_image_epoch_step"]
    return (work(c) * ROUGH_SECONDS["attack_query_step"] + ROUGH_SECONDS["attack_run"]
            + ROUGH_FIT_SECONDS.get(c.get("method", ""), 0.0))


def _seconds(record: Dict[str, Any]) -> Optional[float]:
    timings = record.get("timings") or {}
    value = timings.get("wall_seconds")
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def estimate(pending: List[Run], recorded: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Seconds the ``pending`` runs should take: from the timings of ``recorded`` runs of the same
    kind and method (scaled by their size), of the same kind, else rough (:data:`ROUGH_SECONDS`).
    Returns ``{"seconds", "from_records", "rough"}`` (how many runs each source priced)."""
    rates: Dict[tuple, List[float]] = {}
    for record in recorded.values():
        seconds, config = _seconds(record), record["config"]
        if seconds is None:
            continue
        kind = config.get("kind")
        rate = seconds / max(work(config), 1e-9)
        rates.setdefault((kind, config.get("method") or config.get("defense")), []).append(rate)
        rates.setdefault((kind, None), []).append(rate)
    total, from_records, rough = 0.0, 0, 0
    for run in pending:
        c = run.config
        kind = c.get("kind")
        found = rates.get((kind, c.get("method") or c.get("defense"))) or rates.get((kind, None))
        if found:
            total += sum(found) / len(found) * work(c)
            from_records += 1
        else:
            total += _rough(run)
            rough += 1
    return {"seconds": total, "from_records": from_records, "rough": rough}


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ------------------------------------------------------------------------------------------------
# the summaries


def plan_status(spec, out: str | Path) -> Dict[str, Any]:
    """The runs of ``spec`` against the results folder ``out``: per kind the runs, done and pending,
    and an estimate of the time the pending ones take. Reads ``out``; writes nothing."""
    from .plan import plan

    planned = plan(spec)
    runs = distinct_runs(planned)
    files = record_files(out)
    kinds: Dict[str, Dict[str, int]] = {}
    pending = []
    for r in runs:
        row = kinds.setdefault(r.role, {"runs": 0, "done": 0, "pending": 0})
        row["runs"] += 1
        if r.key in files:
            row["done"] += 1
        else:
            row["pending"] += 1
            pending.append(r)
    ordered = {k: kinds[k] for k in KINDS if k in kinds}
    recorded = read_records(files)
    planned_keys = {r.key for r in runs}
    shared = {k: n for k, n in ((k, sum(r.role == k for r in planned) - sum(r.role == k for r in runs)) for k in KINDS) if n}
    return {
        "runs": len(runs),
        "done": len(runs) - len(pending),
        "pending": len(pending),
        "by_kind": ordered,
        "shared": shared,  # planned runs of a kind whose record is that of an earlier run
        "other_records": len(set(files) - planned_keys),  # from another grid run into the same folder
        "eta": estimate(pending, recorded),
        "timed_records": sum(_seconds(r) is not None for r in recorded.values()),
        "store_mismatch": store_mismatch(out, spec),
    }


def folder_status(out: str | Path) -> Dict[str, Any]:
    """The state of a results folder written by ``hashguard bench``: its grid (``spec.json``), runs
    done and pending per kind, the process holding it, the last record's time, the report's state.
    ``ValueError`` when ``out`` is not such a folder."""
    from .results import SPEC_FILE, load_spec_of

    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"{out} is not a directory; give the --out folder of a `hashguard bench` run")
    if not (out / SPEC_FILE).is_file():
        raise ValueError(f"{out} has no {SPEC_FILE}: it is not a results folder written by `hashguard bench`")
    spec = load_spec_of(out)
    state = plan_status(spec, out)
    files = record_files(out)
    last = max((p.stat().st_mtime for p in files.values()), default=None)
    report = out / "report.html"
    report_time = report.stat().st_mtime if report.is_file() else None
    if report_time is None:
        report_state = "missing"
    elif last is not None and last > report_time:
        report_state = "stale"  # records newer than the report
    else:
        report_state = "up to date"
    return {
        "dir": str(out),
        "spec": {"name": spec.name, "models": spec.n_models, "datasets": list(spec.datasets),
                 "backbones": list(spec.backbones), "objectives": list(spec.objectives), "bits": list(spec.bits),
                 "existing_models": [m["name"] for m in spec.models], "queries": spec.queries, "eps": spec.eps,
                 "seed": spec.seed},
        **state,
        "lock": lock_holder(out),
        "last_record": _utc(last),
        "report": report_state,
        "report_written": _utc(report_time),
    }


def _utc(stamp: Optional[float]) -> Optional[str]:
    if stamp is None:
        return None
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


__all__ = ["KINDS", "count_runs", "distinct_runs", "estimate", "folder_status", "lock_holder", "plan_status"]
