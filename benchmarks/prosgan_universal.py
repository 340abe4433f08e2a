"""The eps-ball ceiling of a label-conditioned *universal* perturbation (issue 13's "why not" for ProS-GAN).

ProS-GAN's generator G(x, r_t) sees both the image and the target's representation. Early in
training it can only exploit what depends on the target alone: one perturbation per target label,
shared by every image. This script trains exactly that, the best such perturbation it can find,
``x_adv = clamp(x + eps * tanh(W r_t + b), 0, 1)`` with ``r_t`` the ProS-GAN prototype network's
representation of the target label, on ProS-GAN's hash term (Eq. 7, ``1 - mean(F(x_adv) * p)``)
with Adam on the training split, and reports the t-MAP of the same queries and zero-overlap
targets as ``benchmarks/prosgan_curve.py`` every ``--every`` batches. If this ceiling is far below
per-image attacks (DHTA, I-FGSM at T = 8), a generator inside the ball must learn image-specific
perturbations before it gains much, which is what its curve shows.

Reproduce (the quick preset's model; about a minute per 60 batches on one CPU core)::

    hashguard bench --preset quick --out runs/quick        # or any checkpoint of hashguard train
    python benchmarks/prosgan_universal.py --model runs/quick/models/mnist-mosaic_cnn_dpsh_32bits-*.pt
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from hashguard.attacks.knowledge import Database, Knowledge
from hashguard.attacks.prosgan_networks import draw_training_targets
from hashguard.attacks.registry import create_attack
from hashguard.attacks.targets import draw_target_labels, unique_labels
from hashguard.bench.protocol import select_queries
from hashguard.data import load_splits
from hashguard.data.batching import iterate_batches, load_images
from hashguard.models import load_checkpoint
from hashguard.models.hash_model import encode_dataset
from hashguard.retrieval import mean_average_precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="checkpoint (.pt) of hashguard train")
    ap.add_argument("--eps", type=float, default=8 / 255)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batches", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--every", type=int, default=20, help="evaluate every N batches")
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-2, 3e-2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, config = load_checkpoint(args.model, map_location="cpu")
    model.eval().requires_grad_(False)
    splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
    idx = select_queries(len(splits.query), args.queries, args.seed)
    x = load_images(splits.query, torch.as_tensor(idx))
    labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    targets = draw_target_labels(labels, splits.database.labels, seed=args.seed, ids=idx.tolist(), rule="zero-overlap")
    database = Database(encode_dataset(model, splits.database), splits.database.labels, splits.default_topk)
    knowledge = Knowledge.from_model(model, splits.train)

    def t_map(codes: torch.Tensor) -> float:
        return float(mean_average_precision(codes, database.codes, targets, database.labels, topk=database.topk))

    attack = create_attack("prosgan", model, targeted=True, eps=args.eps, seed=args.seed, prototype={"epochs": 1})
    proto = attack.fit_prototype(knowledge)
    pool = unique_labels(knowledge.labels).float()
    with torch.no_grad():
        r_query = proto(targets)[0]
        print(json.dumps({"clean_t_map": round(t_map(model.encode(x)), 4),
                          "theory_t_map": round(t_map(proto.codes(targets)), 4)}), flush=True)
    shape = tuple(x.shape[1:])

    def perturbed(images: torch.Tensor, layer: nn.Linear, r: torch.Tensor) -> torch.Tensor:
        return (images + args.eps * torch.tanh(layer(r)).view(-1, *shape)).clamp(0.0, 1.0)

    for lr in args.lr:
        torch.manual_seed(args.seed)
        layer = nn.Linear(r_query.shape[1], int(x[0].numel()))
        opt = torch.optim.Adam(layer.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(args.seed)
        order = torch.randperm(len(splits.train), generator=generator)
        order = order.repeat(args.batches * args.batch_size // len(order) + 1)[: args.batches * args.batch_size]
        start = time.perf_counter()
        for i, (images, y, _) in enumerate(iterate_batches(splits.train, order, args.batch_size), 1):
            y_t = draw_training_targets(y.float(), pool, "any", generator)
            with torch.no_grad():
                r, h = proto(y_t)[:2]
            p = torch.where(h >= 0, 1.0, -1.0)
            loss = 1.0 - (model(perturbed(images.float(), layer, r)) * p).mean()  # ProS-GAN Eq. 7
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i % args.every == 0 or i == args.batches:
                with torch.no_grad():
                    score = t_map(model.encode(perturbed(x, layer, r_query)))
                print(json.dumps({"lr": lr, "batches": i, "loss": round(loss.item(), 4), "t_map": round(score, 4),
                                  "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
