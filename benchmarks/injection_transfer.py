"""NAG's claim measured: black-box database-injection success of NAG vs PGD (issue 13).

NAG (Xiao & Wang, CVPR 2021, abstract and Sec. 1) reports "about 1.2-3x improvements of black-box
transferability" over PGD. Here both craft poisoned images on a surrogate and inject them into
the victim's database (``hashguard.evaluate_injection``); the victim is a black box when the
surrogate is another model. Rows, all with the same eps, step and iteration count:

- ``nag``: NAG at its defaults (l1 loss to one reference code of the target category + the same
  under uniform noise of 32/255, lambda = 1);
- ``pgd (l1)``: the same attack with ``noise_weight = 0``, i.e. PGD on NAG's loss and target code
  (the paper's PGD baseline: no noise term);
- ``ifgsm``: hashguard's targeted I-FGSM (DHTA anchor of 9 codes, linear code loss);
- with ``--options``: NAG with vulnerable-pair mining (``mine=4``) and with the Gaussian-noise
  proxy (``noise_proxy=0.1``).

The ratio column is NAG's figure over PGD's (radius success; top-k success in brackets).

Reproduce on the built-in data (victim: cnn width 32, seed 0; surrogate: cnn width 16, seed 1,
another seed and network, trained by ``--train-surrogate`` when the file is missing, about 2.5
minutes; the victim about 15 minutes on 2 busy CPU cores; the measurement about 30 minutes there)::

    hashguard train --dataset mnist-mosaic --backbone cnn --hash dpsh --bits 32 --seed 0 \
        --epochs 4 --warmup-epochs 2 --lr-step 3 --batch-size 32 --lr 0.01 --out /tmp/nag/cnn-s0.pt
    python benchmarks/injection_transfer.py --victim /tmp/nag/cnn-s0.pt --surrogate /tmp/nag/cnn16-s1.pt \
        --train-surrogate --options --white-box

A resnet18 surrogate (``hashguard train --backbone resnet18 --seed 1 ...``) works the same way; on
2 CPU cores shared with other jobs its DPSH stage ran at about 20 s per batch, so it was not measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hashguard.data import create_dataset
from hashguard.injection import evaluate_injection
from hashguard.models.checkpoint import load_checkpoint


def train_surrogate(out: str, *, width: int, seed: int) -> None:
    """A cnn of another width and seed on mnist-mosaic, DPSH 32 bits, the quick preset's recipe."""
    from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
    from hashguard.models import create_hash_model
    from hashguard.models.checkpoint import save_checkpoint

    splits = create_dataset("mnist-mosaic", seed=seed)
    torch.manual_seed(seed)
    model = create_hash_model("cnn", 32, backbone_kwargs={"width": width})
    objective = create_hashing("dpsh", bits=32, train_labels=splits.train.labels)
    config = TrainConfig(epochs=4, warmup_epochs=2, lr_step=3, batch_size=32, lr=0.01, seed=seed)
    train_hash_model(model, objective, splits.train, config, progress=False)
    save_checkpoint(out, model.eval(), {"dataset": "mnist-mosaic", "seed": seed, "bits": 32, "backbone": "cnn",
                                        "hash_method": "dpsh"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", required=True, help="the victim's checkpoint")
    parser.add_argument("--surrogate", required=True, help="the attacker's checkpoint (same dataset)")
    parser.add_argument("--per-target", type=int, default=20)
    parser.add_argument("--steps", type=int, default=32, help="NAG's public code: 32")
    parser.add_argument("--eps", default="8/255")
    parser.add_argument("--step", default="1/255")
    parser.add_argument("--radius", type=int, default=5)
    parser.add_argument("--source", default="train", choices=["train", "noise"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", action="store_true", help="also NAG with mining and with the noise proxy")
    parser.add_argument("--white-box", action="store_true", help="also every row white-box (surrogate = victim)")
    parser.add_argument("--json", default=None, help="write every record here")
    parser.add_argument("--train-surrogate", action="store_true",
                        help="train the surrogate (cnn width 16, seed 1, the quick recipe) when --surrogate is missing")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.train_surrogate and not Path(args.surrogate).exists():
        train_surrogate(args.surrogate, width=16, seed=1)
    victim, config = load_checkpoint(args.victim, map_location="cpu")
    surrogate, _ = load_checkpoint(args.surrogate, map_location="cpu")
    splits = create_dataset(config["dataset"], seed=int(config.get("seed", 0)))
    budget = {"eps": args.eps, "steps": args.steps, "step": args.step}
    rows = [("nag", "nag", {}, {}), ("pgd (l1)", "nag", {"noise_weight": 0.0}, {}), ("ifgsm", "ifgsm", {}, {})]
    if args.options:
        rows += [("nag + mining", "nag", {}, {"mine": 4}), ("nag + noise proxy", "nag", {}, {"noise_proxy": 0.1})]
    boxes = [("black-box", surrogate)] + ([("white-box", None)] if args.white_box else [])
    records = []
    print(f"victim {args.victim}, surrogate {args.surrogate}, eps {args.eps}, step {args.step}, T {args.steps}, "
          f"{args.per_target} {args.source} images per target, radius {args.radius}")
    print(f"{'':10s} {'row':18s} {'radius':>7s} {'top-10':>7s} {'t-MAP':>7s} {'clean r':>7s} {'sur. hit':>8s} {'s':>5s}")
    for box, model in boxes:
        for name, method, params, options in rows:
            start = time.perf_counter()
            record = evaluate_injection(victim, splits, method, surrogate=model, per_target=args.per_target,
                                        params={**budget, **params}, radius=args.radius, source=args.source,
                                        seed=args.seed, **options)
            record["row"], record["box"] = name, box
            records.append(record)
            print(f"{box:10s} {name:18s} {100 * record['radius_success']:7.2f} {100 * record['topk_success']:7.2f} "
                  f"{100 * record['t_map']:7.2f} {100 * record['clean_radius_success']:7.2f} "
                  f"{100 * record['surrogate_radius_hit']:8.2f} {time.perf_counter() - start:5.0f}", flush=True)
        nag = next(r for r in records if r["box"] == box and r["row"] == "nag")
        pgd = next(r for r in records if r["box"] == box and r["row"] == "pgd (l1)")
        ratio = lambda a, b: float("nan") if b == 0 else a / b  # noqa: E731
        print(f"{box}: NAG / PGD = {ratio(nag['radius_success'], pgd['radius_success']):.2f}x (radius success), "
              f"{ratio(nag['topk_success'], pgd['topk_success']):.2f}x (top-10 success)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(records, handle, indent=1)


if __name__ == "__main__":
    main()
