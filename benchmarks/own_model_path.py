"""The README's "Your own model" path, timed end to end on a network and data hashguard did not make.

A user's own setting, built here the way a user would: 7 classes of 48x48 drawn shapes on noise
(single-label, ProS-GAN list format, 301 train / 70 query / 399 database images), a network of
her own class (``ShapeHash``: 3 convolutions, 24 bits, a dict output ``{"feat", "code"}`` ending in
tanh) trained by her own loop with the normalisation (mean 0.5, std 0.5) outside the model, saved
as a ``state_dict``. Then each step of the README, as a separate process, with its wall time:

    python          the five README lines (standard attack set), and with attacks="fast"
    bench           hashguard bench --model-def ... (the quick preset on her network)
    evaluate        hashguard evaluate --model-def ...
    attack          PgA untargeted, mainstay targeted (paper T = 100)
    defend          SAAT, 1 epoch; the result loaded back into ShapeHash

    python benchmarks/own_model_path.py --out runs/own-model-path      # about 8 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

NET_PY = '''
import torch
from torch import nn


class ShapeHash(nn.Module):
    def __init__(self, bits=24):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 96, 3, padding=1), nn.BatchNorm2d(96), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
            nn.Flatten(), nn.Linear(96 * 9, 256), nn.ReLU())
        self.hash_layer = nn.Linear(256, bits)

    def forward(self, x):
        f = self.body(x)
        return {"feat": f, "code": torch.tanh(self.hash_layer(f))}
'''
CLASSES = 7
SPLITS = (("train", 301), ("test", 70), ("database", 399))


def draw(c: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (48, 48), tuple(int(v) for v in rng.integers(0, 90, 3)))
    d = ImageDraw.Draw(image)
    cx, cy = (int(v) for v in rng.integers(16, 32, 2))
    r = int(rng.integers(9, 15))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    box = [cx - r, cy - r, cx + r, cy + r]
    if c == 0:
        d.ellipse(box, fill=colour)
    elif c == 1:
        d.rectangle(box, fill=colour)
    elif c == 2:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif c == 3:
        d.line([(cx - r, cy), (cx + r, cy)], fill=colour, width=4)
        d.line([(cx, cy - r), (cx, cy + r)], fill=colour, width=4)
    elif c == 4:
        d.line([(cx - r, cy - r), (cx + r, cy + r)], fill=colour, width=4)
        d.line([(cx - r, cy + r), (cx + r, cy - r)], fill=colour, width=4)
    elif c == 5:
        d.ellipse(box, outline=colour, width=3)
    else:
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    pixels = np.asarray(image).astype(np.float32) + rng.normal(0, 18, (48, 48, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_data(root: Path) -> None:
    rng = np.random.default_rng(123)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, n in SPLITS:
        paths, labels = [], []
        for i in range(n):
            path = f"img/{split}_{i:04d}.png"
            draw(i % CLASSES, rng).save(root / path)
            paths.append(path)
            labels.append(" ".join("1" if k == i % CLASSES else "0" for k in range(CLASSES)))
        (root / f"{split}_img.txt").write_text("\n".join(paths) + "\n")
        (root / f"{split}_label.txt").write_text("\n".join(labels) + "\n")


def read(root: Path, split: str):
    paths = (root / f"{split}_img.txt").read_text().split()
    x = np.stack([np.asarray(Image.open(root / p).convert("RGB")) for p in paths])
    y = np.loadtxt(root / f"{split}_label.txt")
    return torch.tensor(x).permute(0, 3, 1, 2).float() / 255, torch.tensor(y).float()


def train_user_network(out: Path, epochs: int) -> None:
    """Her own loop: classification + DPSH-style pairwise + quantisation, normalisation outside."""
    spec = importlib.util.spec_from_file_location("shapenet", out / "shapenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    x, y = read(out / "shapes", "train")
    net, head = module.ShapeHash(), torch.nn.Linear(24, CLASSES)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), 1e-3)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            u = net((x[idx] - 0.5) / 0.5)["code"]
            s = (y[idx] @ y[idx].T > 0).float()
            theta = 0.5 * (u @ u.T) * (8 / 24)
            loss = (F.cross_entropy(head(u), y[idx].argmax(1)) + (F.softplus(theta) - s * theta).mean()
                    + 0.1 * (u.abs() - 1).pow(2).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(net.eval().state_dict(), out / "shapenet.pth")


def timed(label: str, argv, cwd: Path, results: dict) -> str:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stdout}\n{done.stderr}")
    results[label] = round(seconds, 1)
    print(f"  {label:34s} {seconds:7.1f} s")
    return done.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/own-model-path")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of the user's own training loop")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "shapenet.py").write_text(NET_PY)
    results: dict = {}
    start = time.perf_counter()
    write_data(out / "shapes")
    train_user_network(out, args.epochs)
    print(f"user's data and network ready ({time.perf_counter() - start:.0f} s: drawing, her training loop)")
    bin_dir = Path(sys.executable).parent
    python_lines = (
        "import hashguard, torch\n"
        "from shapenet import ShapeHash\n"
        "net = ShapeHash(); net.load_state_dict(torch.load('shapenet.pth', weights_only=True))\n"
        "model = hashguard.wrap_model(net, input_norm=((0.5,) * 3, (0.5,) * 3), output='tanh', select='code')\n"
        "print(hashguard.evaluate_robustness(model, hashguard.data.from_lists('shapes'), out='runs/{out}'{extra}, progress=False))\n"
    )
    printed = {}
    for label, extra in (("python: 5 lines, standard set", ""), ("python: 5 lines, attacks='fast'", ", attacks='fast'")):
        name = "standard" if not extra else "fast"
        code = python_lines.format(out=name, extra=extra)
        printed[name] = timed(label, [sys.executable, "-c", code], out, results)
    model = ["--model-def", "shapenet.py:ShapeHash", "--weights", "shapenet.pth", "--input-norm",
             "0.5,0.5,0.5/0.5,0.5,0.5", "--output", "tanh", "--select", "code", "--dataset", "lists", "--data-dir", "shapes"]
    hg = str(bin_dir / "hashguard")
    timed("hashguard bench (quick preset)", [hg, "bench", *model, "--out", "runs/bench", "--quiet"], out, results)
    printed["evaluate"] = timed("hashguard evaluate", [hg, "evaluate", *model, "--quiet"], out, results)
    timed("hashguard attack pga", [hg, "attack", *model, "--method", "pga", "--json", "runs/pga.json", "--quiet"], out, results)
    timed("hashguard attack mainstay --targeted", [hg, "attack", *model, "--method", "mainstay", "--targeted",
                                                   "--json", "runs/mainstay.json", "--quiet"], out, results)
    timed("hashguard defend saat (1 epoch)", [hg, "defend", *model, "--method", "saat", "--epochs", "1",
                                              "--out", "runs/saat.pth", "--quiet"], out, results)
    spec = importlib.util.spec_from_file_location("shapenet_check", out / "shapenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ShapeHash().load_state_dict(torch.load(out / "runs" / "saat.pth", weights_only=True))
    print("defended weights load into ShapeHash: yes")
    print(printed["evaluate"].strip())
    for name in ("standard", "fast"):
        print(f"--- evaluate_robustness, {name} set\n{printed[name].strip()}")
    pga, mainstay = (json.loads((out / "runs" / f).read_text()) for f in ("pga.json", "mainstay.json"))
    print(f"attack: PgA mAP {pga['clean_map']:.4f} -> {pga['map']:.4f}; mainstay t-MAP "
          f"{mainstay['clean_t_map']:.4f} -> {mainstay['t_map']:.4f}")
    (out / "timings.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
