"""Paper vs public-code variants of two target codes (issue 14, items 6 and 7), measured on one victim.

1. THA's PrototypeNet trained with the textbook circle loss (``loss="circle"``, Sun et al. 2020)
   and with the form of THA's / SAAT's public code (``loss="circle-code"``): the prototype code's
   theory t-MAP (the code itself as the query) and THA's targeted t-MAP, same seed.
2. SAAT's mainstay code with the weights of Eq. 11 (``weighting="paper"``) and of SAAT's public
   code (``weighting="code"``): the share of bits that differ, the theory t-MAP (targeted, the
   code of the target label as the query) and theory MAP (untargeted, minus the code of the query
   label), and the mainstay attack's targeted t-MAP.

mAP@topk of the dataset (1,000 for mnist-mosaic) over the database; queries are the first
``--queries`` of the query split; target labels drawn with ``draw_target_labels(seed=0)``.

Reproduce (about 6 minutes to train on 2 CPU cores; the first measurement about 25 minutes on busy cores)::

    hashguard train --dataset mnist-mosaic --bits 32 --epochs 4 --seed 0 --out /tmp/v/dpsh-32.pt
    python benchmarks/code_variants.py --model /tmp/v/dpsh-32.pt --queries 100 --epochs 10 --steps-per-epoch 100
    python benchmarks/code_variants.py --model /tmp/v/dpsh-32.pt --queries 1000 --theory-only --skip tha
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hashguard.attacks import Knowledge, create_attack, draw_target_labels
from hashguard.codes import mainstay_codes
from hashguard.data import create_dataset
from hashguard.models.checkpoint import load_checkpoint
from hashguard.retrieval import mean_average_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a hashguard checkpoint")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=100, help="PrototypeNet epochs (paper 100)")
    parser.add_argument("--steps-per-epoch", type=int, default=300, help="PrototypeNet steps per epoch (paper 300)")
    parser.add_argument("--attack-steps", type=int, default=100, help="PGD iterations of THA and mainstay (paper 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["tha", "mainstay"])
    parser.add_argument("--theory-only", action="store_true", help="measure the codes only, run no attack")
    args = parser.parse_args()

    model, config = load_checkpoint(args.model, map_location="cpu")
    splits = create_dataset(config["dataset"], seed=int(config.get("seed", 0)))
    topk = config.get("topk")
    knowledge = Knowledge.from_model(model, splits.train)
    db_codes = model.encode(splits.database.batch(slice(None)))
    db_labels = torch.as_tensor(splits.database.labels).float()
    q = min(args.queries, len(splits.query))
    x = splits.query.batch(slice(0, q))
    y = torch.as_tensor(splits.query.labels[:q]).float()
    targets = draw_target_labels(y, db_labels, seed=args.seed)

    def t_map(codes: torch.Tensor, labels: torch.Tensor) -> float:
        return float(mean_average_precision(codes, db_codes, labels, db_labels, topk=topk))

    out = {"model": args.model, "dataset": config["dataset"], "bits": model.bits, "queries": q, "topk": topk,
           "clean_map": t_map(model.encode(x), y)}

    if "mainstay" not in args.skip:
        codes = {w: (mainstay_codes(targets, knowledge.codes, knowledge.labels, weighting=w),
                     mainstay_codes(y, knowledge.codes, knowledge.labels, weighting=w)) for w in ("paper", "code")}
        for which, i in (("target", 0), ("query", 1)):
            differ = (codes["paper"][i] != codes["code"][i]).float()
            out[f"mainstay_{which}_bits_differ"] = float(differ.mean())
            out[f"mainstay_{which}_codes_differ"] = float((differ.sum(1) > 0).float().mean())
        for w in ("paper", "code"):
            out[f"mainstay_{w}_theory_tmap"] = t_map(codes[w][0], targets)
            out[f"mainstay_{w}_theory_map"] = t_map(-codes[w][1], y)
            if args.theory_only:
                continue
            attack = create_attack("mainstay", model, targeted=True, steps=args.attack_steps, weighting=w, seed=args.seed)
            start = time.perf_counter()
            result = attack(x, y, target_labels=targets, knowledge=knowledge)
            out[f"mainstay_{w}_attack_tmap"] = t_map(result.codes_adv, targets)
            out[f"mainstay_{w}_attack_seconds"] = time.perf_counter() - start
            print(json.dumps({k: v for k, v in out.items() if k.startswith("mainstay")}), flush=True)

    if "tha" not in args.skip:
        for loss in ("circle", "circle-code"):
            prototype = {"loss": loss, "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "seed": args.seed}
            attack = create_attack("tha", model, targeted=True, steps=args.attack_steps, prototype=prototype,
                                   seed=args.seed).fit(knowledge)
            net = attack.prototype_net
            assert net is not None
            out[f"tha_{loss}_fit_seconds"] = attack.fit_seconds
            out[f"tha_{loss}_theory_tmap"] = t_map(net.codes(targets), targets)
            if args.theory_only:
                continue
            result = attack(x, y, target_labels=targets, knowledge=knowledge)
            out[f"tha_{loss}_attack_tmap"] = t_map(result.codes_adv, targets)
            print(json.dumps({k: v for k, v in out.items() if k.startswith("tha")}), flush=True)

    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
