"""NAG's claim measured: black-box database-injection success of NAG vs PGD (issue 13).

NAG (Xiao & Wang, CVPR 2021, abstract and Sec. 1) reports "about 1.2-3x improvements of black-box
transferability" over PGD. Here both craft poisoned images on a surrogate and inject them into
the victim's database (``hashguard.evaluate_injection``); the victim is a black box when the
surrogate is another model. Rows, all with the same eps, step and iteration count:

- ``nag``: NAG at its defaults (l1 loss to one reference code of the target category + the same
  under uniform noise of 32/255, lambda = 1);
- ``pgd (l1)``: the same attack with ``noise_weight = 0``, i.e. PGD on NAG's loss and target code
  (the paper's PGD baseline: no noise term);
- ``ifgsm``: hashguard's targeted I-FGSM (DHTA anchor of 9 codes, linear code loss);
- with ``--options``: NAG with vulnerable-pair mining (``mine=4``) and with the Gaussian-noise
  proxy (``noise_proxy=0.1``), on the first seed only.

Every seed of ``--seeds`` draws other attacker images, other reference codes and other noise (the
queries are all of them, the targets every category); the summary gives the mean and the sample
standard deviation over the seeds of each figure and of the ratios NAG / PGD (radius success, top-k
success, and the gain over the unperturbed images), so the ratio's noise is known.

Reproduce on the built-in data (victim: the quick preset's model, cnn width 32, seed 0; surrogate:
resnet18 seed 1, another seed *and* backbone, same recipe, from scratch; one thread each)::

    export OMP_NUM_THREADS=1
    hashguard train --dataset mnist-mosaic --backbone cnn --hash dpsh --bits 32 --seed 0 \
        --epochs 4 --warmup-epochs 2 --lr-step 3 --batch-size 32 --lr 0.01 --out /tmp/nagbb/cnn-s0.pt
    hashguard train --dataset mnist-mosaic --backbone resnet18 --hash dpsh --bits 32 --seed 1 \
        --epochs 4 --warmup-epochs 2 --lr-step 3 --batch-size 32 --lr 0.01 --out /tmp/nagbb/resnet18-s1.pt
    python benchmarks/injection_transfer.py --victim /tmp/nagbb/cnn-s0.pt \
        --surrogate /tmp/nagbb/resnet18-s1.pt --seeds 0 1 2 --white-box --options

The reverse direction (victim resnet18, surrogate cnn) swaps ``--victim`` and ``--surrogate``;
``--eps 32/255`` is the public code's implicit budget (32 steps of 1/255, no projection). A record
depends only on its seed and row, so runs split with ``--rows nag pgd`` / ``--seeds 1 2`` pool into
one summary: ``--summary a.json b.json``. Figures and wall-clock (2026-11-30, 2 busy CPU cores):
README, "Database injection"; NAG / PGD = 0.98x +- 0.08 black-box over 3 seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

from hashguard._atomic import atomic_write_json
from hashguard.data import create_dataset
from hashguard.injection import evaluate_injection
from hashguard.models.checkpoint import load_checkpoint

ROWS = {"nag": "nag", "pgd": "pgd (l1)", "ifgsm": "ifgsm"}  # --rows key -> row name
MAIN_ROWS = {"nag": ("nag", {}, {}), "pgd (l1)": ("nag", {"noise_weight": 0.0}, {}), "ifgsm": ("ifgsm", {}, {})}
FIGURES = ("radius_success", "topk_success", "t_map", "clean_radius_success", "surrogate_radius_hit")


def _ratio(a: float, b: float) -> float:
    return float("nan") if b == 0 else a / b


def _spread(values: List[float]) -> str:
    """``mean +- sample std`` (just the mean for one value)."""
    mean = statistics.fmean(values)
    return f"{mean:6.2f}" + (f" +- {statistics.stdev(values):4.2f}" if len(values) > 1 else "")


def ratios(nag: Dict[str, Any], pgd: Dict[str, Any]) -> Dict[str, float]:
    """NAG / PGD on radius success, top-k success and radius success gained over the clean images."""
    return {
        "radius": _ratio(nag["radius_success"], pgd["radius_success"]),
        "topk": _ratio(nag["topk_success"], pgd["topk_success"]),
        "gain": _ratio(nag["radius_success"] - nag["clean_radius_success"],
                       pgd["radius_success"] - pgd["clean_radius_success"]),
    }


def summary(records: List[Dict[str, Any]], box: str) -> List[str]:
    """Per row mean +- std over seeds (in %), then the NAG / PGD ratios per seed and over seeds."""
    lines = [f"{box}, mean +- std over seeds, % of benign queries:",
             f"  {'row':18s} {'n':>2s} " + " ".join(f"{name:>15s}" for name in FIGURES)]
    rows = dict.fromkeys(r["row"] for r in records if r["box"] == box)
    for row in rows:
        mine = [r for r in records if r["box"] == box and r["row"] == row]
        cells = " ".join(f"{_spread([100 * r[f] for r in mine]):>15s}" for f in FIGURES)
        lines.append(f"  {row:18s} {len(mine):2d} {cells}")
    per_seed = []
    for seed in sorted({r["seed"] for r in records if r["box"] == box}):
        pick = {r["row"]: r for r in records if r["box"] == box and r["seed"] == seed}
        if "nag" in pick and "pgd (l1)" in pick:
            per_seed.append(ratios(pick["nag"], pick["pgd (l1)"]))
            lines.append(f"  seed {seed}: NAG / PGD = {per_seed[-1]['radius']:.2f}x radius, "
                         f"{per_seed[-1]['topk']:.2f}x top-k, {per_seed[-1]['gain']:.2f}x gain over clean")
    if per_seed:
        lines.append(f"{box}: NAG / PGD over {len(per_seed)} seed(s) = "
                     + ", ".join(f"{_spread([r[key] for r in per_seed]).strip()}x {key}" for key in ("radius", "topk", "gain")))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", help="the victim's checkpoint")
    parser.add_argument("--surrogate", default=None, help="the attacker's checkpoint (same dataset); without it, white-box only")
    parser.add_argument("--per-target", type=int, default=20)
    parser.add_argument("--steps", type=int, default=32, help="NAG's public code: 32")
    parser.add_argument("--eps", default="8/255")
    parser.add_argument("--step", default="1/255")
    parser.add_argument("--radius", type=int, default=5)
    parser.add_argument("--source", default="train", choices=["train", "noise"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds of the attacker images, reference codes and noise (summary: mean +- std)")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS),
                        help="which of the three main rows to run (default all)")
    parser.add_argument("--options", action="store_true", help="also NAG with mining and with the noise proxy (first seed)")
    parser.add_argument("--white-box", action="store_true", help="also every row white-box (surrogate = victim)")
    parser.add_argument("--json", default=None, help="write every record here")
    parser.add_argument("--summary", nargs="+", metavar="JSON", default=None,
                        help="only print the summary of records saved by earlier runs (--json files, pooled)")
    args = parser.parse_args()
    if args.summary:
        pooled = [record for path in args.summary for record in json.loads(Path(path).read_text())]
        for box in dict.fromkeys(record["box"] for record in pooled):
            print("\n".join(summary(pooled, box)))
        return
    if args.victim is None:
        parser.error("give --victim (or --summary FILES)")
    if args.surrogate is None and not args.white_box:
        parser.error("give --surrogate (black-box), --white-box, or both")
    torch.set_num_threads(1)

    victim, config = load_checkpoint(args.victim, map_location="cpu")
    surrogate = None if args.surrogate is None else load_checkpoint(args.surrogate, map_location="cpu")[0]
    splits = create_dataset(config["dataset"], seed=int(config.get("seed", 0)))
    budget = {"eps": args.eps, "steps": args.steps, "step": args.step}
    rows = [(ROWS[key], *MAIN_ROWS[ROWS[key]]) for key in args.rows]
    optional = [("nag + mining", "nag", {}, {"mine": 4}), ("nag + noise proxy", "nag", {}, {"noise_proxy": 0.1})]
    boxes = ([("black-box", surrogate)] if surrogate is not None else []) + ([("white-box", None)] if args.white_box else [])
    records: List[Dict[str, Any]] = []
    print(f"victim {args.victim}, surrogate {args.surrogate}, eps {args.eps}, step {args.step}, T {args.steps}, "
          f"{args.per_target} {args.source} images per target, radius {args.radius}, seeds {args.seeds}")
    print(f"{'':10s} {'seed':>4s} {'row':18s} {'radius':>7s} {'top-10':>7s} {'t-MAP':>7s} {'clean r':>7s} "
          f"{'sur. hit':>8s} {'s':>5s}")
    for box, model in boxes:
        plan = [(seed, row) for seed in args.seeds for row in rows]
        plan += [(args.seeds[0], row) for row in optional] if args.options else []  # the options last, once
        for seed, (name, method, params, options) in plan:
            start = time.perf_counter()
            record = evaluate_injection(victim, splits, method, surrogate=model, per_target=args.per_target,
                                        params={**budget, **params}, radius=args.radius, source=args.source,
                                        seed=seed, **options)
            record["row"], record["box"] = name, box
            record["wall_seconds"] = time.perf_counter() - start
            records.append(record)
            print(f"{box:10s} {seed:4d} {name:18s} {100 * record['radius_success']:7.2f} "
                  f"{100 * record['topk_success']:7.2f} {100 * record['t_map']:7.2f} "
                  f"{100 * record['clean_radius_success']:7.2f} {100 * record['surrogate_radius_hit']:8.2f} "
                  f"{record['wall_seconds']:5.0f}", flush=True)
            if args.json:  # after each row, so a long run keeps what it measured
                atomic_write_json(args.json, records)
        print("\n".join(summary(records, box)), flush=True)


if __name__ == "__main__":
    main()
