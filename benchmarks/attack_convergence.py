"""mAP against the number of PGD iterations T for PgA, mainstay and DHTA (one checkpoint), through ``run_bench``.

Each T is its own run (the relative alpha schedule stretches over T). Also runs PgA without the
schedule (alpha = 1) and at a doubled budget (eps 16/255), and splits the gap between PgA at
T = 100 and its theory row into the queries the attack leaves unbroken (adversarial AP >= 0.5)
and the rest. The script builds bench grids (a ``[convergence]`` section over the checkpoint, the
alpha = 1 variant as a second grid in the same results directory, the eps = 16/255 run in
``OUT/eps16``, since a results directory holds one eps) and hands them to
:func:`hashguard.bench.run_bench`, so every run is an atomic, resumable JSON record. Writes
``convergence.json`` and ``convergence.png`` to ``--out``.

Reproduce (the tiny setting checks the script in a few minutes on 2 CPU cores)::

    hashguard train --dataset synthetic --bits 16 --epochs 2 --out /tmp/t/dpsh-16.pt
    python benchmarks/attack_convergence.py --model /tmp/t/dpsh-16.pt --queries 8 --steps 2 4 --out /tmp/t/conv
    python benchmarks/attack_convergence.py --model runs/dpsh-32.pt --out benchmarks/results/convergence
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from hashguard._atomic import atomic_write_json
from hashguard.bench import BenchSpec, run_bench
from hashguard.bench.figures import map_vs_iterations
from hashguard.bench.spec import AttackSet, ConvergenceSet

CURVES = {  # label: (method, targeted, extra params)
    "PgA": ("pga", False, {}),
    "PgA, alpha = 1": ("pga", False, {"alpha": "none"}),
    "mainstay": ("mainstay", False, {}),
    "DHTA (targeted, t-MAP)": ("dhta", True, {}),
}
GAP_STEPS = 100  # PgA's paper iteration count, where the gap to the theory row is split


def _spec(args, *, eps, params, convergence: ConvergenceSet) -> BenchSpec:
    return BenchSpec(
        name="attack-convergence", datasets=[], seed=args.seed, queries=args.queries, eps=eps,
        models=[{"name": Path(args.model).stem, "checkpoint": str(args.model)}],
        attacks=AttackSet(untargeted=["pga"], steps={"pga": GAP_STEPS}, params=params),
        convergence=convergence, examples=[], example_rows=0,
    ).validate()


def _find(records, method, targeted, steps, params) -> dict:
    for r in records:
        c = r["config"]
        if (c["kind"] == "attack" and c["method"] == method and c["targeted"] == targeted and c["steps"] == steps
                and c["params"] == params):
            return r["metrics"]
    raise LookupError(f"no record of {method} (targeted={targeted}, T={steps}, params={params})")


def _gap(m) -> dict:
    ap_adv, ap_ideal = np.asarray(m["per_query"]["ap"]), np.asarray(m["per_query"]["theory_ap"])
    unbroken, n = ap_adv >= 0.5, len(ap_adv)
    return {
        "map": m["map"], "theory_map": m["theory_map"], "unbroken_fraction": float(unbroken.mean()),
        "gap_from_unbroken": float((ap_adv - ap_ideal)[unbroken].sum() / n),
        "gap_from_rest": float((ap_adv - ap_ideal)[~unbroken].sum() / n),
        "bits_from_ideal_mean": m["bits_from_ideal"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 200, 500, 1000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    run = dict(device=args.device, progress=False, report=False, log=lambda line: print(line, flush=True))
    records = []
    for params in ({}, {"alpha": "none"}):  # one grid per PgA parameter set, one results directory
        methods = ["pga", "mainstay"] if not params else ["pga"]
        conv = ConvergenceSet(methods=methods, targeted=["dhta"] if not params else [], steps=args.steps,
                              queries=args.queries)
        spec = _spec(args, eps="8/255", params={"pga": params} if params else {}, convergence=conv)
        records += run_bench(spec, out, **run)["records"]
    spec16 = _spec(args, eps="16/255", params={}, convergence=ConvergenceSet())
    records16 = run_bench(spec16, out / "eps16", **run)["records"]

    first = _find(records, "pga", False, GAP_STEPS, {})
    record = {"model": str(args.model), "topk": first["topk"], "n_queries": first["n_queries"], "steps": args.steps,
              "clean_map": first["clean_map"], "curves": {}, "theory": {}}
    for label, (method, targeted, params) in CURVES.items():
        runs = [_find(records, method, targeted, t, params) for t in args.steps]
        record["curves"][label] = [m["t_map" if targeted else "map"] for m in runs]
        record["theory"][label] = runs[-1]["theory_t_map" if targeted else "theory_map"]
        if targeted:
            record["clean_t_map"] = runs[-1]["clean_t_map"]
        for t, value in zip(args.steps, record["curves"][label], strict=True):
            print(f"{label:24s} T={t:5d}  {value:.4f}", flush=True)
    # where the PgA gap at T = 100 comes from, and what a doubled budget does
    for eps, source in ((8, records), (16, records16)):
        key = f"pga_T{GAP_STEPS}_eps{eps}"
        record[key] = _gap(_find(source, "pga", False, GAP_STEPS, {}))
        print(key, record[key], flush=True)
    atomic_write_json(out / "convergence.json", record)

    fig = map_vs_iterations(
        {label: (args.steps, values) for label, values in record["curves"].items()},
        record["theory"],
        f"{Path(args.model).stem}: attack strength vs iterations (dotted: theory)",
        ylabel=f"mAP@{record['topk'] or 'all'} (%)  (DHTA: t-MAP)",
    )
    fig.savefig(out / "convergence.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
