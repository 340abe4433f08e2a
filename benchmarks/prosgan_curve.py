"""ProS-GAN's t-MAP against training (one checkpoint): the curve of issue 13, next to the benign queries.

Trains ProS-GAN's prototype network once, then its generator epoch by epoch against the
checkpoint's model, and after every epoch attacks the same queries (drawn as ``hashguard attack``
draws them: the seed's queries, zero-overlap targets of the default protocol) and records the
t-MAP at the dataset's cut-off, the bits that agree with the prototype code, the perceptibility
(RMSE, as ProS-GAN Table 2, mean L2 and L-inf) and the training seconds so far. Writes
``prosgan_curve.json`` to ``--out`` (atomically, after every epoch, so a killed run keeps its curve).

Reproduce (the quick model of ``hashguard bench --preset quick``; minutes per epoch on 2 CPU cores)::

    hashguard train --dataset mnist-mosaic --bits 32 --epochs 4 --warmup-epochs 2 --lr-step 3 \\
        --batch-size 32 --lr 0.01 --out /tmp/quick.pt
    python benchmarks/prosgan_curve.py --model /tmp/quick.pt --bound tanh --gan '{"epochs": 1, ...}' --out /tmp/pc
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from hashguard._atomic import atomic_write_json
from hashguard.attacks.knowledge import Database, Knowledge
from hashguard.attacks.prosgan_networks import prosgan_generate, train_prosgan
from hashguard.attacks.registry import create_attack
from hashguard.attacks.targets import draw_target_labels, unique_labels
from hashguard.bench.protocol import select_queries
from hashguard.data import load_splits
from hashguard.data.batching import load_images
from hashguard.models import load_checkpoint
from hashguard.models.hash_model import encode_dataset
from hashguard.retrieval import mean_average_precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="checkpoint (.pt) of hashguard train")
    ap.add_argument("--out", required=True, help="folder for prosgan_curve.json")
    ap.add_argument("--bound", default="none", choices=("none", "tanh"))
    ap.add_argument("--eps", type=float, default=8 / 255)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rule", default="zero-overlap", choices=("zero-overlap", "any"), help="evaluation targets")
    ap.add_argument("--prototype", default="{}", help="JSON overrides of the PrototypeNet settings")
    ap.add_argument("--gan", default="{}", help="JSON overrides of ProsGANConfig (epochs = points of the curve)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model, config = load_checkpoint(args.model, map_location="cpu")
    splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"))
    idx = select_queries(len(splits.query), args.queries, args.seed)
    x = load_images(splits.query, torch.as_tensor(idx))
    labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    targets = draw_target_labels(labels, splits.database.labels, seed=args.seed, ids=idx.tolist(), rule=args.rule)
    database = Database(encode_dataset(model, splits.database), splits.database.labels, splits.default_topk)
    knowledge = Knowledge.from_model(model, splits.train)

    def t_map(codes: torch.Tensor) -> float:
        return float(mean_average_precision(codes, database.codes, targets, database.labels, topk=database.topk))

    attack = create_attack("prosgan", model, targeted=True, eps=args.eps, bound=args.bound, seed=args.seed,
                           prototype=json.loads(args.prototype), gan=json.loads(args.gan))
    start, cpu0 = time.perf_counter(), time.process_time()
    proto = attack.fit_prototype(knowledge)
    proto_seconds, proto_cpu = time.perf_counter() - start, time.process_time() - cpu0
    with torch.no_grad():
        clean = model.encode(x)
        ideal = proto.codes(targets)
    record = {"model": args.model, "bound": args.bound, "eps": args.eps, "queries": len(idx), "rule": args.rule,
              "topk": database.topk, "prototype": json.loads(args.prototype), "gan": vars(attack.gan_config),
              "clean_t_map": t_map(clean), "theory_t_map": t_map(ideal), "prototype_seconds": proto_seconds,
              "prototype_cpu_seconds": proto_cpu, "curve": []}
    gan_start, cpu_start = time.perf_counter(), time.process_time()

    def on_epoch(epoch: int, G) -> None:
        seconds, cpu = time.perf_counter() - gan_start, time.process_time() - cpu_start
        x_adv = prosgan_generate(G, proto, x, targets, eps=args.eps, bound=args.bound)
        with torch.no_grad():
            codes = model.encode(x_adv)
        d = (x_adv - x).flatten(1)
        point = {"epoch": epoch, "gan_seconds": round(seconds, 1), "gan_cpu_seconds": round(cpu, 1), "t_map": t_map(codes),
                 "bits_agree": float((codes == ideal).float().mean()),
                 "rmse": math.sqrt(float(d.pow(2).mean(1).mean())), "l2": float(d.norm(dim=1).mean()),
                 "linf": float(d.abs().amax(1).mean()), "linf_max": float(d.abs().max()), **G.history[-1]}
        record["curve"].append(point)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in point.items()}), flush=True)
        atomic_write_json(out / "prosgan_curve.json", record)

    print(json.dumps({k: record[k] for k in ("clean_t_map", "theory_t_map", "prototype_seconds")}), flush=True)
    train_prosgan(model, splits.train, proto, label_pool=unique_labels(knowledge.labels), eps=args.eps,
                  bound=args.bound, config=attack.gan_config, on_epoch=on_epoch)
    atomic_write_json(out / "prosgan_curve.json", record)


if __name__ == "__main__":
    main()
