"""Bad inputs through the ``hashguard`` command (and the Python API), each outcome classified.

Every reproduction of issue 12 (faults 1 to 8) runs as its own process and is classified as

    clear error   exit status 2 (130 for Ctrl-C), one ``error: ...`` line on stderr, no traceback
    warning       exit status 0 with a ``warning: ...`` line: legitimate but suspicious input, said so
    accepted      exit status 0, the input is legitimate and the result checked correct (float64
                  images, ``--json -``, a link or FIFO as --json, the umask's file mode, --wait)
    traceback     a Python traceback reached the user
    silent        exit status 0 and a wrong result, with no word (a local file pulled into a report,
                  ``--json -`` written to a file named ``-``)
    lost work     the command did its work (trained, attacked, evaluated, ran a grid) and then
                  failed to save it, or its output is missing (fault 1)
    damaged       a special file or link given as the output was replaced by a regular file (fault 2)
    wrong mode    a file written with another mode than the umask gives (fault 3)
    ran           a bad value or a second run on a busy folder was accepted and the run started or
                  finished (faults 4 and 6)

A case with its fault's own class (lost work, damaged, wrong mode, ran) is counted there even when
it also ended in a traceback (shown as ``+traceback``). Faults: 1 output paths, 2 special files,
3 file modes, 4 one ``bench`` per folder, 5 tampered records, 6 values checked before work,
7 tracebacks for expected errors, 8 silent wrong results. Nothing is downloaded (a download that
the code under test would start goes to a dead proxy): a tiny single-label list dataset (32x32
PNGs), two tiny checkpoints and tiny grids (the built-in synthetic dataset, 1 epoch, 4 queries)
are made in a temporary folder; about 6 minutes per source tree on 2 CPU cores.

    python benchmarks/bad_input_probe.py                 # the working tree's src/
    python benchmarks/bad_input_probe.py --src OTHER/src # another checkout
    python benchmarks/bad_input_probe.py --src BEFORE/src --src AFTER/src   # before/after table
    python benchmarks/bad_input_probe.py --only 1,2      # only the cases of these faults
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

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


def classify(rc: int, out: str, err: str, expect: str, ok: Optional[bool] = None) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if rc in (2, 130) and len(lines) == 1 and lines[0].startswith("error:"):
        return "clear error"
    if rc == 0:
        if expect == "warning" and "warning:" in err:
            return "warning"
        if expect == "accept" and (ok if ok is not None else "ACCEPTED" in out):
            return "accepted"
        return "silent"
    return f"other (exit {rc}, {len(lines)} stderr lines)"


CLASSES = ("clear error", "warning", "accepted", "traceback", "silent", "lost work", "damaged", "wrong mode", "ran")
FAULTS = {1: "output paths", 2: "special files", 3: "file modes", 4: "one bench per folder", 5: "tampered records",
          6: "values checked", 7: "tracebacks", 8: "silent results"}
TINY_GRID = """datasets = ["synthetic"]
bits = [16]
queries = 4
[train]
epochs = 1
[attacks]
untargeted = ["fgsm"]
targeted = []
"""
DEFENDED_GRID = TINY_GRID + '[defenses]\nmethods = ["saat"]\nepochs = 1\nuntargeted = ["fgsm"]\n'
TRAIN = ["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "1", "--warmup-epochs", "0"]


@dataclass
class Done:
    """One finished ``hashguard`` process."""

    rc: int
    out: str
    err: str
    seconds: float
    stopped: bool = False  # killed by the probe once the work it must not start was seen
    timed_out: bool = False

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.err


@dataclass
class Verdict:
    outcome: str
    done: Optional[Done] = None
    why: str = ""  # the evidence behind a fault's own class (what was lost, replaced, ...)


class Probe:
    """The work folder, the source tree under test and how ``hashguard`` is run in it."""

    def __init__(self, src: str, work: Path):
        self.src, self.work = src, work
        self.env = {**os.environ, "PYTHONPATH": src, "PYTHONWARNINGS": "default"}
        self.cache: Dict[str, object] = {}
        self.synthetic = work / "synthetic.pt"
        self.runs = 0  # numbers the output files of each process

    def folder(self, name: str) -> Path:
        """A fresh folder of the work folder for one case."""
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def start(self, *argv, code=None, cwd=None, umask=None, limit_gb=None, env=None) -> subprocess.Popen:
        """``python -m hashguard ARGV`` (or ``python -c CODE``) in its own session, output to files."""
        cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "hashguard", *map(str, argv)]

        def before_exec():
            if umask is not None:
                os.umask(umask)
            if limit_gb:  # a huge allocation fails at once instead of pushing the machine into swap/OOM
                resource.setrlimit(resource.RLIMIT_AS, (limit_gb << 30, limit_gb << 30))

        self.runs += 1
        logs = self.work / f"run-{self.runs}"
        with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
            proc = subprocess.Popen(cmd, env={**self.env, **(env or {})}, cwd=cwd or self.work,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=before_exec,
                                    start_new_session=True)
        proc.logs = logs  # type: ignore[attr-defined]
        proc.t0 = time.monotonic()  # type: ignore[attr-defined]
        return proc

    def finish(self, proc, timeout: float = 600, stop_when: Optional[Callable[[str], bool]] = None) -> Done:
        """Wait for ``proc``; kill its process group once ``stop_when(stderr so far)`` holds or on timeout."""
        stopped = timed_out = False
        while proc.poll() is None:
            time.sleep(0.3)
            if stop_when is not None and stop_when(Path(f"{proc.logs}.err").read_text(errors="replace")):
                stopped = True
            elif time.monotonic() - proc.t0 > timeout:
                timed_out = True
            if stopped or timed_out:
                os.killpg(proc.pid, signal.SIGKILL)  # the process this probe started, and its children
                proc.wait()
        out = Path(f"{proc.logs}.out").read_text(errors="replace")
        err = Path(f"{proc.logs}.err").read_text(errors="replace").replace("\r", "\n")
        return Done(proc.returncode, out, err, time.monotonic() - proc.t0, stopped, timed_out)

    def run(self, *argv, timeout: float = 600, stop_when=None, **kwargs) -> Done:
        return self.finish(self.start(*argv, **kwargs), timeout, stop_when)

    def grid(self, folder: Path, text: str) -> Path:
        path = folder / "grid.toml"
        path.write_text(text)
        return path

    def bench_base(self) -> Tuple[Path, Done]:
        """One tiny finished ``bench`` run (umask 022), shared by the cases that read a results folder."""
        if "bench" not in self.cache:
            d = self.folder("bench-base")
            out = d / "runs"
            done = self.run("bench", "--grid", self.grid(d, TINY_GRID), "--out", out, "--quiet", umask=0o022)
            assert done.rc == 0, done.err
            self.cache["bench"] = (out, done)
        return self.cache["bench"]  # type: ignore[return-value]


def judge(done: Done, expect: str = "error", *, damaged=False, lost=False, wrong_mode=False, ran=False, silent=False,
          ok: Optional[bool] = None) -> str:
    """A fault's own class first (damaged, lost work, wrong mode, ran, silent), then the generic ones."""
    if done.timed_out:
        return "other (timed out)"
    for flag, name in ((damaged, "damaged"), (lost, "lost work"), (wrong_mode, "wrong mode"), (ran, "ran"),
                       (silent, "silent")):
        if flag:
            return name
    return classify(done.rc, done.out, done.err, expect, ok)


def records(out: Path) -> List[Path]:
    return sorted(out.glob("records/*.json"))


def grid_started(out: Path) -> Callable[[str], bool]:
    """A bench run has started work once it wrote a model or a record."""
    return lambda err: bool(list(out.glob("models/*.pt")) or records(out))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------------- fault 1: finished work lost
def case_train_out_existing_dir(p: Probe) -> Verdict:
    d = p.folder("f1-train")
    (d / "model.pt").mkdir()
    done = p.run(*TRAIN, "--out", d / "model.pt")  # not --quiet: the epoch log shows training happened
    trained = "epoch=" in done.err
    return Verdict(judge(done, lost=done.rc != 0 and trained), done, "trained, then could not save")


def case_attack_json_under_a_file(p: Probe) -> Verdict:
    d = p.folder("f1-attack")
    (d / "file.txt").write_text("x")  # FILE/a.json: unwritable even for root
    done = p.run("attack", "--model", p.synthetic, "--method", "pga", "--queries", "5", "--steps", "2",
                 "--protocol", d / "protocol.json", "--json", d / "file.txt" / "a.json")
    attacked = "attacked mAP" in done.out + done.err
    return Verdict(judge(done, lost=done.rc != 0 and attacked), done, "attacked, then could not save")


def case_evaluate_json_existing_dir(p: Probe) -> Verdict:
    d = p.folder("f1-evaluate")
    done = p.run("evaluate", "--model", p.synthetic, "--json", d)
    evaluated = "mAP@" in done.out + done.err
    return Verdict(judge(done, lost=done.rc != 0 and evaluated), done, "evaluated, then could not save")


def case_defend_out_existing_dir(p: Probe) -> Verdict:
    d = p.folder("f1-defend")
    (d / "d.pt").mkdir()
    done = p.run("defend", "--model", p.synthetic, "--method", "saat", "--epochs", "1", "--eval-queries", "5",
                 "--eval-steps", "1", "--out", d / "d.pt")
    trained = "epoch=" in done.err
    return Verdict(judge(done, lost=done.rc != 0 and trained), done, "defended, then could not save")


def case_bench_report_html_is_a_dir(p: Probe) -> Verdict:
    d = p.folder("f1-bench")
    out = d / "runs"
    (out / "report.html").mkdir(parents=True)  # the report is written after every run
    done = p.run("bench", "--grid", p.grid(d, TINY_GRID), "--out", out, "--quiet")
    ran = bool(records(out))
    return Verdict(judge(done, lost=done.rc != 0 and ran), done, f"{len(records(out))} runs done, then no report")


# ---------------------------------------------------------------------------- fault 2: special files
def case_json_symlink(p: Probe) -> Verdict:
    d = p.folder("f2-link")
    target = d / "results" / "eval.json"
    target.parent.mkdir()
    target.write_text("{}\n")
    link = d / "latest.json"
    link.symlink_to(target)
    done = p.run("evaluate", "--model", p.synthetic, "--json", link, "--quiet")
    try:
        ok = "map" in json.loads(target.read_text())
    except ValueError:
        ok = False
    return Verdict(judge(done, "accept", damaged=not link.is_symlink(), ok=ok), done,
                   "the link was replaced by a regular file")


def case_json_fifo(p: Probe) -> Verdict:
    d = p.folder("f2-fifo")
    fifo = d / "pipe"
    os.mkfifo(fifo)
    with open(d / "read.txt", "wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
        done = p.run("evaluate", "--model", p.synthetic, "--json", fifo, "--quiet", timeout=300)
        try:
            reader.wait(timeout=10)
        except subprocess.TimeoutExpired:  # nothing was ever written into the pipe
            reader.kill()
            reader.wait()
    try:
        ok = "map" in json.loads((d / "read.txt").read_text())
    except ValueError:
        ok = False
    return Verdict(judge(done, "accept", damaged=not stat.S_ISFIFO(os.lstat(fifo).st_mode), ok=ok), done,
                   "the FIFO was replaced by a regular file")


def _json_to_stdout(p: Probe, name: str, argv) -> Verdict:
    d = p.folder(name)
    done = p.run(*argv, "--json", "-", "--quiet", cwd=d)
    try:
        ok = isinstance(json.loads(done.out), dict)
    except ValueError:
        ok = False
    stray = (d / "-").exists()
    return Verdict(judge(done, "accept", silent=stray or (done.rc == 0 and not ok), ok=ok), done,
                   "wrote a file named '-'" if stray else "stdout is not the JSON record")


def case_evaluate_json_dash(p: Probe) -> Verdict:
    return _json_to_stdout(p, "f2-dash-evaluate", ["evaluate", "--model", p.synthetic])


def case_attack_json_dash(p: Probe) -> Verdict:
    return _json_to_stdout(p, "f2-dash-attack", ["attack", "--model", p.synthetic, "--method", "pga", "--queries", "5",
                                                 "--steps", "2"])


# ---------------------------------------------------------------------------- fault 3: file modes
def _modes(done: Done, files: List[Path], want: int, expect_files: int) -> Verdict:
    present = [f for f in files if f.exists()]
    wrong = [f"{f.name} {mode(f):o}" for f in present if mode(f) != want]
    ok = done.rc == 0 and len(present) >= expect_files and not wrong
    return Verdict(judge(done, "accept", wrong_mode=bool(wrong), ok=ok), done,
                   f"want {want:o}: " + (", ".join(wrong) or f"{len(present)} files checked"))


def case_train_umask_022(p: Probe) -> Verdict:
    d = p.folder("f3-train")
    done = p.run(*TRAIN, "--out", d / "m.pt", "--quiet", umask=0o022)
    return _modes(done, [d / "m.pt", d / "m.pt.json"], 0o644, 1)


def case_evaluate_json_umask_022(p: Probe) -> Verdict:
    d = p.folder("f3-evaluate")
    done = p.run("evaluate", "--model", p.synthetic, "--json", d / "e.json", "--quiet", umask=0o022)
    return _modes(done, [d / "e.json"], 0o644, 1)


def case_attack_json_umask_027(p: Probe) -> Verdict:
    d = p.folder("f3-attack")
    done = p.run("attack", "--model", p.synthetic, "--method", "pga", "--queries", "5", "--steps", "2",
                 "--json", d / "a.json", "--quiet", umask=0o027)
    return _modes(done, [d / "a.json", *d.glob("protocol-*.json")], 0o640, 2)


def case_bench_umask_022(p: Probe) -> Verdict:
    out, done = p.bench_base()  # the shared tiny bench, run with umask 022
    files = [*records(out), *out.glob("models/*.pt"), out / "spec.json", out / "report.html", out / "report.md"]
    return _modes(done, files, 0o644, 5)


# ---------------------------------------------------------------------------- fault 4: one bench per folder
def _second_bench(p: Probe, name: str, *extra) -> Tuple[Done, Done, str]:
    """A second ``bench`` into the folder a first one is running in; returns both and how they overlapped:
    "second ran inside the first" / "second ended after the first" / "first ended before the second started"."""
    d = p.folder(name)
    out = d / "runs"
    grid = p.grid(d, TINY_GRID)
    first = p.start("bench", "--grid", grid, "--out", out, "--quiet")
    while first.poll() is None and not (out / "spec.json").exists():
        time.sleep(0.2)
    time.sleep(1)
    if first.poll() is not None:
        return p.finish(first), Done(-1, "", "", 0.0), "first ended before the second started"
    second = p.run("bench", "--grid", grid, "--out", out, "--quiet", *extra)
    inside = first.poll() is None
    return p.finish(first), second, "second ran inside the first" if inside else "second ended after the first"


def case_two_benches_one_folder(p: Probe) -> Verdict:
    first, second, overlap = _second_bench(p, "f4-two")
    if overlap.startswith("first ended"):
        return Verdict(f"other ({overlap})", first)
    both = second.rc == 0 and "runs recorded" in second.out
    return Verdict(judge(second, ran=both), second, f"both ran into one folder ({overlap}; first exit {first.rc})")


def case_second_bench_waits(p: Probe) -> Verdict:
    first, second, overlap = _second_bench(p, "f4-wait", "--wait")
    if overlap.startswith("first ended"):
        return Verdict(f"other ({overlap})", first)
    ok = first.rc == 0 and second.rc == 0 and overlap == "second ended after the first"
    return Verdict(judge(second, "accept", ran=second.rc == 0 and not ok, ok=ok), second,
                   f"did not wait ({overlap}; first exit {first.rc})")


# ---------------------------------------------------------------------------- fault 5: tampered records
def _tampered_report(p: Probe, name: str, value: str, secret: bytes) -> Verdict:
    import base64
    import re

    base, _ = p.bench_base()
    out = p.folder(name) / "runs"
    shutil.copytree(base, out)
    n = 0
    for path in records(out):
        rec = json.loads(path.read_text())
        if isinstance(rec.get("metrics"), dict):
            rec["metrics"]["example_figure"] = value
            path.write_text(json.dumps(rec))
            n += 1
    done = p.run("report", out)
    page = (out / "report.html").read_text(errors="replace") if (out / "report.html").exists() else ""
    embedded = [base64.b64decode(m) for m in re.findall(r"base64,([A-Za-z0-9+/=]+)", page)]
    leaked = secret in embedded or any(f.read_bytes() == secret for f in out.glob("report_files/*"))
    return Verdict(judge(done, "warning", silent=leaked), done, f"the file's bytes are in report.html ({n} records)")


def case_tampered_record_etc_hostname(p: Probe) -> Verdict:
    if not Path("/etc/hostname").is_file():
        return Verdict("other (no /etc/hostname here)")
    return _tampered_report(p, "f5-hostname", "../../../../etc/hostname", Path("/etc/hostname").read_bytes())


def case_tampered_record_absolute_path(p: Probe) -> Verdict:
    secret = p.work / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nSECRET-OF-THE-MACHINE")
    return _tampered_report(p, "f5-absolute", str(secret), secret.read_bytes())


# ---------------------------------------------------------------------------- fault 6: values checked before work
DEAD_PROXY = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
              "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


def _bad_grid(p: Probe, name: str, text: str, env=None) -> Verdict:
    d = p.folder(name)
    out = d / "runs"
    started = grid_started(out)
    downloading = lambda err: any(w in err for w in ("Downloading", "download.pytorch.org", "urlopen error"))  # noqa: E731
    done = p.run("bench", "--grid", p.grid(d, text), "--out", out, "--quiet", env=env, timeout=300,
                 stop_when=lambda err: started(err) or downloading(err))
    ran = done.stopped or bool(records(out)) or downloading(done.err)
    return Verdict(judge(done, ran=ran), done, "stopped by the probe once it " + (
        "started a download" if downloading(done.err) else "trained a model") if done.stopped else "ran")


def case_grid_saat_lam_text(p: Probe) -> Verdict:
    return _bad_grid(p, "f6-lam", DEFENDED_GRID + 'params = { saat = { lam = "abc" } }\n')


def case_grid_optimizer_nadam(p: Probe) -> Verdict:
    return _bad_grid(p, "f6-nadam", TINY_GRID.replace('["fgsm"]', '["hag"]') + 'params = { hag = { optimizer = "nadam" } }\n')


def case_grid_epochs_text(p: Probe) -> Verdict:
    return _bad_grid(p, "f6-epochs", TINY_GRID.replace("epochs = 1", 'epochs = "1"'))


def case_grid_lr_text(p: Probe) -> Verdict:
    return _bad_grid(p, "f6-lr", TINY_GRID.replace("epochs = 1", 'epochs = 1\nlr = "fast"'))


def case_grid_pretrained_text(p: Probe) -> Verdict:
    # alexnet has ImageNet weights: "no" read as true starts their download (sent to a dead proxy here)
    env = {**DEAD_PROXY, "TORCH_HOME": str(p.folder("f6-torch-home"))}
    return _bad_grid(p, "f6-pretrained", 'pretrained = "no"\nbackbones = ["alexnet"]\n' + TINY_GRID, env=env)


def _bad_attack(p: Probe, name: str, *extra) -> Verdict:
    d = p.folder(name)
    done = p.run("attack", "--model", p.synthetic, "--method", "pga", "--queries", "5", "--steps", "2", *extra,
                 "--json", d / "a.json", "--quiet")
    ran = "attacked mAP" in done.out or (d / "a.json").exists()
    return Verdict(judge(done, ran=ran), done, "the attack ran")


def case_attack_eps_300(p: Probe) -> Verdict:
    return _bad_attack(p, "f6-eps-flag", "--eps", "300/255")


def case_attack_param_eps_5(p: Probe) -> Verdict:
    return _bad_attack(p, "f6-eps-param", "--param", "eps=5")


def case_train_bits_huge(p: Probe) -> Verdict:
    d = p.folder("f6-bits")
    done = p.run("train", "--dataset", "synthetic", "--bits", "100000000", "--epochs", "1", "--warmup-epochs", "0",
                 "--out", d / "m.pt", limit_gb=12)  # 10^8 bits: a 100 GB hash layer
    ran = "epoch=" in done.err or (d / "m.pt").exists()
    return Verdict(judge(done, ran=ran), done, "training ran")


def case_train_device_tpu(p: Probe) -> Verdict:
    d = p.folder("f6-tpu")
    done = p.run(*TRAIN, "--out", d / "m.pt", "--device", "tpu")
    ran = "epoch=" in done.err or (d / "m.pt").exists()
    return Verdict(judge(done, ran=ran), done, "training ran")


# (fault, case) for faults 1 to 6; faults 7 and 8 (and the evaluate --device cases) follow from legacy_cases
CASES: List[Tuple[int, Callable[[Probe], Verdict]]] = [
    (1, case_train_out_existing_dir),
    (1, case_attack_json_under_a_file),
    (1, case_evaluate_json_existing_dir),
    (1, case_defend_out_existing_dir),
    (1, case_bench_report_html_is_a_dir),
    (2, case_json_symlink),
    (2, case_json_fifo),
    (2, case_evaluate_json_dash),
    (2, case_attack_json_dash),
    (3, case_train_umask_022),
    (3, case_evaluate_json_umask_022),
    (3, case_attack_json_umask_027),
    (3, case_bench_umask_022),
    (4, case_two_benches_one_folder),
    (4, case_second_bench_waits),
    (5, case_tampered_record_etc_hostname),
    (5, case_tampered_record_absolute_path),
    (6, case_grid_saat_lam_text),
    (6, case_grid_optimizer_nadam),
    (6, case_grid_epochs_text),
    (6, case_grid_lr_text),
    (6, case_grid_pretrained_text),
    (6, case_attack_eps_300),
    (6, case_attack_param_eps_5),
    (6, case_train_bits_huge),
    (6, case_train_device_tpu),
]


# ---------------------------------------------------------------------------- faults 7 and 8 (and 6: evaluate --device)
def argv_case(expect: str, what) -> Callable[[Probe], Verdict]:
    """A case given as a command line (a list) or a Python snippet (a str), classified as expected."""

    def case(p: Probe) -> Verdict:
        done = p.run(code=what) if isinstance(what, str) else p.run(*what)
        outcome = judge(done, expect)
        if "weights_only=False" in done.err:
            outcome += " (repeats torch's weights_only=False advice)"
        return Verdict(outcome, done)

    return case


def attack_other_data_case(p: Probe) -> Verdict:
    """``attack --data-dir OTHER``: the same lists with other images must not reuse the first queries."""
    work = p.work
    other = work / "other-data"  # the same lists, other images
    if not other.exists():
        write_lists(other, seed=1)
    runs = work / "runs"
    done = p.run("attack", "--model", work / "lists.pt", "--data-dir", work / "data", "--method", "fgsm",
                 "--queries", "5", "--json", runs / "first.json", "--quiet")
    assert done.rc == 0, done.err
    return argv_case("error", ["attack", "--model", work / "lists.pt", "--data-dir", other, "--method", "fgsm",
                               "--queries", "5", "--json", runs / "second.json", "--quiet"])(p)


def legacy_cases(p: Probe) -> List[Tuple[int, str, Callable[[Probe], Verdict]]]:
    """The reproductions of faults 7 (tracebacks) and 8 (silent results): (fault, name, case)."""
    work, data = p.work, p.work / "data"

    def variant(name: str) -> Path:
        out = work / name
        if not out.exists():
            shutil.copytree(data, out)
        return out

    broken = {"corrupt image": lambda f: f.write_bytes(os.urandom(3000)),
              "truncated image": lambda f: f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2]),
              "empty image": lambda f: f.write_bytes(b"")}
    cases = []  # (fault, name, case)
    for name, damage in broken.items():
        folder = variant(name.replace(" ", "-"))
        damage(folder / "img" / "train_7.png")
        cases.append((7, f"{name} (train)", argv_case("error", [
            "train", "--dataset", "lists", "--data-dir", folder, "--bits", "16", "--epochs", "1", "--warmup-epochs",
            "0", "--out", work / "x.pt", "--quiet"])))

    resume = work / "defended.pt.resume.pt"
    resume.write_bytes(b"PK\x03\x04" + os.urandom(200))  # what a write cut short leaves
    cases.append((7, "truncated .resume.pt (defend)", argv_case("warning", [
        "defend", "--model", p.synthetic, "--method", "saat", "--epochs", "1", "--eval-queries", "5", "--eval-steps",
        "1", "--out", work / "defended.pt", "--quiet"])))

    import torch  # only to write the damaged checkpoints

    payload = torch.load(p.synthetic, weights_only=True)
    for name, change in (("config missing 'bits'", lambda c: c.pop("bits")),
                         ("config bits of wrong type", lambda c: c.__setitem__("bits", "sixteen")),
                         ("config backbone_kwargs of wrong type", lambda c: c.__setitem__("backbone_kwargs", [8]))):
        config = json.loads(payload["config_json"])
        change(config)
        path = work / (name.replace(" ", "-").replace("'", "") + ".pt")
        torch.save({**payload, "config_json": json.dumps(config)}, path)
        cases.append((7, f"checkpoint {name}", argv_case("error", ["evaluate", "--model", path, "--quiet"])))

    (work / "random.pt").write_bytes(os.urandom(4096))
    cases.append((7, "random-bytes checkpoint", argv_case("error", ["evaluate", "--model", work / "random.pt",
                                                                    "--quiet"])))
    subprocess.run([sys.executable, "-c", EVIL.format(path=str(work / "evil.pt"))], check=True)
    cases.append((7, "malicious pickle checkpoint", argv_case("error", ["evaluate", "--model", work / "evil.pt",
                                                                        "--quiet"])))
    (work / "net.py").write_text(NET_PY)
    cases.append((7, "malicious pickle --weights", argv_case("error", [
        "evaluate", "--model-def", f"{work / 'net.py'}:Net", "--weights", work / "evil.pt", "--input-norm", "none",
        "--dataset", "lists", "--data-dir", data, "--quiet"])))
    for device in ("tpu", "mps"):  # the device check is the --device validation's (fault 6)
        cases.append((6, f"evaluate --device {device}", argv_case("error", [
            "evaluate", "--model", p.synthetic, "--device", device, "--quiet"])))

    dup = variant("duplicates")
    lines = (dup / "database.txt").read_text().splitlines()
    (dup / "database.txt").write_text("\n".join(lines + lines[:5]) + "\n")
    cases.append((8, "duplicate database lines, single-label", argv_case("error", [
        "evaluate", "--model", work / "lists.pt", "--data-dir", dup, "--quiet"])))
    zero = variant("all-zero")
    lines = (zero / "database.txt").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " 0 0 0 0 0"
    (zero / "database.txt").write_text("\n".join(lines) + "\n")
    cases.append((8, "all-zero rows, single-label", argv_case("error", [
        "evaluate", "--model", work / "lists.pt", "--data-dir", zero, "--quiet"])))
    cases.append((8, "attack --data-dir OTHER (same lists, other images)", attack_other_data_case))

    evaluate = ["evaluate", "--model", p.synthetic, "--quiet"]
    cases.append((7, "disk full (ENOSPC on --json)", argv_case("error", cli_patched(
        "import errno\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device', a[0])\n"
        "cli.atomic_write_json = full", evaluate + ["--json", work / "e.json"]))))
    cases.append((7, "disk full (DiskFullError)", argv_case("error", cli_patched(
        "from hashguard.errors import DiskFullError\n"
        "def full(*a, **k): raise DiskFullError(f'no space left on the device writing {a[0]}; free some space')\n"
        "cli.atomic_write_json = full", evaluate + ["--json", work / "e.json"]))))
    cases.append((7, "Ctrl-C", argv_case("error", cli_patched(
        "def stop(args): raise KeyboardInterrupt\n"
        "import argparse\n"
        "old = cli.build_parser\n"
        "def build():\n"
        "    p = old()\n"
        "    p.set_defaults(func=stop)\n"
        "    for a in p._subparsers._group_actions[0].choices.values(): a.set_defaults(func=stop)\n"
        "    return p\n"
        "cli.build_parser = build", evaluate))))
    for name, body in API_CASES.items():
        expect = "accept" if name.startswith("float64") else "warning" if "query rows" in name else "error"
        cases.append((7 if name.startswith("float64") else 8, f"API: {name}", argv_case(expect, API_PRELUDE + body)))
    return cases


def setup(p: Probe) -> None:
    """The list dataset and the two tiny checkpoints every case starts from."""
    write_lists(p.work / "data", seed=0)
    for out, extra in ((p.synthetic, ["--dataset", "synthetic"]),
                       (p.work / "lists.pt", ["--dataset", "lists", "--data-dir", p.work / "data"])):
        done = p.run("train", *extra, "--bits", "16", "--epochs", "1", "--warmup-epochs", "0", "--out", out, "--quiet")
        assert done.rc == 0, done.err


def probe(src: str, faults: List[int], keep: Optional[str], verbose: bool) -> List[Dict]:
    """Every case of ``faults`` against the hashguard of ``src``: [{fault, case, outcome, detail}]."""
    work = Path(keep or tempfile.mkdtemp(prefix="hashguard-probe-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    p = Probe(src, work)
    print(f"\n=== {src} (work folder {work})")
    setup(p)
    table = [(fault, case.__name__[len("case_"):].replace("_", " "), case) for fault, case in CASES]
    table += legacy_cases(p) if {6, 7, 8} & set(faults) else []
    rows = []
    for fault, name, case in sorted(table, key=lambda row: row[0]):
        if fault not in faults:
            continue
        t0 = time.monotonic()
        verdict = case(p)
        done = verdict.done
        detail = ""
        if done is not None:
            shown = [line for line in done.err.splitlines() if line.strip()]
            detail = shown[-1] if shown else (done.out.strip().splitlines() or [""])[-1]
            if verdict.outcome in ("lost work", "damaged", "wrong mode", "ran", "silent") and verdict.why:
                detail = f"{verdict.why}; exit {done.rc}" + ("" if done.stopped else f": {detail}")
            if done.traceback and verdict.outcome != "traceback":
                detail = "+traceback; " + detail
        elif verdict.why:
            detail = verdict.why
        rows.append({"fault": fault, "case": name, "outcome": verdict.outcome, "detail": detail})
        print(f"{fault} {name:52s} {verdict.outcome:12s} {time.monotonic() - t0:5.0f} s")
        print(f"{'':55s}{detail[:300]}")
        if verbose and done is not None:
            print(textwrap.indent(done.err[-3000:], " " * 8))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def counts_table(runs: Dict[str, List[Dict]]) -> str:
    """Counts per fault and class, one column per class, ``before -> after`` in each cell."""
    names = list(runs)
    def base(outcome: str) -> str:  # "other (exit 1, ...)" and "... (repeats torch's advice)" by their class
        return outcome.split(" (")[0]

    seen = {base(r["outcome"]) for rows in runs.values() for r in rows}
    classes = [c for c in CLASSES if c in seen] + sorted(seen - set(CLASSES))
    faults = sorted({r["fault"] for rows in runs.values() for r in rows})

    def count(rows, fault, cls):
        return sum(1 for r in rows if (fault is None or r["fault"] == fault) and base(r["outcome"]) == cls)

    width = max(12, *(len(c) for c in classes))
    head = f"{'fault':26s}" + "".join(f"{c:>{width + 2}s}" for c in classes)
    lines = [" -> ".join(names), head, "-" * len(head)]
    for fault in faults + [None]:
        label = "all" if fault is None else f"{fault} {FAULTS.get(fault, '')}"
        cells = ["->".join(str(count(runs[n], fault, c)) for n in names) for c in classes]
        lines.append(f"{label:26s}" + "".join(f"{cell:>{width + 2}s}" for cell in cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", default=None,
                        help="the hashguard source folder to probe; twice (before, after) for a before/after table")
    parser.add_argument("--only", default=None, help="comma-separated fault numbers to probe (default: 1 to 8)")
    parser.add_argument("--keep", default=None, help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--save", default=None, help="write every case's outcome to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="print each case's stderr")
    args = parser.parse_args()
    srcs = args.src or [str(HERE / "src")]
    faults = [int(f) for f in args.only.split(",")] if args.only else list(FAULTS)
    runs = {}
    for i, src in enumerate(srcs):
        keep = f"{args.keep}/{i}" if args.keep and len(srcs) > 1 else args.keep
        runs[src] = probe(str(Path(src).resolve()), faults, keep, args.verbose)
    if len(srcs) > 1:
        print("\nper case: " + " -> ".join(srcs))
        for rows in zip(*runs.values(), strict=True):
            print(f"{rows[0]['fault']} {rows[0]['case']:52s} " + " -> ".join(r["outcome"] for r in rows))
    print("\ncounts per fault and class:\n" + counts_table(runs))
    if args.save:
        Path(args.save).write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
