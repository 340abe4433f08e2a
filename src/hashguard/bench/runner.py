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
from .._lock import folder_lock
from .._paths import check_output_dir
from ..data.batching import load_images
from .grid import run_grid
from .plan import (
    ATTACK,
    CONVERGENCE,
    DEFENSE,
    INJECTION,
    PERTURBATION,
    REATTACK,
    SURROGATE,
    TRAIN,
    TRANSFER,
    Run,
    is_external,
    plan,
)
from .results import SPEC_FILE, load_spec_of, open_store, protocol_of
from .spec import BenchSpec
from .store import RecordStore
from .threads import check_threads, run_threads


def machine_description(device: str = "cpu") -> str:
    """``x86_64, 2 CPU cores, torch 2.x`` (+ the GPU's name when ``device`` is CUDA): where a run ran."""
    import os
    import platform

    import torch

    text = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text


class _Context:
    """Loaded splits, models and attack caches, kept while consecutive runs use them.

    ``sources`` says where a model key's weights come from when it is not a checkpoint the grid
    trained: ``("external", identity)`` an existing model of ``[[models]]``, ``("object", name)`` a
    model given in memory (``objects``), ``("defended", base key)`` a defended copy of either,
    whose network's state_dict is ``models/<key>.pt``."""

    def __init__(self, spec: BenchSpec, out: Path, data_dir: Optional[str], device: str, progress: bool, log,
                 objects: Optional[Dict[str, Any]] = None):
        self.spec, self.out, self.data_dir, self.device = spec, out, data_dir, device
        self.progress, self.log = progress, log
        self.objects = dict(objects or {})  # name -> (model, splits)
        self.sources: Dict[str, tuple] = {}
        self._splits: Dict[Any, Any] = {}
        self._models: Dict[str, Any] = {}
        self._attack_cache_key: Any = None
        self._attack_cache: Dict[str, Any] = {}

    def splits(self, config: Dict[str, Any]):
        """The splits a run's model is evaluated on (its own ``data_dir`` / image size, if any)."""
        from ..data import load_splits

        if config.get("name") in self.objects:
            return self.objects[config["name"]][1]
        key = (config["dataset"], config.get("data_dir") or self.data_dir, config.get("image_size"), config.get("resize"))
        if key not in self._splits:
            self._splits = {key: load_splits(key[0], self.spec.seed, key[1], image_size=key[2], resize=key[3])}
        return self._splits[key]

    def topk(self, splits) -> Optional[int]:
        if self.spec.topk == "default":
            return splits.default_topk
        return int(self.spec.topk) or None

    def checkpoint(self, key: str) -> Path:
        return self.out / "models" / f"{key}.pt"

    def _load(self, key: str):
        import copy

        import torch

        from ..models import load_checkpoint, load_external_model, unwrap
        from ..models.external import load_state_into, read_state_dict

        source = self.sources.get(key)
        if source is not None and source[0] == "object":
            return self.objects[source[1]][0]
        if source is not None and source[0] == "external":
            entry = self.spec_entry(key)
            if entry.get("checkpoint"):
                return load_checkpoint(entry["checkpoint"], map_location=self.device)[0]
            splits = self.splits(source[1])
            example = load_images(splits.query, torch.arange(min(2, len(splits.query))))  # the probe batch
            external, _ = load_external_model(
                entry["def"], entry.get("weights"), input_norm=entry["input_norm"], output=entry["output"],
                select=entry.get("select"), kwargs=entry.get("kwargs"), example=example, device=self.device,
            )
            return external
        path = self.checkpoint(key)
        if not path.is_file():
            raise ValueError(
                f"checkpoint {path} is missing although its record exists; delete "
                f"{self.out / 'records' / (key + '.json')} and every record whose config has "
                f'"model": "{key}" (their results came from the lost weights), then re-run'
            )
        if source is not None and source[0] == "defended" and self.spec_entry(source[1]).get("checkpoint"):
            model, _ = load_checkpoint(path, map_location=self.device)  # a hashguard checkpoint, defended
            return model
        if source is not None and source[0] == "defended":  # the user's network, defended
            model = copy.deepcopy(self.model(source[1]))
            load_state_into(unwrap(model), read_state_dict(path), source=str(path))  # damaged file: a clear error
            return model.to(self.device).eval()
        model, _ = load_checkpoint(path, map_location=self.device)
        return model

    def spec_entry(self, key: str) -> Dict[str, Any]:
        """The ``[[models]]`` entry behind an existing model's key (empty for other models)."""
        source = self.sources.get(key)
        if source is None or source[0] != "external":
            return {}
        return next(m for m in self.spec.models if m["name"] == source[1]["name"])

    def model(self, key: str):
        if key not in self._models:
            model = self._load(key)
            if len(self._models) >= 3:  # victim + surrogate (+ the base of a defended copy) at most
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
    splits = ctx.splits(c)
    if is_external(run.model):
        from ..hashing.evaluation import retrieval_map

        start = time.perf_counter()
        model = ctx.model(run.key)
        topk = ctx.topk(splits)
        clean_map = retrieval_map(model, splits.query, splits.database, topk=topk, progress=ctx.progress)
        metrics = {"clean_map": clean_map, "topk": topk, "bits": int(model.bits), "checkpoint": None,
                   "model_def": c.get("def"), "weights_sha256": c.get("weights_sha256")}
        return metrics, {"load_and_evaluate_seconds": time.perf_counter() - start}
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
    from ..defenses import defend_checkpoint, defend_model
    from ..models import load_checkpoint, save_weights

    c = run.config
    splits = ctx.splits(c)
    base = ctx.model(c["model"])  # fails clearly when the source checkpoint is gone
    path = ctx.checkpoint(run.key)
    params = {**c["params"], "seed": c["seed"]}
    if c["epochs"] is not None:
        params["epochs"] = c["epochs"]
    entry = ctx.spec_entry(c["model"])
    if is_external(run.model) and not entry.get("checkpoint"):  # the user's network: its own state_dict
        description = path.with_name(path.name + ".json")
        if path.is_file() and description.is_file():
            defense = json.loads(description.read_text())["defense"]
        else:
            resume = path.with_name(path.name + ".resume.pt")
            defended, defense = defend_model(
                base, c["defense"], splits, objective=c["hash_method"], params=params, resume_path=resume,
                eval_queries=c["eval_queries"], eval_steps=c["eval_steps"], progress=ctx.progress, log=ctx.log,
            )
            atomic_write_json(description, {"defense": defense, "defended_from": c["model"], "name": c["name"]})
            save_weights(defended, path)
            resume.unlink(missing_ok=True)
    else:  # a hashguard checkpoint, trained by the grid or given in [[models]]
        if path.is_file():
            _, record = load_checkpoint(path, map_location="cpu")
        else:
            record = defend_checkpoint(
                entry.get("checkpoint") or ctx.checkpoint(c["model"]), c["defense"], path, splits=splits,
                params=params, device=ctx.device, eval_queries=c["eval_queries"], eval_steps=c["eval_steps"],
                progress=ctx.progress, log=ctx.log,
            )
        defense = dict(record["defense"])
    return {"defense": defense, "checkpoint": str(path.relative_to(ctx.out))}, {"defense_seconds": defense["seconds"]}


def _attack(ctx: _Context, run: Run, example: bool):
    from .protocol import protocol_path, run_attack
    from .protocols import resolve_for

    c = run.config
    splits = ctx.splits(c)
    victim = ctx.model(c["model"])
    surrogate = ctx.model(c["surrogate"]) if c["surrogate"] else None
    params = dict(c["params"])
    params["eps"] = c.get("eps", ctx.spec.eps)  # a [perturbation] run may sweep eps
    if c["steps"] is not None:
        params["steps"] = c["steps"]
    n = c["queries"] or None
    n_total = len(splits.query)
    values = resolve_for(ctx.spec.protocol, splits, topk=None if ctx.spec.topk == "default" else ctx.spec.topk,
                         eps=ctx.spec.eps)
    values["queries"] = min(n or n_total, n_total)  # a convergence run attacks its own first queries
    protocol = protocol_path(ctx.out / "protocols", data_label(c), ctx.spec.seed, min(n or n_total, n_total),
                             ctx.spec.protocol)
    out = run_attack(
        victim, splits, c["method"], targeted=c["targeted"], n_queries=n, seed=ctx.spec.seed, topk=ctx.topk(splits),
        surrogate=surrogate, params=params, protocol_file=protocol, batch_size=c["batch_size"], progress=ctx.progress,
        cache=ctx.attack_cache(c["model"], c["surrogate"]), return_details=example,
        victim_data=run.model, surrogate_data=run.surrogate, protocol=values,
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


def data_label(config: Dict[str, Any]) -> str:
    """The dataset's name in protocol file names; a model with its own data folder or image size
    gets a suffix, so models on other data never share queries and targets."""
    own = [config.get(k) for k in ("data_dir", "image_size", "resize")]
    if not any(v is not None for v in own):
        return config["dataset"]
    import hashlib

    return f"{config['dataset']}-{hashlib.sha256(json.dumps(own).encode()).hexdigest()[:8]}"


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
    objects: Optional[Dict[str, Any]] = None,
    wait: bool = False,
    select: Optional[Callable[[Run], bool]] = None,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    threads_per_run: Optional[int] = None,
) -> Dict[str, Any]:
    """Run every missing run of ``spec`` into ``out`` and (with ``report``) write the report.

    ``select``: run only the planned attack runs for which ``select(run)`` is true (train, surrogate
    and defense runs are always kept, the attacks depend on them); e.g. to split a grid over machines.

    ``objects``: ``{name: (model, splits)}`` for the ``[[models]]`` entries given in memory
    (``in_memory = true``; :func:`hashguard.evaluate_robustness` builds those).

    ``wait``: when another process is running a grid into ``out``, wait for it to finish instead
    of raising :class:`~hashguard.errors.BusyError` (the folder is locked for the whole run).

    ``workers``: run the grid on a local Dask cluster of that many worker processes (one thread
    each; with ``device="cuda"``, worker ``i`` sees only GPU ``i`` modulo the GPU count).
    ``scheduler``: run it on an existing Dask cluster (``"tcp://host:8786"``; a Slurm cluster of
    dask-jobqueue, say). Both need ``pip install 'hashguard[distributed]'``; each run is one task
    after the runs it needs, its record is written by the worker (``bench.distributed``).

    ``threads_per_run``: the CPU threads each run computes with (torch and the retrieval kernels),
    recorded as ``timings.threads``; runs at the same count give the same metrics wherever they
    run. Default: 1 with ``workers`` / ``scheduler``, else the process's setting.

    Returns ``{"records": [...], "seconds": ..., "report": {"md": path, "html": path} or None,
    "ran": [keys]}`` (``ran``: the runs this call executed, the others were already recorded).
    Raises ``ValueError`` before any work for a bad grid, a missing ``data_dir`` or a results
    directory made with another hashguard version or protocol; ``OutputPathError`` /
    ``DiskFullError`` for a results directory that cannot be written; ``BusyError`` for one in use.
    """
    threads = check_threads(threads_per_run, "threads_per_run")
    distributed = workers is not None or scheduler is not None
    if distributed:
        from .distributed import check_cluster_options

        check_cluster_options(workers, scheduler, objects=objects)  # dask installed, one of the two
        threads = 1 if threads is None else threads
    spec.validate()
    spec.check_data(data_dir)
    _check_protocol_data(spec, data_dir)
    missing = [m["name"] for m in spec.models if m.get("in_memory") and m["name"] not in (objects or {})]
    if missing:
        raise ValueError(f"models {missing} are given in memory: pass objects={{name: (model, splits)}}")
    spec.resolve_models()
    out = Path(out)
    check_output_dir(out, files=(SPEC_FILE, "store.json", "report.md", "report.html"),
                     subdirs=("records", "models", "protocols", "figures", "report_files"))
    hint = "wait for it (--wait) or use another --out" if objects is None else "wait for it or use another out="
    with folder_lock(out, wait=wait, log=log, hint=hint):  # held here, never by the Dask workers
        if not distributed:
            return _run_locked(spec, out, data_dir, device, progress, log, report, objects, select, threads)
        from .distributed import dask_cluster

        with dask_cluster(workers=workers, scheduler=scheduler, device=device, log=log, quiet=not progress) as cluster:
            return _run_locked(spec, out, data_dir, device, progress, log, report, objects, select, threads, cluster)


def _check_protocol_data(spec: BenchSpec, data_dir: Optional[str]) -> None:
    """Refuse, before any work, a named protocol whose top-k a grid dataset's database cannot give."""
    if spec.protocol == "default" or not spec.topk:
        return
    from ..data import load_splits
    from .protocols import resolve_for

    for dataset in spec.datasets:
        resolve_for(spec.protocol, load_splits(dataset, spec.seed, data_dir), topk=spec.topk, eps=spec.eps)


def bench_context(spec: BenchSpec, out: Path, runs, data_dir: Optional[str], device: str, progress: bool, log,
                  objects: Optional[Dict[str, Any]] = None) -> _Context:
    """The loaded-data context the runs of ``runs`` execute in (one per process: the grid's own,
    or each Dask worker's), told where the weights of models the grid does not train come from."""
    ctx = _Context(spec, out, data_dir, device, progress, log, objects=objects)
    for r in runs:
        if r.role == TRAIN and is_external(r.model):
            in_memory = r.model["name"] in ctx.objects
            ctx.sources[r.key] = ("object", r.model["name"]) if in_memory else ("external", r.model)
        elif r.role == DEFENSE and is_external(r.model):
            ctx.sources[r.key] = ("defended", r.config["model"])
    return ctx


def execute_run(ctx: _Context, run: Run, *, example: bool, machine: str, threads: Optional[int]):
    """``(metrics, timings)`` of one run, computed with ``threads`` CPU threads (None: the process's
    setting); the timings say the machine, device and thread count it ran with."""
    with run_threads(threads) as used:
        if run.role in (TRAIN, SURROGATE):
            metrics, timings = _train(ctx, run)
        elif run.role == DEFENSE:
            metrics, timings = _defend(ctx, run)
        elif run.role == INJECTION:
            from .injection import run_injection

            metrics, timings = run_injection(ctx, run)
        else:
            assert run.role in (ATTACK, CONVERGENCE, REATTACK, TRANSFER, PERTURBATION)
            metrics, timings = _attack(ctx, run, example=example)
    return metrics, {**timings, "machine": machine, "device": ctx.device, "threads": used}


def _run_locked(spec: BenchSpec, out: Path, data_dir, device, progress, log, report, objects, select,
                threads: Optional[int], cluster=None) -> Dict[str, Any]:
    store = open_store(spec, out)
    atomic_write_json(out / SPEC_FILE, spec.to_dict())
    runs = [r for r in plan(spec) if select is None or r.role in (TRAIN, SURROGATE, DEFENSE) or select(r)]
    examples = example_keys(spec, runs)
    pending = list(dict.fromkeys(r.key for r in runs if not store.has(r.config)))
    start = time.perf_counter()
    if cluster is not None:
        from .distributed import run_on_cluster

        assert threads is not None  # run_bench gives workers one thread per run unless told otherwise
        records = run_on_cluster(cluster, store, spec, runs, examples, data_dir=data_dir, device=device,
                                 threads=threads, progress=progress, log=log)
    else:
        by_key = {r.key: r for r in runs}
        ctx = bench_context(spec, out, runs, data_dir, device, progress, log, objects=objects)
        machine = machine_description(device)

        def run_one(config: Dict[str, Any]):
            run = by_key[RecordStore.key_of(config)]
            return execute_run(ctx, run, example=run.key in examples, machine=machine, threads=threads)

        records = run_grid(store, [r.config for r in runs], run_one, progress=progress)
    seconds = time.perf_counter() - start
    written = None
    if report:
        from .report import write_report

        written = write_report(out, run_seconds=seconds)
    return {"records": records, "seconds": seconds, "report": written, "ran": pending}


__all__ = ["SPEC_FILE", "example_keys", "load_spec_of", "open_store", "protocol_of", "run_bench"]
