"""The defense table (SAAT Tables III / IV layout) through ``run_bench``: undefended and defended
models, clean mAP and mAP under untargeted attacks, t-MAP under targeted attacks.

For every checkpoint: defend it with each defense (``--epochs`` each; a killed defense resumes
inside its epochs), then attack the undefended and every defended model with the same queries and
targets. The script only builds the grid (a ``BenchSpec`` whose ``[[models]]`` are the checkpoints,
with a ``[defenses]`` section) and hands it to :func:`hashguard.bench.run_bench`, so ``--out`` is an
ordinary bench results directory (atomic JSON records, resumable, ``hashguard report OUT`` works on
it). The Markdown table goes to stdout and ``OUT/table.md``.

Reproduce (the tiny setting checks the script in a few minutes on 2 CPU cores)::

    hashguard train --dataset synthetic --bits 16 --epochs 2 --out /tmp/t/dpsh-16.pt
    python benchmarks/defense_table.py --models /tmp/t/dpsh-16.pt --defenses saat --epochs 1 --queries 8 \\
        --skip hag sdha p2p dhta tha prosgan --out /tmp/t/defense
    python benchmarks/defense_table.py --models runs/dpsh-32.pt runs/dph-32.pt --out runs/defense-table
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_text
from hashguard.bench import BenchSpec, run_bench
from hashguard.bench.results import open_store
from hashguard.bench.spec import DefenseSet
from hashguard.defenses import list_defenses

UNTARGETED = ["hag", "sdha", "pga", "mainstay"]
TARGETED = ["p2p", "dhta", "tha", "prosgan", "mainstay"]
SLOW = {"hag", "sdha", "p2p", "dhta"}  # paper defaults of 1500-2000 iterations


def columns(skip) -> list:
    return [(m, False) for m in UNTARGETED if m not in skip] + [(m, True) for m in TARGETED if m not in skip]


def build_spec(args) -> BenchSpec:
    cols = columns(args.skip)
    methods = sorted({m for m, _ in cols})
    return BenchSpec(
        name="defense-table", datasets=[], seed=args.seed, queries=args.queries,
        models=[{"name": Path(p).stem, "checkpoint": str(p)} for p in args.models],
        defenses=DefenseSet(
            methods=list(args.defenses), epochs=args.epochs,
            untargeted=[m for m, t in cols if not t], targeted=[m for m, t in cols if t],
            steps={m: args.slow_steps for m in methods if m in SLOW and args.slow_steps},
            attack_params={m: {"prototype": {"epochs": args.prototype_epochs}} for m in methods if m in ("tha", "prosgan")},
        ),
        examples=[], example_rows=0,
    ).validate()


def table(records, args) -> str:
    by: dict = {}
    for record in records:
        c = record["config"]
        if c["kind"] == "attack" and c["surrogate"] is None and c.get("name") is not None:
            by.setdefault(c["name"], {}).setdefault(c["defense"], {})[(c["method"], c["targeted"])] = record["metrics"]
    cols = columns(args.skip)
    lines = []
    for name in [Path(p).stem for p in args.models]:
        defenses = by.get(name, {})
        head = "| defense | clean mAP | " + " | ".join(f"{m} {'t-MAP' if t else 'mAP'}" for m, t in cols) + " |"
        lines += [f"### {name}", "", head, "|" + "---|" * (len(cols) + 2)]
        for defense in ["none"] + [d for d in args.defenses if d in defenses]:
            runs = defenses.get(defense)
            if not runs:
                continue
            any_run = next(iter(runs.values()))
            cells = [f"{100 * runs[c]['t_map' if c[1] else 'map']:.2f}" if c in runs else "-" for c in cols]
            lines.append(f"| {defense} | {100 * any_run['clean_map']:.2f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="checkpoints of `hashguard train` (named by file stem)")
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
    spec = build_spec(args)
    run_bench(spec, args.out, device=args.device, progress=False, report=False,
              log=lambda line: print(line, flush=True))
    text = table(open_store(spec, args.out).records(), args)
    atomic_write_text(Path(args.out) / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
