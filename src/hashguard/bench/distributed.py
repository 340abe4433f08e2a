"""A benchmark grid on a Dask cluster: each run one task, after the runs it needs.

``run_bench(..., workers=N)`` (``hashguard bench --workers N``) starts a local cluster of ``N``
worker processes, one thread each; with ``device="cuda"`` worker ``i`` sees only GPU ``i`` (modulo
the GPU count) through ``CUDA_VISIBLE_DEVICES``, or dask-cuda's ``LocalCUDACluster`` does that when
it is installed. ``run_bench(..., scheduler=ADDRESS)`` (``--scheduler``) joins an existing
cluster instead: ``dask scheduler`` + ``dask worker`` by hand, or dask-jobqueue's ``SLURMCluster``
(``cluster.scheduler_address``). Dask is an optional extra: ``pip install 'hashguard[distributed]'``;
nothing here is imported unless one of the two options is given.

How the grid maps onto Dask:

* The runs of :func:`~hashguard.bench.plan.plan` that have no record yet become one task each
  (a config shared by several runs, once), depending on the runs they need: a model's attacks and
  defenses on its training, a defended model's re-attacks on its defense, a transfer attack on
  its surrogate too. Runs already recorded are not submitted.
* When the grid has at least as many models as there are workers, the runs on one model prefer
  one worker (``workers=[...], allow_other_workers=True``), so its loaded data, weights and
  database codes stay warm; with fewer models the scheduler spreads them freely.
* The worker writes the run's record itself, atomically, through the same
  :class:`~hashguard.bench.store.RecordStore` (which checks ``store.json``'s version and
  protocol), with the same ``wall_seconds`` a sequential run gets; the run computes with
  ``threads`` torch and numba threads (:mod:`hashguard.bench.threads`) and records the count, so
  its metrics equal a sequential run's at the same count.
* The folder lock (:mod:`hashguard._lock`) is held by the calling process for the whole grid;
  workers never take it. Before any run, every worker must read a token file the caller wrote in
  the results folder and write one back that the caller reads (the folder must be on a file
  system every worker shares, at the same path); each task checks the token again, so a worker
  that joins later and cannot see the folder fails with the same clear error.
* A worker that dies has its run re-run on another worker (Dask's ``allowed-failures``, 3 by
  default; the nanny of a local cluster restarts the process); a run that raises is tried once
  more (``retries=1``). Every finished record is on disk already, so nothing finished is lost;
  a training or defense resumes from its checkpoint or ``.resume.pt``.
* Progress: one tqdm bar over the grid, its postfix what each worker runs now (workers tell
  the caller through Dask's event topics).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .._atomic import atomic_write_json
from ..errors import InputError, OutputPathError
from ..precision import current_precision, mixed_precision
from .plan import DEFENSE, SURROGATE, TRAIN, Run, model_id
from .spec import BenchSpec
from .store import RecordStore

EXTRA = "pip install 'hashguard[distributed]'"
RUN_FILE = ".hashguard-workers.json"  # the caller's token; every task checks it
PROBE_DIR = ".hashguard-probe"  # each worker's answer to the token, removed after the check
EVENT_TOPIC = "hashguard-bench"
CONNECT_TIMEOUT_S = 5.0  # to reach a --scheduler address
WORKER_WAIT_S = 120.0  # for a first worker to join a --scheduler with none yet
RETRIES = 1  # a run that raises is tried once more; a dead worker's run is re-run by Dask itself
_PRIORITY = {TRAIN: 2, SURROGATE: 2, DEFENSE: 1}  # models first, so their attacks can start sooner


def check_cluster_options(workers: Optional[int], scheduler: Optional[str], *, objects=None) -> None:
    """Refuse, before any work, cluster options that cannot work: both given, a bad count, models
    given in memory, or Dask not installed (the error names the extra to install)."""
    if workers is not None and scheduler is not None:
        raise InputError("give workers (a local Dask cluster, --workers N) or scheduler (an existing one, "
                         "--scheduler ADDRESS), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a whole number >= 1 (the local Dask worker processes), got {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"scheduler must be a Dask scheduler address such as tcp://host:8786, got {scheduler!r}")
    if objects:
        raise InputError(f"models given in memory ({', '.join(sorted(objects))}) cannot be sent to Dask workers; "
                         "save them as checkpoints and list them in [[models]], or run without workers/scheduler")
    try:
        import distributed  # noqa: F401
    except ImportError:
        option = "--workers" if workers is not None else "--scheduler"
        raise InputError(f"{option} runs the grid on Dask, which is not installed here: {EXTRA}") from None


@dataclass
class Cluster:
    """A connected Dask client, the device its workers compute on, and how to name it to the user."""

    client: Any
    device: str
    description: str


@contextlib.contextmanager
def dask_cluster(*, workers: Optional[int], scheduler: Optional[str], device: str = "cpu", log=None,
                 quiet: bool = False) -> Iterator[Cluster]:
    """A client on a new local cluster of ``workers`` processes, or on the cluster at ``scheduler``;
    closed (and a local cluster shut down) at the end of the block.

    Raises :class:`~hashguard.errors.InputError` when ``scheduler`` cannot be reached within
    :data:`CONNECT_TIMEOUT_S` seconds, or no worker joins it within :data:`WORKER_WAIT_S`."""
    from distributed import Client

    level = logging.ERROR if quiet else logging.WARNING
    with _quiet_logs(level):
        if scheduler is not None:
            client = _connect(scheduler, log)
            try:
                n = len(client.scheduler_info(n_workers=-1)["workers"])
                yield Cluster(client, device, f"the Dask cluster at {scheduler} ({n} workers)")
            finally:
                client.close()
            return
        assert workers is not None
        cluster, worker_device, description = _local_cluster(workers, device, level)
        try:
            client = Client(cluster, set_as_default=False)
            try:
                if log is not None:
                    log(f"started {description}")
                yield Cluster(client, worker_device, description)
            finally:
                client.close()
        finally:
            with _quiet_logs(logging.ERROR):  # "worker process still alive after 4 s, killing": expected here
                cluster.close()


@contextlib.contextmanager
def _quiet_logs(level: int) -> Iterator[None]:
    logger = logging.getLogger("distributed")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _connect(scheduler: str, log):
    from distributed import Client

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S:.0f} s ({_first_line(err)}); "
            f"check the address, or start one (`dask scheduler`, then `dask worker {scheduler}` on each machine), "
            "or use --workers N for a local cluster"
        ) from None
    if not client.scheduler_info(n_workers=-1)["workers"]:
        if log is not None:
            log(f"waiting for a Dask worker to join {scheduler} (up to {WORKER_WAIT_S:.0f} s)")
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError):
            client.close()
            raise InputError(f"no Dask worker joined the scheduler at {scheduler} within {WORKER_WAIT_S:.0f} s; "
                             f"start workers (`dask worker {scheduler}`, or cluster.scale(...) with dask-jobqueue) "
                             "and run again") from None
    return client


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _local_cluster(workers: int, device: str, level: int):
    """``(cluster, device of the workers, description)``: ``workers`` single-thread processes; on
    CUDA one GPU each (``CUDA_VISIBLE_DEVICES``), through dask-cuda when it is installed and there
    are GPUs enough, else through a nanny environment per worker."""
    from distributed import Nanny, Scheduler, SpecCluster

    with _torch_speed_allocator():
        return _start_local_cluster(workers, device, level, Nanny, Scheduler, SpecCluster)


@contextlib.contextmanager
def _torch_speed_allocator() -> Iterator[None]:
    """Start nannies without Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (its default pre-spawn
    environment): glibc then hands freed memory back to the kernel at every step, and torch's
    per-step tensors are mapped afresh. Measured on 2 CPU cores: a single-thread conv training loop
    ran 8.3 s in a default Dask worker, 4.4 s without the variable and 5.2 s in a plain process."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        yield


def _start_local_cluster(workers: int, device: str, level: int, Nanny, Scheduler, SpecCluster):  # noqa: N803
    gpus = 0
    if str(device).startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count()
    if gpus and workers <= gpus:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:
            cluster = LocalCUDACluster(n_workers=workers, threads_per_worker=1, CUDA_VISIBLE_DEVICES=list(range(workers)),
                                       dashboard_address=None, silence_logs=level)
            return cluster, "cuda", f"a local dask-cuda cluster of {workers} workers, one GPU each"
    specs = {}
    for i in range(workers):
        env = {"CUDA_VISIBLE_DEVICES": str(i % gpus)} if gpus else {}
        specs[i] = {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1", "memory_limit": 0, "dashboard": False,
                                              "silence_logs": level, "env": env}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0, "dashboard": False,
                                               "dashboard_address": ":0"}}  # its HTTP routes on a free port
    cluster = SpecCluster(workers=specs, scheduler=scheduler, silence_logs=level, name="hashguard")
    where = f"GPU i % {gpus} for worker i" if gpus else "1 thread each"
    return cluster, ("cuda" if gpus else device), f"a local Dask cluster of {workers} worker processes ({where})"


# -- the caller's side --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one run of the grid and write its record."""

    spec: BenchSpec
    out: str  # absolute: the workers see the folder at the caller's path
    data_dir: Optional[str]
    device: str
    threads: int
    token: str
    protocol: Dict[str, Any]
    key: str
    example: bool
    precision: str = "fp32"  # the caller's mixed_precision block, re-entered on the worker


def run_on_cluster(cluster: Cluster, store: RecordStore, spec: BenchSpec, runs: List[Run], examples, *,
                   data_dir: Optional[str], device: str, threads: int, progress: bool, log) -> List[Dict[str, Any]]:
    """Run every run of ``runs`` that ``store`` has no record of on ``cluster``; return every run's
    record in ``runs`` order (like :func:`~hashguard.bench.grid.run_grid`)."""
    from distributed import wait
    from distributed.client import TimeoutError as DaskTimeout
    from tqdm.auto import tqdm

    client = cluster.client
    out = Path(os.path.abspath(store.directory))
    token = uuid.uuid4().hex
    pending: Dict[str, Run] = {}
    for r in runs:
        if r.key not in pending and not store.has(r.config):
            pending[r.key] = r
    done_before = len({r.key for r in runs}) - len(pending)
    atomic_write_json(out / RUN_FILE, {"token": token, "pid": os.getpid(), "host": socket.gethostname()})
    try:
        if pending:
            check_workers_see(client, out, token, log=log)
        if log is not None and pending:
            log(f"{len(pending)} runs on {cluster.description}, {threads} thread{'s' if threads != 1 else ''} per run")
        states: Dict[str, str] = {}
        lock = threading.Lock()

        def on_event(event) -> None:
            msg = event[1]
            if isinstance(msg, dict) and msg.get("token") == token:
                with lock:
                    states[str(msg["name"])] = msg["what"] if msg["state"] == "start" else "idle"

        client.subscribe_topic(EVENT_TOPIC, on_event)
        futures = _submit(client, pending, examples, Job(
            spec=spec, out=str(out), data_dir=data_dir, device=cluster.device, threads=threads, token=token,
            protocol=store.protocol, key="", example=False, precision=current_precision()))
        with client.as_current(), tqdm(total=done_before + len(pending), initial=done_before, desc="grid",
                                        unit="run", disable=not progress) as bar:
            remaining = set(futures)
            while remaining:
                try:
                    finished, remaining = wait(remaining, timeout=1.0, return_when="FIRST_COMPLETED")
                except (DaskTimeout, TimeoutError):
                    finished = set()
                for future in finished:
                    if future.status != "finished":
                        client.cancel(list(remaining))
                        future.result()  # raises the run's error (the records finished so far are kept)
                    bar.update(1)
                if progress:
                    # never call the client while holding the lock: the event handler takes it on the
                    # client's event loop, which that call waits for (a deadlock)
                    with lock:
                        now = dict(states)
                    bar.set_postfix_str(_worker_states(client, now), refresh=True)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(EVENT_TOPIC)
    finally:
        (out / RUN_FILE).unlink(missing_ok=True)
    records = {}
    for r in runs:
        if r.key not in records:
            record = store.get(r.config)
            if record is None:  # pragma: no cover - every task wrote its record or raised
                raise RuntimeError(f"the Dask task of {r.key} finished without writing records/{r.key}.json")
            records[r.key] = record
    return [records[r.key] for r in runs]


def _submit(client, pending: Dict[str, Run], examples, template: Job) -> list:
    """One task per pending run, in plan order (dependencies first), after the runs it needs."""
    from dataclasses import replace

    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    groups = list(dict.fromkeys(model_id(r.model) for r in pending.values()))
    home = {}
    if len(workers) > 1 and len(groups) >= len(workers):  # a model's runs prefer one worker (warm caches)
        home = {g: workers[i % len(workers)] for i, g in enumerate(groups)}
    futures: Dict[str, Any] = {}
    for key, run in pending.items():
        needs = [] if run.role in (TRAIN, SURROGATE) else [run.config.get("model"), run.config.get("surrogate")]
        deps = [futures[k] for k in needs if k in futures]
        placement: Dict[str, Any] = {}
        if home:
            placement = {"workers": [home[model_id(run.model)]], "allow_other_workers": True}
        job = replace(template, key=key, example=key in examples)
        futures[key] = client.submit(run_job, job, *deps, key=f"hashguard-{key}-{template.token[:8]}", pure=False,
                                     retries=RETRIES, priority=_PRIORITY.get(run.role, 0), **placement)
    return list(futures.values())


def _worker_states(client, states: Dict[str, str]) -> str:
    """``w0: attack pga | w1: idle``; a count per state past four workers."""
    try:
        names = sorted((str(w.get("name")) for w in client.scheduler_info(n_workers=-1)["workers"].values()),
                       key=lambda n: (len(n), n))
    except Exception:  # the scheduler is busy or gone: keep the last states
        names = sorted(states)
    if len(names) <= 4:
        return " | ".join(f"w{n}: {states.get(n, 'idle')}" for n in names)
    running = sum(states.get(n, "idle") != "idle" for n in names)
    return f"{len(names)} workers: {running} running, {len(names) - running} idle"


def check_workers_see(client, out: Path, token: str, *, log=None) -> None:
    """Every worker reads the caller's token in ``out`` and writes an answer the caller reads back;
    raise :class:`~hashguard.errors.OutputPathError` naming the workers that cannot, and
    :class:`~hashguard.errors.InputError` for workers running another hashguard version."""
    import hashguard

    answers = client.run(probe_folder, str(out), token)
    blind, versions, threaded = [], [], []
    for address, answer in sorted(answers.items()):
        who = f"{address} (host {answer.get('host')})"
        if answer.get("error"):
            blind.append(f"{who}: {answer['error']}")
        elif not (out / PROBE_DIR / answer["file"]).is_file():
            blind.append(f"{who}: its answer {out / PROBE_DIR / answer['file']} does not appear here")
        if answer.get("version") != hashguard.__version__:
            versions.append(f"{who} has {answer.get('version')}")
        if int(answer.get("nthreads") or 1) > 1:
            threaded.append(address)
    with contextlib.suppress(OSError):
        for path in (out / PROBE_DIR).glob(f"{token}-*"):
            path.unlink()
        (out / PROBE_DIR).rmdir()
    if blind:
        raise OutputPathError(
            f"the results folder {out} is not visible to every Dask worker: {'; '.join(blind)}. Every worker must "
            "read and write it at the same path: put it on a file system all workers share (a cluster's home or "
            "scratch) and give its absolute path"
        )
    if versions:
        raise InputError(f"Dask workers run another hashguard version than this process ({hashguard.__version__}): "
                         f"{'; '.join(versions)}; install the same version on every worker")
    if threaded and log is not None:
        log(f"Dask workers {', '.join(threaded)} have several threads: each runs one run at a time (a run sets the "
            "process's torch threads); start workers with --nthreads 1 to use them fully")


# -- the worker's side --------------------------------------------------------------------------

_RUN_LOCK = threading.Lock()  # one run per worker process: a run sets the process's thread counts
_CONTEXT: Dict[str, Any] = {}  # token -> (context, runs by key, machine): caches stay warm across runs


def probe_folder(out: str, token: str, dask_worker=None) -> Dict[str, Any]:
    """On a worker: read the caller's token in ``out`` and write an answer beside it (see
    :func:`check_workers_see`). Returns what it saw instead of raising, so one blind worker is named."""
    import hashguard

    name = str(getattr(dask_worker, "name", None) or os.getpid())
    answer: Dict[str, Any] = {"host": socket.gethostname(), "version": hashguard.__version__,
                              "nthreads": getattr(dask_worker, "nthreads", None),
                              "file": f"{token}-{re.sub(r'[^A-Za-z0-9.-]+', '-', name)}"}
    problem = _token_problem(Path(out), token)
    if problem:
        answer["error"] = problem
        return answer
    try:
        atomic_write_json(Path(out) / PROBE_DIR / answer["file"], {"host": answer["host"], "pid": os.getpid()})
    except OSError as err:
        answer["error"] = f"cannot write in it ({_first_line(err)})"
    return answer


def _token_problem(out: Path, token: str) -> Optional[str]:
    import json

    path = out / RUN_FILE
    try:
        found = json.loads(path.read_text()).get("token")
    except FileNotFoundError:
        return f"{path} does not exist there"
    except (OSError, ValueError) as err:
        return f"cannot read {path} ({_first_line(err)})"
    if found != token:
        return f"{path} holds another grid's token (another folder at the same path?)"
    return None


def run_job(job: Job, *needed: Any) -> Dict[str, Any]:
    """On a worker: run ``job.key`` (unless its record exists) and write its record atomically.
    ``needed``: the results of the runs it depends on (only waited for)."""
    from .plan import plan
    from .runner import bench_context, execute_run, machine_description

    worker = _current_worker()
    name = str(worker.name) if worker is not None else str(os.getpid())
    with _RUN_LOCK:
        out = Path(job.out)
        problem = _token_problem(out, job.token)
        if problem:
            raise OutputPathError(f"the results folder {out} is not visible to Dask worker {name} on host "
                                  f"{socket.gethostname()}: {problem}; every worker must see it at the same path")
        store = RecordStore(out, protocol=job.protocol)  # refuses a folder of another version or protocol
        cached = _CONTEXT.get(job.token)
        if cached is None:
            runs = plan(job.spec)
            ctx = bench_context(job.spec, out, runs, job.data_dir, job.device, False, None)
            cached = (ctx, {r.key: r for r in runs}, machine_description(job.device))
            _CONTEXT.clear()
            _CONTEXT[job.token] = cached
        ctx, by_key, machine = cached
        run = by_key[job.key]
        if store.has(run.config):  # written before this worker's predecessor died
            return {"key": job.key, "ran": False, "worker": name}
        _tell(worker, job, name, "start", _label(run))
        try:
            start = time.perf_counter()
            with mixed_precision(job.precision, job.device):
                metrics, timings = execute_run(ctx, run, example=job.example, machine=machine, threads=job.threads)
            timings.setdefault("wall_seconds", time.perf_counter() - start)
            store.put(run.config, metrics, timings)
        finally:
            _tell(worker, job, name, "end", "")
    return {"key": job.key, "ran": True, "worker": name}


def _current_worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _tell(worker, job: Job, name: str, state: str, what: str) -> None:
    if worker is not None:
        with contextlib.suppress(Exception):
            worker.log_event(EVENT_TOPIC, {"token": job.token, "name": name, "state": state, "what": what})


def _label(run: Run) -> str:
    """``attack pga`` / ``defense saat`` / ``train``: what a worker runs, in the progress postfix."""
    c = run.config
    what = c.get("method") or (c.get("defense") if run.role == DEFENSE else None)
    text = run.role if not what else f"{run.role} {what}"
    return text + (" (targeted)" if c.get("targeted") else "")


__all__ = ["EXTRA", "Cluster", "Job", "check_cluster_options", "check_workers_see", "dask_cluster", "probe_folder",
           "run_job", "run_on_cluster"]
