"""PgA (Eq. 13) against PgA-dagger (Eq. 10), with and without the tanh-scale schedule, and PgA's
margin sweep (PgA Tables 1-2 and Fig. 5c; issue 14 item 5), under PgA's protocol (MAP@5000).

hashguard used to run PgA with SAAT's relative alpha schedule; the paper has none, and under it
alpha = 0.1 for the first half of the run, where almost no bit passes the margin t = -0.8, so PgA
acts like PgA-dagger for half its iterations. PgA now defaults to ``alpha="none"``. This script
measures both attacks under both schedules on an undefended model (Table 1) and, with
``--defended``, on an ATRDH-trained one (Table 2), plus PgA at several margins t (Fig. 5c).
Every run attacks the same queries (``--queries``, drawn from the seed, PgA protocol's file),
PGD with step 1/255, eps 8/255, T = ``--steps`` (PgA Table 5 uses T = 20; the paper's default 100).

Reproduce (the models of the quick preset: ``hashguard bench --preset quick --out runs/quick``)::

    python benchmarks/pga_vs_dagger.py --model runs/quick/models/mnist-mosaic_cnn_dpsh_32bits-73b9f6711e02.pt \\
        --defended runs/quick/models/mnist-mosaic_cnn_dpsh_32bits_atrdh-9bbe2fcaae03.pt \\
        --queries 200 --steps 20 --out runs/pga-vs-dagger

Writes ``results.json`` (every record) and prints a markdown table: mAP (%) with a 95 % paired
bootstrap interval of the difference PgA - PgA-dagger under the same schedule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hashguard._atomic import atomic_write_json
from hashguard.bench.protocol import protocol_path, run_attack
from hashguard.bench.protocols import resolve_for
from hashguard.bench.stats import bootstrap_ci
from hashguard.data import load_splits
from hashguard.models.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the undefended hashguard checkpoint")
    parser.add_argument("--defended", default=None, help="an adversarially trained checkpoint (PgA Table 2: ATRDH)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--margins", type=float, nargs="*", default=[-0.2, -0.5, -0.8, -0.95])
    parser.add_argument("--schedules", nargs="*", default=["none", "relative"], choices=["none", "relative"],
                        help="alpha schedules of the PgA / PgA-dagger table (none: only the margin sweep)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model, config = load_checkpoint(args.model, map_location="cpu")
    splits = load_splits(config["dataset"], int(config.get("seed", 0)))
    values = resolve_for("pga", splits, queries=args.queries)
    topk = values["topk"]
    protocol_file = protocol_path(out / "protocols", config["dataset"], args.seed, args.queries, "pga")
    models = {"undefended": model}
    if args.defended:
        models["ATRDH"] = load_checkpoint(args.defended, map_location="cpu")[0]

    records = []

    def run(victim_name, method, alpha, margin=None):
        params = {"alpha": alpha, "steps": args.steps, "step": 1 / 255, "eps": 8 / 255}
        if margin is not None:
            params["margin"] = margin
        rec = run_attack(models[victim_name], splits, method, n_queries=args.queries, seed=args.seed, topk=topk,
                         params=params, protocol_file=protocol_file, protocol=values, cache=caches[victim_name])
        rec["victim"] = victim_name
        rec.pop("curves", None)
        records.append(rec)
        atomic_write_json(out / "results.json", {"args": vars(args), "topk": topk, "records": records})
        print(f"{victim_name:10s} {method:10s} alpha={alpha:8s} t={margin} mAP={100 * rec['map']:.2f}", flush=True)
        return rec

    caches = {name: {} for name in models}
    table = {}
    for victim_name in models:
        for alpha in args.schedules:
            a = run(victim_name, "pga", alpha)
            b = run(victim_name, "pga-dagger", alpha)
            diff = np.asarray(a["per_query"]["ap"]) - np.asarray(b["per_query"]["ap"])
            table[(victim_name, alpha)] = (a["map"], b["map"], bootstrap_ci(diff))
    margins = {}
    for t in args.margins:
        known = table.get(("undefended", "none"))
        margins[t] = known[0] if t == -0.8 and known else run("undefended", "pga", "none", margin=t)["map"]

    print(f"\nmAP@{topk} (%), {args.queries} queries, T = {args.steps}, step 1/255, eps 8/255 (PgA protocol)\n")
    print("| model | schedule | PgA | PgA† | PgA - PgA† [95 % CI] |")
    print("|---|---|---|---|---|")
    for (victim_name, alpha), (a, b, ci) in table.items():
        print(f"| {victim_name} | {alpha} | {100 * a:.2f} | {100 * b:.2f} | {100 * (a - b):+.2f} "
              f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] |")
    print("\n| margin t | " + " | ".join(f"{t:g}" for t in margins) + " |")
    print("|---|" + "---|" * len(margins))
    print("| PgA mAP (%), undefended | " + " | ".join(f"{100 * v:.2f}" for v in margins.values()) + " |")
    atomic_write_json(out / "summary.json", {"table": {f"{k[0]}/{k[1]}": v for k, v in table.items()},
                                             "margins": {str(t): v for t, v in margins.items()}})


if __name__ == "__main__":
    main()
