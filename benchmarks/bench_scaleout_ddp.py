"""Scale-out figures of data-parallel training and mixed precision (issue 15, parts b-d).

(b) ``ddp_epoch_figures()``: one training epoch of ``hashguard train`` run as one process with two
    threads, as one process with one thread, and under ``torchrun --nproc_per_node 2`` (two gloo ranks of one thread each), side by
    side in one run on the same machine: seconds per epoch, images per second, the epoch's loss.
(c) and (d) ``gpu_figures()``: on a CUDA GPU, PgA (AlexNet-224, 32 bits, T = 100) seconds per query
    at fp32 and bf16, and images per second of one SAAT epoch at fp32 and bf16. Without CUDA it
    prints ``skipped: no CUDA device`` and returns None (no number is made up).

    python benchmarks/bench_scaleout_ddp.py                 # (b), then (c)-(d) when a GPU is present
    python benchmarks/bench_scaleout_ddp.py --part ddp --dataset mnist-mosaic --epochs 1

Each function returns its figures as a dict (``benchmarks/bench_scaleout.py`` may call them) and
prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _train(command_prefix, env_threads: int, out: Path, dataset: str, backbone: str, bits: int,
           epochs: int) -> Dict[str, Any]:
    """Run ``hashguard train`` (``command_prefix`` + ``-m hashguard train ...``) and read its
    checkpoint's per-epoch history."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": str(env_threads)}
    command = [*command_prefix, "-m", "hashguard", "train", "--dataset", dataset, "--backbone", backbone,
               "--bits", str(bits), "--epochs", str(epochs), "--warmup-epochs", "0", "--workers", "0",
               "--device", "cpu", "--seed", "0", "--quiet", "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    config = json.loads(Path(str(out) + ".json").read_text())
    history = config["training"]["history"]
    return {"epoch_seconds": [e["seconds"] for e in history], "loss": [e["loss"] for e in history],
            "clean_map": config["clean_map"], "wall_seconds": wall, "world_size": config["training"]["world_size"]}


def ddp_epoch_figures(dataset: str = "mnist-mosaic", backbone: str = "cnn", bits: int = 32,
                      epochs: int = 1) -> Dict[str, Any]:
    """(b) One DDP training epoch with 2 gloo ranks (one thread each) vs 1 process (two threads)."""
    from hashguard.data import create_dataset

    n_train = len(create_dataset(dataset, seed=0).train)
    with tempfile.TemporaryDirectory() as folder:
        one = _train([sys.executable], 2, Path(folder) / "one.pt", dataset, backbone, bits, epochs)
        single = _train([sys.executable], 1, Path(folder) / "single.pt", dataset, backbone, bits, epochs)
        two = _train([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], 1,
                     Path(folder) / "two.pt", dataset, backbone, bits, epochs)
    figures = {"dataset": dataset, "backbone": backbone, "bits": bits, "train_images": n_train,
               "cpu_cores": os.cpu_count(), "load_average": os.getloadavg(), "one_process_two_threads": one,
               "one_process_one_thread": single, "two_gloo_ranks_one_thread_each": two}
    print(f"(b) one training epoch of {backbone} {bits} bits on {dataset} ({n_train} images), "
          f"{os.cpu_count()} CPU cores")
    print(f"{'run':34s} {'s/epoch':>8s} {'images/s':>9s} {'loss':>8s} {'mAP':>7s} {'wall s':>7s}")
    for name, row in (("1 process, 2 threads", one), ("1 process, 1 thread", single),
                      ("torchrun 2 gloo ranks, 1 thread each", two)):
        seconds = row["epoch_seconds"][0]
        print(f"{name:34s} {seconds:8.2f} {n_train / seconds:9.1f} {row['loss'][0]:8.4f} {row['clean_map']:7.4f} "
              f"{row['wall_seconds']:7.1f}")
    print(f"speed-up of the epoch over 1 process with 2 threads: {one['epoch_seconds'][0] / two['epoch_seconds'][0]:.2f}x, "
          f"with 1 thread: {single['epoch_seconds'][0] / two['epoch_seconds'][0]:.2f}x; load average "
          f"{os.getloadavg()[0]:.1f} (wall time includes start-up and the clean mAP, on rank 0 alone)")
    return figures


def gpu_figures(queries: int = 100, steps: int = 100, saat_images: int = 1024, bits: int = 32) -> Optional[Dict[str, Any]]:
    """(c) PgA on AlexNet-224, ``bits`` bits, T = ``steps``: seconds per query at fp32 and bf16 (all
    ``queries`` attacked as one batch); (d) images per second of one SAAT epoch on ``saat_images``
    random 224x224 images (batch 32, 7 inner PGD steps), at fp32 and bf16. None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        print("(c)-(d) skipped: no CUDA device")
        return None
    from hashguard.attacks import Knowledge, create_attack
    from hashguard.data.base import TensorImageDataset
    from hashguard.defenses import create_defense
    from hashguard.models import create_hash_model
    from hashguard.precision import mixed_precision

    torch.backends.cudnn.benchmark = True
    device = "cuda"
    generator = torch.Generator().manual_seed(0)
    model = create_hash_model("alexnet", bits).to(device).eval()  # random weights: timing does not depend on them
    classes = 10
    x = torch.rand(queries, 3, 224, 224, generator=generator)
    labels = torch.nn.functional.one_hot(torch.randint(0, classes, (queries,), generator=generator), classes).float()
    reference_labels = torch.nn.functional.one_hot(torch.randint(0, classes, (5000,), generator=generator), classes).float()
    knowledge = Knowledge(torch.randn(5000, bits, generator=generator).sign(), reference_labels)
    figures: Dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "pga": {}, "saat": {}}
    for precision in ("fp32", "bf16"):
        with mixed_precision(precision, device):
            attack = create_attack("pga", model, steps=steps, seed=0)
            attack(x[:8], labels[:8], knowledge=knowledge)  # warm-up (cuDNN autotuning)
            result = attack(x, labels, knowledge=knowledge)
        figures["pga"][precision] = result.seconds / queries
    images = (torch.rand(saat_images, 3, 224, 224, generator=generator) * 255).to(torch.uint8)
    train_labels = torch.nn.functional.one_hot(torch.randint(0, classes, (saat_images,), generator=generator), classes).float()
    train = TensorImageDataset(images, train_labels)
    for precision in ("fp32", "bf16"):
        with mixed_precision(precision, device):
            defense = create_defense("saat", model, "dpsh", epochs=1)
            defense.fit(train, progress=False)  # the epoch's own time: not the set-up encoding passes
        figures["saat"][precision] = saat_images / defense.history.epochs[0]["seconds"]
    print(f"(c) PgA, AlexNet-224, {bits} bits, T = {steps}, {queries} queries in one batch on {figures['gpu']}")
    for precision, seconds in figures["pga"].items():
        print(f"  {precision}: {seconds:.4f} s/query")
    print(f"(d) one SAAT epoch ({saat_images} images 224x224, batch 32, 7 PGD steps)")
    for precision, rate in figures["saat"].items():
        print(f"  {precision}: {rate:.1f} images/s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "ddp", "gpu"], default="all")
    parser.add_argument("--dataset", default="mnist-mosaic")
    parser.add_argument("--backbone", default="cnn")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures: Dict[str, Any] = {}
    if args.part in ("all", "ddp"):
        figures["ddp"] = ddp_epoch_figures(args.dataset, args.backbone, args.bits, args.epochs)
    if args.part in ("all", "gpu"):
        figures["gpu"] = gpu_figures()
    if args.json:
        from hashguard._atomic import atomic_write_json

        atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
