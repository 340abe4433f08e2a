"""A user's own network under hashguard: the wrapper's cost, and what keeping the images' size saves.

Two side-by-side measurements in one process (medians over ``--repeats`` interleaved rounds):

1. PgA (T = ``--steps``) on a user's DeepHash-style network wrapped with ``wrap_model``, against
   the same attack on hashguard's ``HashModel`` holding the same weights, and against a bare PGD
   loop that calls the user's network directly with the normalisation written out. Target: the
   wrapped network costs at most 1.1x the HashModel (the wrapper adds no layer; only an input check
   and the normalisation).
2. Encoding a database of 32x32 images at their own size (the ``lists`` dataset's default) against
   the same images blown up to 224x224 (what every disk dataset got before), with a network whose
   global pooling accepts both.

    python benchmarks/bench_wrapped.py                  # CPU
    python benchmarks/bench_wrapped.py --device cuda --queries 256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from hashguard.attacks import Knowledge, create_attack
from hashguard.data import from_tensors
from hashguard.models import HashModel, encode_dataset, wrap_model
from hashguard.models.backbones import cnn

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class UserNet(nn.Module):
    """A user's network: features -> hash layer, normalisation outside (as DeepHash-pytorch)."""

    def __init__(self, features: nn.Module, hash_layer: nn.Module) -> None:
        super().__init__()
        self.features, self.hash_layer = features, hash_layer

    def forward(self, x):
        return self.hash_layer(self.features(x))


def bare_pgd(net, x, code, eps=8 / 255, step=1 / 255, steps=100):
    mean, std = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1), torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = (torch.tanh(net((x_adv - mean) / std)) * code).mean()
        grad, = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = torch.min(torch.max(x_adv - step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--database", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    hashguard_model = HashModel(cnn(), 32).to(device).eval()
    net = UserNet(hashguard_model.features, hashguard_model.hash_layer).to(device).eval()
    for p in net.parameters():  # as the attack engine does: no parameter gradients inside PGD
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    n = max(args.database, args.queries)
    images = (torch.rand(n, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    labels = F.one_hot(torch.randint(0, 5, (n,), generator=gen), 5)
    splits = from_tensors(train=(images, labels), query=(images[: args.queries], labels[: args.queries]),
                          database=(images, labels))
    x = splits.query.batch(slice(None)).to(device)
    y = torch.as_tensor(splits.query.labels).float()
    wrapped = wrap_model(net, input_norm=(MEAN, STD), example=x[:2])
    knowledge = Knowledge.from_model(wrapped, splits.train).to(device)
    code = torch.where(torch.rand(args.queries, 32, generator=gen) < 0.5, -1.0, 1.0).to(device)
    runners = {
        "bare PGD on the user's net": lambda: bare_pgd(net, x, code, steps=args.steps),
        "PgA on HashModel": lambda: create_attack("pga", hashguard_model, steps=args.steps)(x, y, knowledge=knowledge),
        "PgA on wrap_model(net)": lambda: create_attack("pga", wrapped, steps=args.steps)(x, y, knowledge=knowledge),
    }
    big = F.interpolate(splits.database.batch(slice(None)), size=224, mode="bilinear", align_corners=False).clamp(0, 1)
    encoders = {
        "encode 32x32 (own size)": lambda: wrapped.encode(splits.database.batch(slice(None)).to(device)),
        "encode 224x224 (resized)": lambda: wrapped.encode(big.to(device)),
    }
    for fn in list(runners.values()) + list(encoders.values()):
        fn()  # warm-up
    times = {name: [] for name in list(runners) + list(encoders)}
    for _ in range(args.repeats):
        for name, fn in list(runners.items()) + list(encoders.items()):
            times[name].append(_timed(fn, device))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"{args.queries} queries x {args.steps} PGD steps, 32x32 images, {device} "
          f"({torch.get_num_threads()} threads), median of {args.repeats}")
    base = med["PgA on HashModel"]
    for name in runners:
        print(f"  {name:28s} {med[name]:8.3f} s   {med[name] / base:5.2f}x PgA on HashModel")
    small = med["encode 32x32 (own size)"]
    print(f"{args.database} database images encoded by the wrapped network")
    for name in encoders:
        print(f"  {name:28s} {med[name]:8.3f} s   {med[name] / small:5.2f}x own size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
