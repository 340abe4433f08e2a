"""Bad inputs through the ``hashguard`` command (and the Python API), each outcome classified.

Every reproduction of issue 12 (faults 7 and 8) runs as its own process and is classified as

    clear error   exit status 2 (130 for Ctrl-C), one ``error: ...`` line on stderr, no traceback
    warning       exit status 0 with a ``warning: ...`` line: legitimate but suspicious input, said so
    accepted      exit status 0, the input is legitimate and the result checked correct (float64 images)
    traceback     a Python traceback reached the user
    silent        exit status 0 and a wrong result, with no word

and the counts are printed. Nothing is downloaded: a tiny single-label list dataset (32x32 PNGs) and
two tiny checkpoints are made in a temporary folder (about a minute on 2 CPU cores).

    python benchmarks/bad_input_probe.py                 # the working tree's src/
    python benchmarks/bad_input_probe.py --src OTHER/src # another checkout, e.g. to compare with main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent.parent


def write_lists(root: Path, seed: int, sizes=(("train", 40), ("test", 10), ("database", 50)), classes=5) -> None:
    """A single-label dataset: one bright square per class at the class's own place, on noise."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        lines = []
        for i in range(n):
            k = i % classes
            img = rng.integers(40, 160, size=(32, 32, 3)).astype(np.uint8)
            img[4 * k : 4 * k + 10, 4 * k : 4 * k + 10] = 250
            path = f"img/{split}_{i}.png"
            Image.fromarray(img).save(root / path)
            lines.append(path + " " + " ".join("1" if c == k else "0" for c in range(classes)))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


NET_PY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(16))

    def forward(self, x):
        return self.body(x)
"""

EVIL = """
import os
import pickle


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


with open({path!r}, "wb") as handle:
    pickle.dump({{"state_dict": Evil()}}, handle)
"""

# Python snippets for the cases that go through the library (the API) or patch one call of the CLI;
# an expected error is printed as one "error:" line with exit status 2, like the command line does
API_PRELUDE = """
import sys, warnings
import torch
warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\\n"
def expected(err):
    from hashguard.errors import HashguardError
    return isinstance(err, (HashguardError, ValueError))
def run(body):
    try:
        body()
    except Exception as err:
        if not expected(err):
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
def tiny():
    from hashguard.attacks import Knowledge, create_attack
    from hashguard.data import create_dataset
    from hashguard.models import create_hash_model
    torch.manual_seed(0)
    splits = create_dataset("synthetic", seed=0)
    model = create_hash_model("cnn", 16, backbone_kwargs={"width": 8}).eval()
    x = splits.query.batch(slice(0, 4))
    y = torch.as_tensor(splits.query.labels[:4]).float()
    return splits, model, x, y, Knowledge.from_model(model, splits.train)
"""

API_CASES = {
    "attack labels +-1": """
splits, model, x, y, k = tiny()
from hashguard.attacks import create_attack
run(lambda: create_attack("pga", model, steps=2)(x, 2 * y - 1, knowledge=k))
""",
    "attack labels x5": """
splits, model, x, y, k = tiny()
from hashguard.attacks import create_attack
run(lambda: create_attack("pga", model, steps=2)(x, 5 * y, knowledge=k))
""",
    "attack all-zero target rows": """
splits, model, x, y, k = tiny()
from hashguard.attacks import create_attack
run(lambda: create_attack("pga", model, targeted=True, steps=2)(x, y, target_labels=torch.zeros_like(y), knowledge=k))
""",
    "attack all-zero query rows": """
splits, model, x, y, k = tiny()
from hashguard.attacks import create_attack
run(lambda: create_attack("pga", model, steps=2)(x, torch.zeros_like(y), knowledge=k))
""",
    "float64 images, attack": """
splits, model, x, y, k = tiny()
from hashguard.attacks import create_attack
def body():
    x64 = x.double()
    r = create_attack("pga", model, steps=2)(x64, y, knowledge=k)
    assert float((r.x_adv.double() - x64).abs().max()) <= 8 / 255 + 1e-6 and bool((r.codes_adv.abs() == 1).all())
    print("ACCEPTED", r.x_adv.dtype)
run(body)
""",
    "float64 images, encode + mAP": """
splits, model, x, y, k = tiny()
def body():
    from hashguard.retrieval import mean_average_precision
    codes = model.encode(x.double())
    assert torch.equal(codes, model.encode(x))
    db = model.encode(splits.database.batch(slice(None)).double())
    mean_average_precision(codes, db, y, splits.database.labels)
    print("ACCEPTED")
run(body)
""",
    "perceptibility(x * 255, x)": """
splits, model, x, y, k = tiny()
from hashguard.retrieval import perceptibility
run(lambda: print(perceptibility(x * 255, x)))
""",
}


def cli_patched(patch: str, argv) -> str:
    return f"import sys, hashguard.cli as cli\n{patch}\nsys.exit(cli.main({list(map(str, argv))!r}))\n"


def classify(rc: int, out: str, err: str, expect: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if rc in (2, 130) and len(lines) == 1 and lines[0].startswith("error:"):
        return "clear error"
    if rc == 0:
        if expect == "warning" and "warning:" in err:
            return "warning"
        if expect == "accept" and "ACCEPTED" in out:
            return "accepted"
        return "silent"
    return f"other (exit {rc}, {len(lines)} stderr lines)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(HERE / "src"), help="the hashguard source folder to probe")
    parser.add_argument("--keep", default=None, help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--verbose", action="store_true", help="print each case's stderr")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": args.src, "PYTHONWARNINGS": "default"}
    work = Path(args.keep or tempfile.mkdtemp(prefix="hashguard-probe-"))
    work.mkdir(parents=True, exist_ok=True)

    def hashguard(*argv, code=None):
        cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "hashguard", *map(str, argv)]
        done = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    # ------------------------------------------------------------------ the data and two checkpoints
    data = work / "data"
    write_lists(data, seed=0)
    rc, _, err = hashguard("train", "--dataset", "synthetic", "--bits", "16", "--epochs", "1", "--warmup-epochs", "0",
                           "--out", work / "synthetic.pt", "--quiet")
    assert rc == 0, err
    rc, _, err = hashguard("train", "--dataset", "lists", "--data-dir", data, "--bits", "16", "--epochs", "1",
                           "--warmup-epochs", "0", "--out", work / "lists.pt", "--quiet")
    assert rc == 0, err

    def variant(name: str) -> Path:
        out = work / name
        if not out.exists():
            shutil.copytree(data, out)
        return out

    broken = {"corrupt image": lambda p: p.write_bytes(os.urandom(3000)),
              "truncated image": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
              "empty image": lambda p: p.write_bytes(b"")}
    cases = []  # (name, expect, argv or code)
    for name, damage in broken.items():
        folder = variant(name.replace(" ", "-"))
        damage(folder / "img" / "train_7.png")
        cases.append((f"{name} (train)", "error", ["train", "--dataset", "lists", "--data-dir", folder, "--bits", "16",
                                                   "--epochs", "1", "--warmup-epochs", "0", "--out", work / "x.pt",
                                                   "--quiet"]))

    resume = work / "defended.pt.resume.pt"
    resume.write_bytes(b"PK\x03\x04" + os.urandom(200))  # what a write cut short leaves
    cases.append(("truncated .resume.pt (defend)", "warning", ["defend", "--model", work / "synthetic.pt", "--method",
                                                               "saat", "--epochs", "1", "--eval-queries", "5",
                                                               "--eval-steps", "1", "--out", work / "defended.pt",
                                                               "--quiet"]))

    import torch  # only to write the damaged checkpoints

    payload = torch.load(work / "synthetic.pt", weights_only=True)
    for name, change in (("config missing 'bits'", lambda c: c.pop("bits")),
                         ("config bits of wrong type", lambda c: c.__setitem__("bits", "sixteen")),
                         ("config backbone_kwargs of wrong type", lambda c: c.__setitem__("backbone_kwargs", [8]))):
        config = json.loads(payload["config_json"])
        change(config)
        path = work / (name.replace(" ", "-").replace("'", "") + ".pt")
        torch.save({**payload, "config_json": json.dumps(config)}, path)
        cases.append((f"checkpoint {name}", "error", ["evaluate", "--model", path, "--quiet"]))

    (work / "random.pt").write_bytes(os.urandom(4096))
    cases.append(("random-bytes checkpoint", "error", ["evaluate", "--model", work / "random.pt", "--quiet"]))
    subprocess.run([sys.executable, "-c", EVIL.format(path=str(work / "evil.pt"))], check=True)
    cases.append(("malicious pickle checkpoint", "error", ["evaluate", "--model", work / "evil.pt", "--quiet"]))
    (work / "net.py").write_text(NET_PY)
    cases.append(("malicious pickle --weights", "error", ["evaluate", "--model-def", f"{work / 'net.py'}:Net",
                                                          "--weights", work / "evil.pt", "--input-norm", "none",
                                                          "--dataset", "lists", "--data-dir", data, "--quiet"]))
    for device in ("tpu", "mps"):  # the device check itself is the --device validation's (issue 12, "values")
        cases.append((f"--device {device} [device check]", "error", ["evaluate", "--model", work / "synthetic.pt", "--device", device,
                                                      "--quiet"]))

    dup = variant("duplicates")
    lines = (dup / "database.txt").read_text().splitlines()
    (dup / "database.txt").write_text("\n".join(lines + lines[:5]) + "\n")
    cases.append(("duplicate database lines, single-label", "error",
                  ["evaluate", "--model", work / "lists.pt", "--data-dir", dup, "--quiet"]))
    zero = variant("all-zero")
    lines = (zero / "database.txt").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " 0 0 0 0 0"
    (zero / "database.txt").write_text("\n".join(lines) + "\n")
    cases.append(("all-zero rows, single-label", "error",
                  ["evaluate", "--model", work / "lists.pt", "--data-dir", zero, "--quiet"]))

    other = work / "other-data"  # the same lists, other images
    if not other.exists():
        write_lists(other, seed=1)
    runs = work / "runs"
    rc, _, err = hashguard("attack", "--model", work / "lists.pt", "--data-dir", data, "--method", "fgsm",
                           "--queries", "5", "--json", runs / "first.json", "--quiet")
    assert rc == 0, err
    cases.append(("attack --data-dir OTHER (same lists, other images)", "error",
                  ["attack", "--model", work / "lists.pt", "--data-dir", other, "--method", "fgsm", "--queries", "5",
                   "--json", runs / "second.json", "--quiet"]))

    evaluate = ["evaluate", "--model", work / "synthetic.pt", "--quiet"]
    cases.append(("disk full (ENOSPC on --json)", "error", cli_patched(
        "import errno\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device', a[0])\n"
        "cli.atomic_write_json = full", evaluate + ["--json", work / "e.json"])))
    cases.append(("disk full (DiskFullError)", "error", cli_patched(
        "from hashguard.errors import DiskFullError\n"
        "def full(*a, **k): raise DiskFullError(f'no space left on the device writing {a[0]}; free some space')\n"
        "cli.atomic_write_json = full", evaluate + ["--json", work / "e.json"])))
    cases.append(("Ctrl-C", "error", cli_patched(
        "def stop(args): raise KeyboardInterrupt\n"
        "import argparse\n"
        "old = cli.build_parser\n"
        "def build():\n"
        "    p = old()\n"
        "    p.set_defaults(func=stop)\n"
        "    for a in p._subparsers._group_actions[0].choices.values(): a.set_defaults(func=stop)\n"
        "    return p\n"
        "cli.build_parser = build", evaluate)))
    for name, body in API_CASES.items():
        expect = "accept" if name.startswith("float64") else "warning" if "query rows" in name else "error"
        cases.append((f"API: {name}", expect, API_PRELUDE + body))

    counts: dict = {}
    others: dict = {}  # cases whose fix is the device validation, counted apart
    for name, expect, what in cases:
        rc, out, err = hashguard(code=what) if isinstance(what, str) else hashguard(*what)
        outcome = classify(rc, out, err, expect)
        if "weights_only=False" in err:
            outcome += " (repeats torch's weights_only=False advice)"
        tally = others if "[device check]" in name else counts
        tally[outcome] = tally.get(outcome, 0) + 1
        shown = [line for line in err.splitlines() if line.strip()]
        print(f"{name:55s} {outcome}")
        detail = shown[-1] if shown else (out.strip().splitlines() or [""])[-1]
        print(f"{'':57s}{detail[:300]}")
        if args.verbose:
            print(textwrap.indent(err, " " * 8))
    for title, tally in (("bad inputs", counts), ("--device (the device validation's cases)", others)):
        print(f"\n{title}:")
        for outcome in ("clear error", "warning", "accepted", "traceback", "silent"):
            print(f"  {outcome:12s} {tally.pop(outcome, 0)}")
        for outcome, n in tally.items():
            print(f"  {outcome:12s} {n}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
