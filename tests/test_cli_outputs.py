"""Every command checks its output paths before any work (issue 12): a result is never computed
and then lost to a path that cannot be written. ``--json -`` is standard output, a link given as
the output stays a link, and files are created with the umask's mode."""

from __future__ import annotations

import json
import os
import stat

import pytest

import hashguard
from hashguard.cli import main
from hashguard.errors import OutputPathError
from unprivileged import run_unprivileged


def _boom(*args, **kwargs):
    raise AssertionError("work started although the output path is unusable")


@pytest.fixture
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def test_checkpoints_honour_the_umask(tiny_checkpoint, tmp_path):
    from hashguard.models import load_checkpoint, save_checkpoint

    model, config = load_checkpoint(tiny_checkpoint)
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "model.pt", model, config)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


@pytest.mark.parametrize("where", ["existing directory", "under a file"])
def test_train_refuses_an_unusable_out_before_training(tmp_path, monkeypatch, capsys, where):
    import importlib

    tc = importlib.import_module("hashguard.hashing.train_checkpoint")  # the module, not the function
    monkeypatch.setattr(tc, "train_hash_model", _boom)
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "model.pt").mkdir()
    out = tmp_path / ("model.pt" if where == "existing directory" else "file.txt/model.pt")
    assert main(["train", "--dataset", "synthetic", "--bits", "16", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out) in err
    with pytest.raises(OutputPathError, match="is a directory"):  # the Python API checks too
        from hashguard.data import create_dataset

        tc.train_checkpoint(create_dataset("synthetic", seed=0), tmp_path / "model.pt", bits=16, progress=False)


def test_evaluate_refuses_a_directory_as_json_before_evaluating(checkpoint, tmp_path, monkeypatch, capsys):
    import hashguard.hashing.evaluation as evaluation

    monkeypatch.setattr(evaluation, "retrieval_map", _boom)
    assert main(["evaluate", "--model", str(checkpoint), "--json", str(tmp_path), "--quiet"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_attack_refuses_an_unusable_json_before_attacking(checkpoint, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path / "file.txt" / "a.json"
    assert main(["attack", "--model", str(checkpoint), "--method", "pga", "--queries", "5", "--steps", "2",
                 "--json", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing attacked, nothing printed
    assert captured.err.startswith("error: ") and "file.txt" in captured.err


def test_attack_refuses_a_read_only_folder_before_attacking(checkpoint, unprivileged_dir):
    # as an ordinary user even when the suite runs as root (CI): root writes into read-only folders
    import shutil

    shutil.copy(checkpoint, unprivileged_dir / "model.pt")
    (unprivileged_dir / "model.pt").chmod(0o644)
    run_unprivileged("""
        import contextlib, io
        from pathlib import Path
        from hashguard.cli import main

        locked = Path("locked")
        locked.mkdir()
        locked.chmod(0o555)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["attack", "--model", "model.pt", "--method", "pga", "--queries", "5", "--steps", "2",
                         "--protocol", "protocol.json", "--json", str(locked / "a.json"), "--quiet"])
        assert code == 2, (code, err.getvalue())
        assert out.getvalue() == "" and "not writable" in err.getvalue(), (out.getvalue(), err.getvalue())
        assert not Path("protocol.json").exists()  # refused before drawing anything
    """, cwd=unprivileged_dir)


def test_defend_refuses_an_unusable_out_before_training(checkpoint, tmp_path, monkeypatch, capsys):
    import hashguard.defenses.run as run

    monkeypatch.setattr(run, "defend_model", _boom)
    (tmp_path / "d.pt").mkdir()
    args = ["defend", "--model", str(checkpoint), "--method", "saat", "--epochs", "1", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "d.pt")]) == 2
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "e.pt.json").mkdir()  # the sidecar description of the defended model
    assert main(args + ["--out", str(tmp_path / "e.pt")]) == 2
    assert "e.pt.json is a directory" in capsys.readouterr().err
    with pytest.raises(OutputPathError):
        run.defend_checkpoint(checkpoint, "saat", tmp_path / "d.pt")


def test_evaluate_json_through_a_link_and_to_standard_output(checkpoint, tmp_path, monkeypatch, capsys):
    target = tmp_path / "results" / "eval.json"
    target.parent.mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert main(["evaluate", "--model", str(checkpoint), "--json", str(link), "--quiet"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    record = json.loads(target.read_text())
    capsys.readouterr()

    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", str(checkpoint), "--json", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == record  # stdout holds the JSON alone
    assert "mAP@" in captured.err  # the summary moved to stderr
    assert not (tmp_path / "-").exists()


def test_attack_json_to_standard_output(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["attack", "--model", str(checkpoint), "--method", "pga", "--queries", "5", "--steps", "2",
                 "--json", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["method"] == "pga" and "attacked mAP" in captured.err
    assert not (tmp_path / "-").exists()
    assert (tmp_path / "protocol-synthetic-seed0-q5.json").is_file()  # the protocol file: current folder


def test_bench_and_evaluate_robustness_refuse_an_unusable_out_before_any_run(tiny_victim, tmp_path, monkeypatch):
    from hashguard.bench import load_spec_file, run_bench

    splits, model = tiny_victim
    out = tmp_path / "runs"
    (out / "report.html").mkdir(parents=True)  # the report would fail after every attack
    with pytest.raises(OutputPathError, match="report.html is a directory"):
        hashguard.evaluate_robustness(model, splits, attacks={"untargeted": ["fgsm"]}, queries=5, out=out,
                                      progress=False)
    assert not (out / "records").exists()
    grid = tmp_path / "grid.toml"
    grid.write_text('datasets = ["synthetic"]\nbits = [16]\nqueries = 5\n[attacks]\nuntargeted = ["fgsm"]\n'
                    'targeted = []\n')
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputPathError, match="file.txt is a file, not a folder"):
        run_bench(load_spec_file(grid), tmp_path / "file.txt" / "runs", progress=False)
    assert main(["bench", "--grid", str(grid), "--out", str(tmp_path / "file.txt" / "runs"), "--quiet"]) == 2


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_json_to_the_redirected_standard_output_is_valid_json(checkpoint, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out.txt"
    with open(out, "w") as stdout:  # `hashguard evaluate --json /dev/fd/1 > out.txt`
        done = subprocess.run([sys.executable, "-m", "hashguard", "evaluate", "--model", str(checkpoint),
                               "--json", "/dev/fd/1", "--quiet"], stdout=stdout, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["dataset"] == "synthetic"  # not overlapped by the summary line
    assert "mAP@" in done.stderr
