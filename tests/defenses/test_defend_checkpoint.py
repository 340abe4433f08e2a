"""``defend_checkpoint`` and ``hashguard defend`` end to end on a tiny ``hashguard train`` checkpoint."""

from __future__ import annotations

import pytest
import torch

from hashguard.cli import main
from hashguard.defenses import defend_checkpoint, list_defenses
from hashguard.defenses.base import RESUME_FORMAT
from hashguard.models import load_checkpoint, read_checkpoint_config

pytestmark = pytest.mark.usefixtures("single_thread")

# a short run: the tiny synthetic model, a small budget and a 2-step inner attack
FAST = {"epochs": 2, "eps": 0.06, "step": 0.02, "steps": 2}


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint  # trained once per session (tests/conftest.py)


def test_defend_checkpoint_writes_a_reloadable_defended_checkpoint(checkpoint, tmp_path):
    out = tmp_path / "saat.pt"
    config = defend_checkpoint(checkpoint, "saat", out, params=FAST, eval_queries=20, eval_steps=3, progress=False)

    model, saved = load_checkpoint(out, map_location="cpu")
    assert saved == config == read_checkpoint_config(out)
    original_model, original = load_checkpoint(checkpoint, map_location="cpu")
    for key in ("dataset", "hash_method", "hash_params", "bits", "backbone", "seed"):
        assert saved[key] == original[key], key
    assert saved["defended_from"] == str(checkpoint)
    defense = saved["defense"]
    assert defense["method"] == "saat" and defense["epochs"] == 2 and defense["eps"] == pytest.approx(0.06)
    assert defense["params"] == {"lam": 1.0, "mu": 1e-4, "weighting": "paper"} and defense["seconds"] > 0
    history = defense["history"]
    assert [rec["epoch"] for rec in history] == [1, 2]
    for rec in history:
        assert torch.isfinite(torch.tensor(rec["loss"]))
        assert 0.0 <= rec["val_map"] <= 1.0 and 0.0 <= rec["val_map_pga"] <= 1.0
    assert not (tmp_path / "saat.pt.resume.pt").exists(), "the resume file outlived the finished run"
    assert (tmp_path / "saat.pt.json").exists()
    changed = [k for k, v in model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, original_model.state_dict()[k])]
    assert changed, "the defended checkpoint holds the original weights"


def test_defend_checkpoint_passes_method_parameters(checkpoint, tmp_path):
    out = tmp_path / "atrdh.pt"
    config = defend_checkpoint(checkpoint, "atrdh", out, params={**FAST, "epochs": 1, "prototype_hidden": 64, "lr": 1e-3},
                               eval_queries=10, eval_steps=2, progress=False)
    assert config["defense"]["method"] == "atrdh" and config["defense"]["lr"] == pytest.approx(1e-3)
    assert config["defense"]["params"]["prototype_hidden"] == 64
    assert load_checkpoint(out)[1]["defense"]["history"][0]["epoch"] == 1


def test_a_stale_resume_file_of_another_run_is_refused(checkpoint, tmp_path):
    out = tmp_path / "stale.pt"
    torch.save({"format": RESUME_FORMAT, "run": {"method": "saat", "epochs": 99}}, tmp_path / "stale.pt.resume.pt")
    with pytest.raises(ValueError, match="delete it"):
        defend_checkpoint(checkpoint, "saat", out, params=FAST, eval_queries=10, eval_steps=2, progress=False)
    assert not out.exists()


# ---------------------------------------------------------------------------- hashguard defend
def test_cli_defend_writes_the_checkpoint_and_prints_the_summary(checkpoint, tmp_path, capsys):
    out = tmp_path / "defended.pt"
    code = main(["defend", "--model", str(checkpoint), "--method", "saat", "--epochs", "2", "--out", str(out),
                 "--eval-queries", "20", "--eval-steps", "3", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "saat: 2 epochs" in printed and "validation mAP" in printed and "under PgA-3" in printed
    assert str(out) in printed
    _, config = load_checkpoint(out)
    assert config["defense"]["method"] == "saat" and config["defense"]["epochs"] == 2
    assert config["defense"]["seed"] == 0 and len(config["defense"]["history"]) == 2
    assert not (tmp_path / "defended.pt.resume.pt").exists()


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_cli_defend_non_positive_epochs_is_a_clear_error(checkpoint, tmp_path, epochs):
    out = tmp_path / "d.pt"
    with pytest.raises(SystemExit) as err:
        main(["defend", "--model", str(checkpoint), "--method", "saat", f"--epochs={epochs}", "--out", str(out), "--quiet"])
    assert str(err.value).startswith("error:") and "epochs must be an integer >= 1" in str(err.value)
    assert not out.exists()


def test_cli_defend_unknown_method_lists_the_choices(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["defend", "--model", str(checkpoint), "--method", "nope", "--out", str(tmp_path / "d.pt")])
    assert err.value.code != 0
    message = capsys.readouterr().err
    assert "nope" in message
    for name in list_defenses():
        assert name in message


def test_cli_defend_unknown_param_lists_the_valid_ones(checkpoint, tmp_path):
    with pytest.raises(SystemExit, match="valid parameters") as err:
        main(["defend", "--model", str(checkpoint), "--method", "saat", "--param", "lamb=2",
              "--out", str(tmp_path / "d.pt"), "--quiet"])
    assert "lamb" in str(err.value) and "lam" in str(err.value)


def test_cli_defend_refuses_to_overwrite_the_input_model(checkpoint, tmp_path):
    before = checkpoint.read_bytes()
    for out in (str(checkpoint), str(checkpoint.parent / ".." / checkpoint.parent.name / checkpoint.name)):
        with pytest.raises(SystemExit, match="--out must differ from --model"):
            main(["defend", "--model", str(checkpoint), "--method", "saat", "--epochs", "1", "--out", out, "--quiet"])
    assert checkpoint.read_bytes() == before
