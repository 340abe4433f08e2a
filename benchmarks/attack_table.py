"""The full attack table of the attack issue: every attack on one or more checkpoints, one protocol.

For each victim checkpoint: the untargeted attacks (HAG, SDHA, PgA, PgA-dagger, mainstay, FGSM,
I-FGSM), the targeted ones (P2P, DHTA, THA, SDHA, PgA, mainstay, ProS-GAN, FGSM, I-FGSM) and, when
two or more checkpoints are given, the transfer attacks (NAG and mainstay-targeted optimised on the
next checkpoint, evaluated on this one). Paper-default iterations unless ``--steps-scale`` shrinks
them. One JSON record per run in ``--out`` (written atomically, skipped when present: a killed run
resumes), then a Markdown table per checkpoint on stdout and in ``--out/table.md``.

    python benchmarks/attack_table.py --models runs/dpsh-32.pt runs/dph-32.pt --queries 500 --out benchmarks/results/attacks
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_json, atomic_write_text
from hashguard.bench.protocol import protocol_path, run_attack
from hashguard.data import load_splits
from hashguard.models import load_checkpoint

UNTARGETED = ["hag", "sdha", "pga", "pga-dagger", "mainstay", "fgsm", "ifgsm"]
TARGETED = ["p2p", "dhta", "tha", "sdha", "pga", "mainstay", "prosgan", "fgsm", "ifgsm"]
TRANSFER = ["nag", "mainstay"]  # targeted, optimised on a surrogate


def _runs(names):
    for victim in names:
        for m in UNTARGETED:
            yield victim, m, False, None
        for m in TARGETED:
            yield victim, m, True, None
        if len(names) > 1:
            surrogate = names[(names.index(victim) + 1) % len(names)]
            for m in TRANSFER:
                yield victim, m, True, surrogate


def _fmt(v, pct=True):
    if v is None:
        return "-"
    return f"{100 * v:.2f}" if pct else f"{v:.3g}"


def table(records, victim):
    rows = [r for r in records if r["model_name"] == victim]
    if not rows:
        return ""
    clean = rows[0]["clean_map"]
    out = [f"### {victim}: clean mAP@{rows[0]['topk']} = {100 * clean:.2f}, {rows[0]['n_queries']} queries, eps 8/255", "",
           "| attack | mode | steps | mAP | theory mAP | t-MAP (clean) | t-MAP | theory t-MAP | success | L-inf*255 | L2 | RMSE | s/query |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mode = ("targeted" if r["targeted"] else "untargeted") + (f" (transfer from {r['surrogate_name']})" if r["transfer"] else "")
        p = r["perceptibility"]
        spq = f"{r['seconds_per_query']:.4f}"
        if "seconds_per_query_with_training" in r:
            spq += f" ({r['seconds_per_query_with_training']:.3f} w/ training)"
        out.append(
            f"| {r['method']} | {mode} | {r['steps']} | {_fmt(r['map'])} | {_fmt(r['theory_map'])} | "
            f"{_fmt(r.get('clean_t_map'))} | {_fmt(r.get('t_map'))} | {_fmt(r.get('theory_t_map'))} | "
            f"{r['success_rate']:.2f} | {p['linf'] * 255:.2f} | {p['l2']:.3f} | {p['rmse']:.4f} | {spq} |"
        )
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [Path(m).stem for m in args.models]
    paths = dict(zip(names, args.models))
    models, splits, caches = {}, None, {}
    for name, path in paths.items():
        models[name], config = load_checkpoint(path, map_location=args.device)
        if splits is None:
            splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
            topk = splits.default_topk
        caches[name] = {}
    protocol = protocol_path(out, splits.name, args.seed, min(args.queries, len(splits.query)))
    records = []
    for victim, method, targeted, surrogate in _runs(names):
        tag = f"{victim}-{method}-{'t' if targeted else 'u'}" + (f"-from-{surrogate}" if surrogate else "")
        path = out / f"{tag}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
            continue
        if args.only is not None and method not in args.only:
            continue
        if args.victims is not None and victim not in args.victims:
            continue
        params = {"prototype": {"epochs": args.prototype_epochs}} if method in ("tha", "prosgan") else None
        start = time.perf_counter()
        cache = caches[victim]
        if surrogate is not None:  # the surrogate's reference set is its own
            cache = {"database": caches[victim].get("database")} if "database" in caches[victim] else {}
            cache.update({k: v for k, v in caches[surrogate].items() if k == "knowledge"})
            if "knowledge" in cache:
                cache["knowledge_surrogate"] = cache.pop("knowledge")
        record = run_attack(
            models[victim], splits, method, targeted=targeted, n_queries=args.queries, seed=args.seed, topk=topk,
            surrogate=models[surrogate] if surrogate else None, protocol_file=protocol,
            batch_size=args.batch_size, progress=args.progress, cache=cache, params=params,
        )
        if surrogate is None:
            caches[victim].update(cache)
        record.update({"model_name": victim, "surrogate_name": surrogate, "device": args.device,
                       "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                       "wall_seconds": time.perf_counter() - start})
        atomic_write_json(path, record)
        records.append(record)
        print(f"{tag}: mAP {record['map']:.4f} t-MAP {record.get('t_map')} ({record['wall_seconds']:.1f} s)", flush=True)
    text = "\n".join(table(records, v) for v in names)
    atomic_write_text(out / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
