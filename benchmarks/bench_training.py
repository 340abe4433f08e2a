"""Clean mAP of every hashing objective at several bit lengths on the built-in dataset.

Trains a ``cnn`` model per (objective, bits) with the CLI's built-in recipe and prints a table of
clean mAP@1000 on the query set and the training time, measured in one run. Results go to a JSON
file as they finish, and finished rows are skipped when the script is run again.

    python benchmarks/bench_training.py --objectives dph dpsh hashnet csq dch --bits 16 32 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_json
from hashguard.data import create_dataset
from hashguard.hashing import TrainConfig, create_hashing, list_hashing, train_hash_model
from hashguard.hashing.evaluation import retrieval_map
from hashguard.models import create_hash_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist-mosaic")
    parser.add_argument("--objectives", nargs="+", default=list_hashing())
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--lr-step", type=int, default=4)
    parser.add_argument("--topk", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/training.json")
    args = parser.parse_args()

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    splits = create_dataset(args.dataset, seed=args.seed)
    print(f"torch threads: {torch.get_num_threads()}; {splits.summary()}")
    for objective_name in args.objectives:
        for bits in args.bits:
            key = f"{objective_name}-{bits}"
            if key in results:
                continue
            torch.manual_seed(args.seed)
            model = create_hash_model("cnn", bits)
            objective = create_hashing(objective_name, bits=bits, train_labels=splits.train.labels)
            config = TrainConfig(epochs=args.epochs, warmup_epochs=args.warmup_epochs, lr_step=args.lr_step, seed=args.seed)
            start = time.perf_counter()
            train_hash_model(model, objective, splits.train, config, progress=False)
            seconds = time.perf_counter() - start
            results[key] = {
                "objective": objective_name,
                "bits": bits,
                "map": retrieval_map(model, splits.query, splits.database, topk=args.topk),
                "train_seconds": seconds,
            }
            print(f"{objective_name:8s} {bits:3d} bits  mAP@{args.topk} {results[key]['map']:.4f}  train {seconds:6.1f} s", flush=True)
            atomic_write_json(out, results)

    print("\n| objective | " + " | ".join(f"{b} bits" for b in args.bits) + " |")
    print("|---|" + "---|" * len(args.bits))
    for objective_name in args.objectives:
        cells = []
        for b in args.bits:
            r = results.get(f"{objective_name}-{b}")
            cells.append(f"{r['map']:.3f} ({r['train_seconds']:.0f} s)" if r else "-")
        print(f"| {objective_name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
