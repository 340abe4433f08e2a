"""Overhead of the shared attack engine: PgA and mainstay against a bare PGD loop, side by side.

Target (attack issue): ``pga`` and ``mainstay`` at T = 100 cost at most 1.25x a bare PGD loop on
the same model, batch and T, whose loss is the mean of h times a fixed code. The engine adds the
code builders (one matrix product over the reference set), the alpha schedule, the margin loss,
the random start and the final re-encoding; this script times all three in one process,
interleaved over ``--repeats`` rounds, and prints the ratios of the medians.

    python benchmarks/bench_attacks.py                 # cnn on mnist-mosaic images, CPU
    python benchmarks/bench_attacks.py --device cuda --queries 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from hashguard.attacks import Knowledge, create_attack
from hashguard.data import create_dataset
from hashguard.models import create_hash_model, load_checkpoint


def bare_pgd(model, x, code, eps=8 / 255, step=1 / 255, steps=100):
    """The reference: sign-PGD on mean(h * code), projection to the eps-ball and [0, 1]."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = (model(x_adv) * code).mean()
        grad, = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = torch.min(torch.max(x_adv - step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: an untrained cnn, 32 bits)")
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    splits = create_dataset("mnist-mosaic")
    if args.model:
        model, _ = load_checkpoint(args.model, map_location=device)
    else:
        torch.manual_seed(0)
        model = create_hash_model("cnn", 32).to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = splits.query.batch(slice(0, args.queries)).to(device)
    y = torch.as_tensor(splits.query.labels[: args.queries]).float()
    knowledge = Knowledge.from_model(model, splits.train).to(device)
    code = torch.where(torch.rand(args.queries, model.bits, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0).to(device)

    runners = {
        "bare PGD": lambda: bare_pgd(model, x, code, steps=args.steps),
        "pga": lambda: create_attack("pga", model, steps=args.steps)(x, y, knowledge=knowledge).x_adv,
        "mainstay": lambda: create_attack("mainstay", model, steps=args.steps)(x, y, knowledge=knowledge).x_adv,
    }
    for run in runners.values():  # warm-up (allocator, cudnn, numba)
        run()
    times = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["bare PGD"])
    print(f"{args.queries} queries x {args.steps} steps, {device} ({torch.get_num_threads()} threads), "
          f"median of {args.repeats}")
    result = {"queries": args.queries, "steps": args.steps, "device": str(device), "seconds": {}, "ratio": {}}
    for name, ts in times.items():
        med = statistics.median(ts)
        result["seconds"][name] = med
        result["ratio"][name] = med / base
        print(f"  {name:10s} {med:8.3f} s   {med / base:5.2f}x bare PGD")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
