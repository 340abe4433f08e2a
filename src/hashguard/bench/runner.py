"""Run a benchmark grid into a results directory, resumably, then write its report.

Layout of the output directory ``DIR``::

    store.json                 format, hashguard version and evaluation protocol of every record
    spec.json                  the grid (what ``hashguard report DIR`` lays its tables out from)
    records/<key>.json         one JSON record per run (config, metrics, timings, version), atomic
    models/<key>.pt (+ .json)  the trained and the defended checkpoints, named by their record key
    protocols/*.json           the query indices and target labels of each seed and query count
    figures/<key>.png          retrieval examples (query, adversarial query, perturbation, top-10)
    report.md, report.html     the report (``bench.report``)

Everything is checked before any work starts: the grid's names (``BenchSpec.validate``), the data
directory of datasets read from disk, and the results directory's format, version and protocol
(``RecordStore``). A run killed at any point keeps every finished record, checkpoint and figure;
the same command resumes with the first missing run (a defense resumes inside its epochs from its
``.resume.pt``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from .._atomic import atomic_write_bytes, atomic_write_json
from .grid import run_grid
from .plan import ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRAIN, TRANSFER, Run, plan
from .spec import BenchSpec
from .store import RecordStore

SPEC_FILE = "spec.json"


def machine_description(device: str = "cpu") -> str:
    """``x86_64, 2 CPU cores, torch 2.x`` (+ the GPU's name when ``device`` is CUDA): where a run ran."""
    import os
    import platform

    import torch

    text = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text


def protocol_of(spec: BenchSpec) -> Dict[str, Any]:
    """The evaluation protocol shared by every record of a results directory (DESIGN section 4)."""
    from ..attacks.protocol import PROTOCOL_FORMAT, SUCCESS_DEFINITION

    return {
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


def open_store(spec: BenchSpec, out: str | Path) -> RecordStore:
    """The results store of ``out`` for ``spec``; ``ValueError`` if it holds other records."""
    return RecordStore(out, protocol=protocol_of(spec))


class _Context:
    """Loaded splits, models and attack caches, kept while consecutive runs use them."""

    def __init__(self, spec: BenchSpec, out: Path, data_dir: Optional[str], device: str, progress: bool, log):
        self.spec, self.out, self.data_dir, self.device = spec, out, data_dir, device
        self.progress, self.log = progress, log
        self._splits: Dict[str, Any] = {}
        self._models: Dict[str, Any] = {}
        self._attack_cache_key: Any = None
        self._attack_cache: Dict[str, Any] = {}

    def splits(self, dataset: str):
        from ..data import load_splits

        if dataset not in self._splits:
            self._splits = {dataset: load_splits(dataset, self.spec.seed, self.data_dir)}
        return self._splits[dataset]

    def topk(self, splits) -> Optional[int]:
        if self.spec.topk == "default":
            return splits.default_topk
        return int(self.spec.topk) or None

    def checkpoint(self, key: str) -> Path:
        return self.out / "models" / f"{key}.pt"

    def model(self, key: str):
        from ..models import load_checkpoint

        if key not in self._models:
            path = self.checkpoint(key)
            if not path.is_file():
                raise ValueError(
                    f"checkpoint {path} is missing although its record exists; delete "
                    f"{self.out / 'records' / (key + '.json')} and every record whose config has "
                    f'"model": "{key}" (their results came from the lost weights), then re-run'
                )
            model, _ = load_checkpoint(path, map_location=self.device)
            if len(self._models) >= 2:  # victim + surrogate at most
                self._models.pop(next(iter(self._models)))
            self._models[key] = model
        return self._models[key]

    def attack_cache(self, victim: str, surrogate: Optional[str]) -> Dict[str, Any]:
        if self._attack_cache_key != (victim, surrogate):
            self._attack_cache_key, self._attack_cache = (victim, surrogate), {}
        return self._attack_cache


def _train(ctx: _Context, run: Run):
    from ..hashing import TrainConfig, train_checkpoint
    from ..models import load_checkpoint

    c = run.config
    splits = ctx.splits(c["dataset"])
    path = ctx.checkpoint(run.key)
    if path.is_file():  # saved before a kill, record not yet written
        _, record = load_checkpoint(path, map_location="cpu")
    else:
        config = TrainConfig(**{"warmup_epochs": 0 if c["pretrained"] else 2, **c["train"], "seed": c["seed"]})
        record = train_checkpoint(
            splits, path, backbone=c["backbone"], hash_method=c["hash_method"], bits=c["bits"], seed=c["seed"],
            pretrained=c["pretrained"], config=config, topk=ctx.topk(splits), data_dir=ctx.data_dir, device=ctx.device,
            progress=ctx.progress, log=ctx.log,
        )
    metrics = {"clean_map": record["clean_map"], "topk": record["topk"], "checkpoint": str(path.relative_to(ctx.out)),
               "history": record["training"]["history"]}
    return metrics, {"train_seconds": record["training"]["seconds"]}


def _defend(ctx: _Context, run: Run):
    from ..defenses import defend_checkpoint
    from ..models import load_checkpoint

    c = run.config
    splits = ctx.splits(c["dataset"])
    ctx.model(c["model"])  # fails clearly when the source checkpoint is gone
    path = ctx.checkpoint(run.key)
    if path.is_file():
        _, record = load_checkpoint(path, map_location="cpu")
    else:
        params = {**c["params"], "seed": c["seed"]}
        if c["epochs"] is not None:
            params["epochs"] = c["epochs"]
        record = defend_checkpoint(
            ctx.checkpoint(c["model"]), c["defense"], path, splits=splits, params=params, device=ctx.device,
            eval_queries=c["eval_queries"], eval_steps=c["eval_steps"], progress=ctx.progress, log=ctx.log,
        )
    defense = dict(record["defense"])
    return {"defense": defense, "checkpoint": str(path.relative_to(ctx.out))}, {"defense_seconds": defense["seconds"]}


def _attack(ctx: _Context, run: Run, example: bool):
    from ..attacks.protocol import protocol_path, run_attack

    c = run.config
    splits = ctx.splits(c["dataset"])
    victim = ctx.model(c["model"])
    surrogate = ctx.model(c["surrogate"]) if c["surrogate"] else None
    params = dict(c["params"])
    params["eps"] = ctx.spec.eps
    if c["steps"] is not None:
        params["steps"] = c["steps"]
    n = c["queries"] or None
    n_total = len(splits.query)
    protocol = protocol_path(ctx.out / "protocols", c["dataset"], ctx.spec.seed, min(n or n_total, n_total))
    out = run_attack(
        victim, splits, c["method"], targeted=c["targeted"], n_queries=n, seed=ctx.spec.seed, topk=ctx.topk(splits),
        surrogate=surrogate, params=params, protocol_file=protocol, batch_size=c["batch_size"], progress=ctx.progress,
        cache=ctx.attack_cache(c["model"], c["surrogate"]), return_details=example,
    )
    record, details = out if example else (out, None)
    if details is not None and ctx.spec.example_rows > 0:
        from .examples import example_figure
        from .figures import figure_png_bytes

        fig = example_figure(details, splits, rows=ctx.spec.example_rows, eps=ctx.spec.eps,
                             title=f"{c['method']} ({'targeted' if c['targeted'] else 'untargeted'})")
        rel = Path("figures") / f"{run.key}.png"
        atomic_write_bytes(ctx.out / rel, figure_png_bytes(fig, dpi=80))
        record["example_figure"] = str(rel)
    timings = {"attack_seconds": record["seconds"], "seconds_per_query": record["seconds_per_query"]}
    if "fit_seconds" in record:
        timings["fit_seconds"] = record["fit_seconds"]
    return record, timings


def example_keys(spec: BenchSpec, runs) -> set:
    """The table attacks drawn as retrieval examples: per undefended model and mode, the first of
    ``spec.examples`` that the table runs in that mode, preferring one not drawn for the other mode."""
    chosen = set()
    for role_runs in _group_table_runs(runs).values():
        used = []
        for targeted in (False, True):
            # prefer a method not drawn yet, so ["pga", "mainstay"] gives PgA and targeted mainstay
            names = [n for n in spec.examples if n not in used] + [n for n in spec.examples if n in used]
            for name in names:
                hit = [r for r in role_runs if r.config["method"] == name and r.config["targeted"] == targeted]
                if hit:
                    chosen.add(hit[0].key)
                    used.append(name)
                    break
    return chosen


def _group_table_runs(runs) -> Dict[str, list]:
    groups: Dict[str, list] = {}
    for r in runs:
        if r.role == ATTACK:
            groups.setdefault(r.config["model"], []).append(r)
    return groups


def run_bench(
    spec: BenchSpec,
    out: str | Path,
    *,
    data_dir: Optional[str] = None,
    device: str = "cpu",
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
    report: bool = True,
) -> Dict[str, Any]:
    """Run every missing run of ``spec`` into ``out`` and (with ``report``) write the report.

    Returns ``{"records": [...], "seconds": ..., "report": {"md": path, "html": path} or None}``.
    Raises ``ValueError`` before any work for a bad grid, a missing ``data_dir`` or a results
    directory made with another hashguard version or protocol.
    """
    spec.validate()
    spec.check_data(data_dir)
    out = Path(out)
    store = open_store(spec, out)
    atomic_write_json(out / SPEC_FILE, spec.to_dict())
    runs = plan(spec)
    by_key = {r.key: r for r in runs}
    examples = example_keys(spec, runs)
    ctx = _Context(spec, out, data_dir, device, progress, log)

    machine = machine_description(device)

    def run_one(config: Dict[str, Any]):
        run = by_key[RecordStore.key_of(config)]
        if run.role == TRAIN:
            metrics, timings = _train(ctx, run)
        elif run.role == DEFENSE:
            metrics, timings = _defend(ctx, run)
        else:
            assert run.role in (ATTACK, CONVERGENCE, REATTACK, TRANSFER)
            metrics, timings = _attack(ctx, run, example=run.key in examples)
        return metrics, {**timings, "machine": machine, "device": device}

    start = time.perf_counter()
    records = run_grid(store, [r.config for r in runs], run_one, progress=progress)
    seconds = time.perf_counter() - start
    written = None
    if report:
        from .report import write_report

        written = write_report(out, run_seconds=seconds)
    return {"records": records, "seconds": seconds, "report": written}


def load_spec_of(out: str | Path) -> BenchSpec:
    """The grid a results directory was last run with (its ``spec.json``)."""
    path = Path(out) / SPEC_FILE
    if not path.is_file():
        raise ValueError(f"{out} has no {SPEC_FILE}: it is not a directory written by `hashguard bench`")
    return spec_from_json(json.loads(path.read_text()))


def spec_from_json(data: Dict[str, Any]) -> BenchSpec:
    return BenchSpec.from_dict(data, source=SPEC_FILE)


__all__ = ["SPEC_FILE", "example_keys", "load_spec_of", "open_store", "protocol_of", "run_bench"]
