"""The defense table of the defense issue (SAAT Tables III / IV layout): undefended and defended
models, clean mAP and mAP under untargeted attacks, t-MAP under targeted attacks.

For every checkpoint: defend it with each defense (``--epochs`` each, resumable), then attack the
undefended and every defended model with the same queries and targets (protocol file of the seed).
Records go to ``--out/records.jsonl`` as they finish (a killed run keeps them and skips them on
resume); the Markdown table goes to stdout and ``--out/table.md``.

    python benchmarks/defense_table.py --models runs/dpsh-32.pt runs/dph-32.pt --out runs/defense-table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from hashguard.bench.protocol import protocol_path, run_attack
from hashguard.data import load_splits
from hashguard.defenses import defend_checkpoint, list_defenses
from hashguard.models import load_checkpoint

UNTARGETED = ["hag", "sdha", "pga", "mainstay"]
TARGETED = ["p2p", "dhta", "tha", "prosgan", "mainstay"]
SLOW = {"hag", "sdha", "p2p", "dhta"}  # paper defaults of 1500-2000 iterations


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--defenses", nargs="+", default=list_defenses())
    ap.add_argument("--epochs", type=int, default=None, help="epochs of every defense (default: each paper's)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--slow-steps", type=int, default=None, help="iterations of HAG / SDHA / P2P / DHTA (default: paper)")
    ap.add_argument("--prototype-epochs", type=int, default=20)
    ap.add_argument("--skip", nargs="*", default=[], help="attacks to leave out (e.g. prosgan)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records_path = out / "records.jsonl"
    done = {}
    if records_path.exists():
        for line in records_path.read_text().splitlines():
            r = json.loads(line)
            done[r["key"]] = r
    for path in args.models:
        name = Path(path).stem
        _, config = load_checkpoint(path, map_location="cpu")
        splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
        protocol = protocol_path(out, splits.name, args.seed, min(args.queries, len(splits.query)))
        victims = {"none": path}
        for defense in args.defenses:
            defended = out / f"{name}-{defense}.pt"
            if not defended.exists():
                start = time.perf_counter()
                params = {"seed": args.seed, **({"epochs": args.epochs} if args.epochs else {})}
                defend_checkpoint(path, defense, defended, splits=splits, params=params, device=args.device, progress=False,
                                  log=lambda line: print(f"  {name} {defense}: {line}", flush=True))
                print(f"{name}: {defense} trained in {time.perf_counter() - start:.0f} s", flush=True)
            victims[defense] = str(defended)
        for defense, victim_path in victims.items():
            model, vconfig = load_checkpoint(victim_path, map_location=args.device)
            cache = {}
            runs = [(m, False) for m in UNTARGETED] + [(m, True) for m in TARGETED]
            for method, targeted in runs:
                if method in args.skip:
                    continue
                key = f"{name}|{defense}|{method}|{'t' if targeted else 'u'}"
                if key in done:
                    continue
                params = {}
                if method in SLOW and args.slow_steps:
                    params["steps"] = args.slow_steps
                if method in ("tha", "prosgan"):
                    params["prototype"] = {"epochs": args.prototype_epochs}
                start = time.perf_counter()
                r = run_attack(model, splits, method, targeted=targeted, n_queries=args.queries, seed=args.seed,
                               topk=splits.default_topk, params=params, protocol_file=protocol, cache=cache)
                r.update({"key": key, "model_name": name, "defense": defense, "wall_seconds": time.perf_counter() - start,
                          "defense_config": vconfig.get("defense", {}).get("epochs")})
                done[key] = r
                with open(records_path, "a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"{key}: mAP {r['map']:.4f} t-MAP {r.get('t_map')}", flush=True)
    text = table(done.values(), args)
    (out / "table.md").write_text(text)
    print(text)
    return 0


def table(records, args) -> str:
    by = {}
    for r in records:
        by.setdefault(r["model_name"], {}).setdefault(r["defense"], {})[(r["method"], r["targeted"])] = r
    lines = []
    for name, defenses in by.items():
        cols = [(m, False) for m in UNTARGETED] + [(m, True) for m in TARGETED]
        cols = [c for c in cols if c[0] not in args.skip]
        head = "| defense | clean mAP | " + " | ".join(f"{m} {'t-MAP' if t else 'mAP'}" for m, t in cols) + " |"
        lines += [f"### {name}", "", head, "|" + "---|" * (len(cols) + 2)]
        for defense, runs in defenses.items():
            any_run = next(iter(runs.values()))
            cells = [f"{100 * runs[c]['t_map' if c[1] else 'map']:.2f}" if c in runs else "-" for c in cols]
            lines.append(f"| {defense} | {100 * any_run['clean_map']:.2f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
