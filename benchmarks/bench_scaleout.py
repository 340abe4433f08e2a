"""Scale-out throughput, measured side by side in one run (issue 15, item 4). One section per part:

(a) ``grid``: the synthetic benchmark grid (``--models`` models on the built-in ``synthetic``
    dataset, two attacks, one defense and its re-attack) run three ways into fresh folders:
    ``--workers 2`` at one thread per run, ``--workers 1`` at two threads per run, and the plain
    sequential runner at two threads. On 2 CPU cores both Dask rows use both cores; the question is
    whether two runs at a time on one thread each beat one run at a time on two threads. Printed:
    the grid's wall time (``run_bench``'s ``seconds``, the cluster already up), the time including
    the cluster's start and stop, and runs per minute; the records of the two Dask rows are checked
    to hold equal metrics where their thread counts match (they do not here: 1 vs 2 threads).

(b) one DDP training epoch, 2 gloo ranks vs 1 process; (c) on a CUDA device, PgA seconds per query
    and SAAT images per second at fp32 and bf16 (parts (c) and (d) of the issue); both come from
    ``benchmarks/bench_scaleout_ddp.py``, which also runs alone.

    python benchmarks/bench_scaleout.py                  # every part this machine can run
    python benchmarks/bench_scaleout.py --parts a --models 4 --repeats 1

Needs ``pip install 'hashguard[distributed]'``. The machine's load average is printed with the
figures: on a shared machine the rows are only comparable within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

OBJECTIVES = ["dpsh", "dph", "hashnet", "csq", "dch"]


def synthetic_grid(models: int) -> Dict[str, Any]:
    """``models`` models on ``synthetic`` (objectives x 16/32 bits), PgA + targeted mainstay,
    SAAT for one epoch and its PgA re-attack: the grid of part (a)."""
    objectives = OBJECTIVES[: max(1, (models + 1) // 2)]
    bits = [16] if models == 1 else [16, 32]
    return {
        "name": f"scaleout-{models}", "datasets": ["synthetic"], "objectives": objectives, "bits": bits,
        "queries": 40, "eps": 0.1,
        "train": {"epochs": 4},
        "attacks": {"untargeted": ["pga"], "targeted": ["mainstay"], "steps": {"pga": 20, "mainstay": 20}},
        "defenses": {"methods": ["saat"], "epochs": 1, "untargeted": ["pga"], "targeted": [], "steps": {"pga": 20},
                     "eval_queries": 20, "eval_steps": 3},
    }


def part_a_grid(args) -> List[str]:
    """(a) the synthetic grid with ``--workers 2`` (1 thread per run) vs ``--workers 1`` (2 threads)
    and the sequential runner (2 threads)."""
    from hashguard.bench import BenchSpec, run_bench
    from hashguard.bench.plan import plan

    grid = synthetic_grid(args.models)
    spec = BenchSpec.from_dict(grid)
    n_runs = len({r.key for r in plan(spec)})
    ways: Dict[str, Callable[[Path], Dict[str, Any]]] = {
        "--workers 2, 1 thread per run": lambda out: run_bench(spec, out, progress=False, report=False, workers=2,
                                                               threads_per_run=1),
        "--workers 1, 2 threads per run": lambda out: run_bench(spec, out, progress=False, report=False, workers=1,
                                                                threads_per_run=2),
        "sequential, 2 threads per run": lambda out: run_bench(spec, out, progress=False, report=False,
                                                               threads_per_run=2),
    }
    grid_s: Dict[str, List[float]] = {k: [] for k in ways}
    total_s: Dict[str, List[float]] = {k: [] for k in ways}
    with tempfile.TemporaryDirectory(prefix="hashguard-scaleout-") as root:
        for repeat in range(args.repeats):
            for i, (name, way) in enumerate(ways.items()):
                start = time.perf_counter()
                result = way(Path(root) / f"{repeat}-{i}")
                total_s[name].append(time.perf_counter() - start)
                grid_s[name].append(result["seconds"])
                assert len(set(result["ran"])) == n_runs, (name, len(result["ran"]))
                print(f"  [{repeat + 1}/{args.repeats}] {name}: grid {result['seconds']:.1f} s", file=sys.stderr)
    lines = [f"(a) synthetic grid: {spec.n_models} models, {n_runs} runs (train, PgA, targeted mainstay, SAAT 1 epoch, "
             f"PgA re-attack; {grid['queries']} queries, T = 20), median of {args.repeats}",
             f"{'way':34s} {'grid s':>8s} {'with cluster s':>15s} {'runs/min':>9s} {'speed-up':>9s}"]
    base = statistics.median(grid_s["sequential, 2 threads per run"])
    for name in ways:
        g, t = statistics.median(grid_s[name]), statistics.median(total_s[name])
        lines.append(f"{name:34s} {g:8.1f} {t:15.1f} {60 * n_runs / g:9.1f} {base / g:8.2f}x")
    return lines


def _ddp_module():
    """benchmarks/bench_scaleout_ddp.py (parts b-d live there; it runs on its own as well)."""
    import importlib.util

    path = Path(__file__).with_name("bench_scaleout_ddp.py")
    spec = importlib.util.spec_from_file_location("bench_scaleout_ddp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def part_b_ddp(args) -> List[str]:
    """(b) one training epoch: 2 torchrun gloo ranks vs 1 process (its table is printed as it runs)."""
    _ddp_module().ddp_epoch_figures()
    return []


def part_c_gpu(args) -> List[str]:
    """(c) PgA seconds per query and (d) SAAT images per second, fp32 vs bf16, on a CUDA device."""
    _ddp_module().gpu_figures()
    return []


PARTS: Dict[str, Callable[[Any], List[str]]] = {"a": part_a_grid, "b": part_b_ddp, "c": part_c_gpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="".join(PARTS), help=f"which parts to run, e.g. 'a' (of: {''.join(PARTS)})")
    ap.add_argument("--models", type=int, default=4, help="(a) models in the synthetic grid")
    ap.add_argument("--repeats", type=int, default=1, help="(a) rounds of the three ways, alternated; medians shown")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")

    import platform

    import torch

    print(f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
          f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for part in args.parts:
        for line in PARTS[part](args):
            print(line)
        print()
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
