"""Cost of one adversarial-training epoch against one clean training epoch, side by side.

Target (defense issue): an adversarial epoch with T inner PGD iterations costs at most
1.2 x (T + 1) clean epochs. Both epochs run on the same model, training items and batch size:
the clean one is the hashing trainer's epoch (``train_hash_model``, no warm-up, no calibration),
the adversarial one is ``Defense.fit`` for one epoch without the per-epoch evaluation.
Alternated over ``--repeats`` rounds; the medians are compared.

    python benchmarks/bench_defense.py --model runs/dpsh-32.pt --method saat --train-items 960
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from hashguard.data import load_splits
from hashguard.data.base import TensorImageDataset
from hashguard.defenses import create_defense, objective_from_config
from hashguard.hashing import TrainConfig, train_hash_model
from hashguard.models import load_checkpoint


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--method", default="saat")
    ap.add_argument("--train-items", type=int, default=960, help="training items per epoch (a prefix of the split)")
    ap.add_argument("--steps", type=int, default=7, help="inner PGD iterations T")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    model, config = load_checkpoint(args.model, map_location=args.device)
    splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
    train = splits.train
    if args.train_items < len(train):
        train = TensorImageDataset(train.images[: args.train_items], train.labels[: args.train_items])
    labels = torch.as_tensor(train.labels).float()

    def clean_epoch():
        m = copy.deepcopy(model)
        objective = objective_from_config(config, labels)
        train_hash_model(m, objective, train, TrainConfig(epochs=1, calibrate=False, warmup_epochs=0, seed=0), progress=False)

    def adversarial_epoch():
        objective = objective_from_config(config, labels)
        create_defense(args.method, model, objective, epochs=1, steps=args.steps).fit(train, progress=False)

    runners = {"clean epoch": clean_epoch, f"{args.method} epoch (T={args.steps})": adversarial_epoch}
    for run in runners.values():
        run()  # warm-up
    times = {k: [] for k in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    clean = med["clean epoch"]
    adv = med[f"{args.method} epoch (T={args.steps})"]
    print(f"{len(train)} training items, batch 32, {args.device} ({torch.get_num_threads()} threads), median of {args.repeats}")
    for k, v in med.items():
        print(f"  {k:22s} {v:8.2f} s")
    print(f"  ratio {adv / clean:.2f}x clean; target <= 1.2 x (T + 1) = {1.2 * (args.steps + 1):.1f}x; "
          f"per forward-backward unit {adv / clean / (args.steps + 1):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
