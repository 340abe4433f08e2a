"""The command line's one error boundary (issue 12, fault 7): an expected error is one
``error: <what>; <fix>`` line on stderr and exit status 2, Ctrl-C exits 130 with one line, and only
bugs keep a traceback. Each reproduction of the issue is run here through ``main``."""

from __future__ import annotations

import errno
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from hashguard import cli
from hashguard.cli import main
from hashguard.data import ImageReadError
from hashguard.errors import DiskFullError, HashguardError, InputError, one_line
from hashguard.models import CheckpointError, load_checkpoint
from hashguard.models.external import read_state_dict
from user_data import write_noise_lists

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-errors") / "model.pt"
    assert main(["train", "--dataset", "synthetic", "--bits", "8", "--epochs", "1", "--warmup-epochs", "0",
                 "--out", str(out), "--quiet"]) == 0
    return out


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------ the boundary itself
def _raising(monkeypatch, err):
    def command(args):
        raise err

    monkeypatch.setattr(cli, "cmd_datasets", command)


@pytest.mark.parametrize("err, needles", [
    (InputError("bad thing; do this"), ["error: bad thing; do this"]),
    (DiskFullError("no space left writing r.json; free some space"), ["no space left"]),
    (OSError(errno.ENOSPC, "No space left on device", "r.json"), ["the disk is full", "free some space"]),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), ["Permission denied", "permissions"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "out"), ["Is a directory", "choose another"]),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.pt"), ["x.pt", "check the path"]),
    (ImageReadError("cannot read image a.png (line 3 of train.txt): download it again"), ["a.png", "line 3"]),
    (CheckpointError("checkpoint 'm.pt': config key 'bits' must be a positive integer"), ["'bits'"]),
    (ValueError("first line\nsecond line"), ["first line; second line"]),
])
def test_expected_errors_are_one_line_and_exit_2(monkeypatch, capsys, err, needles):
    _raising(monkeypatch, err)
    assert main(["datasets"]) == 2
    one_error_line(capsys, *needles)


def test_an_error_from_a_dataloader_worker_loses_the_worker_traceback(monkeypatch, capsys):
    """torch re-raises a worker's error with the worker's traceback inside the message."""
    message = ("Caught ImageReadError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\n    load()\n'
               "hashguard.data.image_list.ImageReadError: cannot read image a.png (line 3 of train.txt): "
               "image file is truncated; download it again\n")
    _raising(monkeypatch, ImageReadError(message))
    assert main(["datasets"]) == 2
    line = one_error_line(capsys, "cannot read image a.png (line 3 of train.txt)")
    assert "Original" not in line and "worker" not in line and "ImageReadError" not in line
    assert one_line(RuntimeError(message)).startswith("cannot read image a.png")


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    _raising(monkeypatch, KeyboardInterrupt())
    assert main(["datasets"]) == 130
    assert one_error_line(capsys) == "error: interrupted; finished runs are kept, re-run to resume"


def test_bugs_keep_their_traceback(monkeypatch):
    _raising(monkeypatch, RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["datasets"])


def test_usage_errors_of_the_commands_exit_2_with_one_line(monkeypatch, capsys):
    _raising(monkeypatch, SystemExit("error: give exactly one of --preset or --grid"))
    with pytest.raises(SystemExit) as stop:
        main(["datasets"])
    assert stop.value.code == 2 and "--preset" in str(stop.value)
    one_error_line(capsys, "give exactly one of --preset or --grid")


def test_an_unusable_device_reported_by_the_device_check_is_one_line(monkeypatch, checkpoint, capsys):
    """--device tpu / mps: the device check (helper "values") raises; the boundary prints it."""
    def device(name):
        raise InputError(f"--device {name} is not available here; use --device cpu or cuda")

    monkeypatch.setattr(cli, "_device", device)
    assert main(["evaluate", "--model", str(checkpoint), "--device", "tpu", "--quiet"]) == 2
    one_error_line(capsys, "--device tpu", "use --device cpu")


def test_the_library_errors_the_boundary_relies_on_are_hashguard_errors():
    from hashguard.data import ImageNotFoundError, ImageSizeError, ListFileError

    for kind, builtin in ((CheckpointError, ValueError), (ListFileError, ValueError), (ImageSizeError, ValueError),
                          (ImageReadError, OSError), (ImageNotFoundError, FileNotFoundError)):
        assert issubclass(kind, HashguardError) and issubclass(kind, builtin), kind


# ------------------------------------------------------------------------------ images on disk
def _lists(root):
    write_noise_lists(root, (("train", 12), ("test", 4), ("database", 12)), size=16)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_a_damaged_image_is_one_line_naming_the_file_and_its_line(tmp_path, capsys, damage):
    _lists(tmp_path / "d")
    image = tmp_path / "d" / "img" / "train_5.png"
    data = image.read_bytes()
    image.write_bytes({"random bytes": os.urandom(len(data)), "truncated": data[: len(data) // 2], "empty": b""}[damage])
    code = main(["train", "--dataset", "lists", "--data-dir", str(tmp_path / "d"), "--bits", "8", "--epochs", "1",
                 "--warmup-epochs", "0", "--out", str(tmp_path / "m.pt"), "--quiet", "--workers", "2"])
    assert code == 2
    one_error_line(capsys, str(image), "line 6 of", "download it again")
    assert not (tmp_path / "m.pt").exists()


# ------------------------------------------------------------------------------ checkpoints
def _edit_config(src, dst, change):
    payload = torch.load(src, weights_only=True)
    config = json.loads(payload["config_json"])
    change(config)
    torch.save({**payload, "config_json": json.dumps(config)}, dst)
    return dst


@pytest.mark.parametrize("change, needles", [
    (lambda c: c.pop("bits"), ["lacks the key 'bits'", "positive integer"]),
    (lambda c: c.pop("backbone"), ["lacks the key 'backbone'", "string"]),
    (lambda c: c.__setitem__("bits", "sixteen"), ["'bits' must be a positive integer", "'sixteen' (str)"]),
    (lambda c: c.__setitem__("bits", True), ["'bits' must be a positive integer", "(bool)"]),
    (lambda c: c.__setitem__("backbone_kwargs", [8]), ["'backbone_kwargs' must be a JSON object", "(list)"]),
    (lambda c: c.__setitem__("seed", "0"), ["'seed' must be an integer"]),
])
def test_a_checkpoint_config_with_a_missing_key_or_wrong_type_names_the_key(checkpoint, tmp_path, capsys, change,
                                                                            needles):
    path = _edit_config(checkpoint, tmp_path / "edited.pt", change)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    for needle in needles:
        assert needle in str(err.value)
    assert main(["evaluate", "--model", str(path), "--quiet"]) == 2
    one_error_line(capsys, *needles)


def test_a_checkpoint_without_its_dataset_is_a_clear_error_on_the_command_line(checkpoint, tmp_path, capsys):
    path = _edit_config(checkpoint, tmp_path / "edited.pt", lambda c: c.pop("dataset"))
    assert main(["evaluate", "--model", str(path), "--quiet"]) == 2
    one_error_line(capsys, "lacks the key 'dataset'")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('HASHGUARD_EVIL_MARK', '/nonexistent/x')}",))


@pytest.mark.parametrize("kind", ["random bytes", "raw pickle", "torch.save of a module", "truncated checkpoint"])
def test_unsafe_or_damaged_files_never_repeat_the_weights_only_false_advice(checkpoint, tmp_path, monkeypatch,
                                                                           capsys, kind):
    mark = tmp_path / "pwned"
    monkeypatch.setenv("HASHGUARD_EVIL_MARK", str(mark))
    path = tmp_path / "bad.pt"
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "raw pickle":
        path.write_bytes(pickle.dumps({"state_dict": _Evil()}))
    elif kind == "torch.save of a module":
        torch.save(torch.nn.Linear(2, 2), path)
    else:
        path.write_bytes(checkpoint.read_bytes()[:2000])
    expected = {"random bytes": "is not a torch file", "raw pickle": "raw pickle",
                "torch.save of a module": "pickled torch.nn.modules.linear.Linear",
                "truncated checkpoint": "truncated or damaged"}[kind]
    for load in (load_checkpoint, read_state_dict):
        with pytest.raises(ValueError) as err:
            load(path)
        assert "weights_only=False" not in str(err.value) and expected in str(err.value), str(err.value)
    assert main(["evaluate", "--model", str(path), "--quiet"]) == 2
    line = one_error_line(capsys, expected)
    assert "weights_only=False" not in line
    assert not mark.exists(), "the pickle ran"


# ------------------------------------------------------------------------------ the resume file
def test_a_truncated_resume_file_is_ignored_with_a_warning(checkpoint, tmp_path, capsys):
    """A .resume.pt is only a cache: a write cut short (or other bytes) restarts from epoch 1."""
    out = tmp_path / "defended.pt"
    resume = tmp_path / "defended.pt.resume.pt"
    resume.write_bytes(checkpoint.read_bytes()[:1500])
    with pytest.warns(UserWarning, match=r"resume.pt is a truncated or damaged torch file .*: ignoring it and "
                                         r"starting saat from epoch 1"):
        code = main(["defend", "--model", str(checkpoint), "--method", "saat", "--epochs", "1", "--eval-queries", "4",
                     "--eval-steps", "1", "--param", "steps=1", "--out", str(out), "--quiet"])
    assert code == 0 and out.exists() and not resume.exists()
    assert "Traceback" not in capsys.readouterr().err
