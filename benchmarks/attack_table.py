"""The full attack table: every attack on one or more checkpoints, one protocol, through ``run_bench``.

For each victim checkpoint: the untargeted attacks (HAG, SDHA, PgA, PgA-dagger, mainstay, FGSM,
I-FGSM), the targeted ones (P2P, DHTA, THA, SDHA, PgA, mainstay, ProS-GAN, FGSM, I-FGSM) and, when
two or more checkpoints are given, the transfer attacks (NAG and targeted mainstay optimised on
each other checkpoint of the same dataset, evaluated on this one), all at the papers' iteration
counts. The script only builds the grid (a ``BenchSpec`` whose ``[[models]]`` are the
checkpoints) and hands it to :func:`hashguard.bench.run_bench`, so ``--out`` is an ordinary bench
results directory: one atomic JSON record per run, a killed run resumes where it stopped, and
``hashguard report OUT`` works on it. The Markdown table of every finished attack record goes to
stdout and ``OUT/table.md``.

Reproduce (the tiny setting checks the script in about a minute on 2 CPU cores)::

    hashguard train --dataset synthetic --bits 16 --epochs 2 --out /tmp/t/dpsh-16.pt
    python benchmarks/attack_table.py --models /tmp/t/dpsh-16.pt --queries 8 --only pga fgsm --out /tmp/t/attacks
    python benchmarks/attack_table.py --models runs/dpsh-32.pt runs/dph-32.pt --queries 500 --out benchmarks/results/attacks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_text
from hashguard.bench import BenchSpec, run_bench
from hashguard.bench.results import open_store
from hashguard.bench.spec import AttackSet, TransferSet

UNTARGETED = ["hag", "sdha", "pga", "pga-dagger", "mainstay", "fgsm", "ifgsm"]
TARGETED = ["p2p", "dhta", "tha", "sdha", "pga", "mainstay", "prosgan", "fgsm", "ifgsm"]
TRANSFER = ["nag", "mainstay"]  # targeted, optimised on a surrogate


def build_spec(args) -> BenchSpec:
    keep = (lambda m: m in args.only) if args.only is not None else (lambda m: True)
    untargeted, targeted = [m for m in UNTARGETED if keep(m)], [m for m in TARGETED if keep(m)]
    transfer = [m for m in TRANSFER if keep(m)] if len(args.models) > 1 else []
    params = {m: {"prototype": {"epochs": args.prototype_epochs}} for m in ("tha", "prosgan") if m in untargeted + targeted}
    return BenchSpec(
        name="attack-table", datasets=[], seed=args.seed, queries=args.queries, batch_size=args.batch_size,
        models=[{"name": Path(p).stem, "checkpoint": str(p)} for p in args.models],
        attacks=AttackSet(untargeted=untargeted, targeted=targeted, params=params),
        transfer=TransferSet(targeted=transfer), examples=[], example_rows=0,
    ).validate()


def _fmt(v, pct=True):
    if v is None:
        return "-"
    return f"{100 * v:.2f}" if pct else f"{v:.3g}"


def table(records, victim, names) -> str:
    """The Markdown table of ``victim``'s attack records (``names``: model key -> name)."""
    rows = [r for r in records if r["config"].get("name") == victim and r["config"]["kind"] == "attack"
            and r["config"]["defense"] == "none"]
    order = {(m, t): i for i, (m, t) in enumerate([(m, False) for m in UNTARGETED] + [(m, True) for m in TARGETED + TRANSFER])}
    rows.sort(key=lambda r: (r["config"]["surrogate"] is not None, order.get((r["config"]["method"], r["config"]["targeted"]), 99)))
    if not rows:
        return ""
    first = rows[0]["metrics"]
    out = [f"### {victim}: clean mAP@{first['topk'] or 'all'} = {100 * first['clean_map']:.2f}, {first['n_queries']} queries, "
           f"eps {first['eps'] * 255:.3g}/255", "",
           "| attack | mode | steps | mAP | theory mAP | t-MAP (clean) | t-MAP | theory t-MAP | success | L-inf*255 | L2 | RMSE "
           "| s/query |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for record in rows:
        c, r = record["config"], record["metrics"]
        mode = "targeted" if c["targeted"] else "untargeted"
        if c["surrogate"] is not None:
            mode += f" (transfer from {names.get(c['surrogate'], c['surrogate'])})"
        p = r["perceptibility"]
        spq = f"{r['seconds_per_query']:.4f}"
        if "seconds_per_query_with_training" in r:
            spq += f" ({r['seconds_per_query_with_training']:.3f} w/ training)"
        out.append(
            f"| {c['method']} | {mode} | {r['steps']} | {_fmt(r['map'])} | {_fmt(r['theory_map'])} | "
            f"{_fmt(r.get('clean_t_map'))} | {_fmt(r.get('t_map'))} | {_fmt(r.get('theory_t_map'))} | "
            f"{r['success_rate']:.2f} | {p['linf'] * 255:.2f} | {p['l2']:.3f} | {p['rmse']:.4f} | {spq} |"
        )
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="checkpoints of `hashguard train` (named by file stem)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--only", nargs="*", default=None, help="run only these methods")
    ap.add_argument("--prototype-epochs", type=int, default=20,
                    help="PrototypeNet epochs of THA / ProS-GAN (x300 steps; paper 100, recorded in params)")
    ap.add_argument("--victims", nargs="*", default=None, help="attack only these victims (names of --models)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    spec = build_spec(args)
    select = None
    if args.victims is not None:
        victims = set(args.victims)
        select = lambda run: run.model.get("name") in victims  # noqa: E731
    run_bench(spec, args.out, device=args.device, progress=args.progress, report=False, select=select,
              log=lambda line: print(line, flush=True))
    records = open_store(spec, args.out).records()  # every finished record, also of earlier --only runs
    names = {r["key"]: r["config"]["name"] for r in records if r["config"]["kind"] == "external"}
    text = "\n".join(table(records, Path(m).stem, names) for m in args.models)
    atomic_write_text(Path(args.out) / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
