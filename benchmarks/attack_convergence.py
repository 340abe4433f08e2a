"""mAP against the number of PGD iterations T for PgA, mainstay and DHTA (one checkpoint).

Each T is its own run (the relative alpha schedule stretches over T). Also runs PgA without the
schedule (alpha = 1) and at a doubled budget, and splits the gap between PgA at T = 100 and its
theory row into the queries the attack leaves unbroken (adversarial AP >= 0.5) and the rest.
Writes ``convergence.json`` and ``convergence.png`` to ``--out``.

    python benchmarks/attack_convergence.py --model runs/dpsh-32.pt --out benchmarks/results/convergence
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_json
from hashguard.attacks import Database, Knowledge, create_attack
from hashguard.bench.protocol import select_queries
from hashguard.attacks.targets import draw_target_labels
from hashguard.bench.figures import map_vs_iterations
from hashguard.data import load_splits
from hashguard.models import encode_dataset, load_checkpoint
from hashguard.retrieval import mean_average_precision, per_query_scores

CURVES = {  # label: (method, targeted, extra params)
    "PgA": ("pga", False, {}),
    "PgA, alpha = 1": ("pga", False, {"alpha": "none"}),
    "mainstay": ("mainstay", False, {}),
    "DHTA (targeted, t-MAP)": ("dhta", True, {}),
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
    out.mkdir(parents=True, exist_ok=True)
    model, config = load_checkpoint(args.model, map_location=args.device)
    splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
    topk = splits.default_topk
    idx = select_queries(len(splits.query), args.queries, args.seed)
    x = splits.query.batch(torch.as_tensor(idx))
    y = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    yt = draw_target_labels(y, splits.database.labels, seed=args.seed, ids=idx.tolist())
    db = Database(encode_dataset(model, splits.database), splits.database.labels, topk)
    knowledge = Knowledge.from_model(model, splits.train)
    clean = model.encode(x.to(args.device)).cpu()

    def score(codes, labels):
        return mean_average_precision(codes, db.codes, labels, db.labels, topk=topk)

    record = {"model": str(args.model), "topk": topk, "n_queries": len(idx), "steps": args.steps,
              "clean_map": score(clean, y), "clean_t_map": score(clean, yt), "curves": {}, "theory": {}}
    for label, (method, targeted, params) in CURVES.items():
        values = []
        for t in args.steps:
            attack = create_attack(method, model, targeted=targeted, steps=t, seed=args.seed, **params)
            r = attack(x, y, target_labels=yt if targeted else None, knowledge=knowledge, ids=idx.tolist())
            values.append(score(r.codes_adv.cpu(), yt if targeted else y))
            print(f"{label:24s} T={t:5d}  {values[-1]:.4f}", flush=True)
        record["curves"][label] = values
        record["theory"][label] = score(r.ideal_codes.cpu(), yt if targeted else y)

    # where the PgA gap at T = 100 comes from, and what a doubled budget does
    for eps in (8 / 255, 16 / 255):
        r = create_attack("pga", model, steps=100, eps=eps, seed=args.seed)(x, y, knowledge=knowledge, ids=idx.tolist())
        ap_adv, _ = per_query_scores(r.codes_adv.cpu(), db.codes, y, db.labels, topk=topk)
        ap_ideal, _ = per_query_scores(r.ideal_codes.cpu(), db.codes, y, db.labels, topk=topk)
        unbroken = ap_adv >= 0.5
        key = f"pga_T100_eps{round(eps * 255)}"
        record[key] = {
            "map": float(ap_adv.mean()), "theory_map": float(ap_ideal.mean()),
            "unbroken_fraction": float(unbroken.mean()),
            "gap_from_unbroken": float((ap_adv - ap_ideal)[unbroken].sum() / len(idx)),
            "gap_from_rest": float((ap_adv - ap_ideal)[~unbroken].sum() / len(idx)),
            "bits_from_ideal_mean": float((r.codes_adv.cpu() != r.ideal_codes.cpu()).float().sum(1).mean()),
        }
        print(key, record[key], flush=True)
    atomic_write_json(out / "convergence.json", record)

    fig = map_vs_iterations(
        {label: (args.steps, values) for label, values in record["curves"].items()},
        record["theory"],
        f"{Path(args.model).stem}: attack strength vs iterations (dotted: theory)",
        ylabel=f"mAP@{topk} (%)  (DHTA: t-MAP)",
    )
    fig.savefig(out / "convergence.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
