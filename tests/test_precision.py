"""Mixed precision (hashguard.precision): autocast around the model, everything else in fp32.

Tolerances, measured on the tiny DPSH victim (cnn width 8, 16 bits, synthetic data, 2 CPU cores):
the same weights evaluated in bf16 give 99.97 % of the fp32 code bits of the database and its mAP
to 1e-5 (fp16: 99.97 %, 6e-4); PgA-20 under bf16 / fp16 leaves the attacked mAP within 0.004 of
fp32's. The tests assert 99 % of the bits, 0.01 of mAP and 0.02 of attacked mAP. Training the
model itself in bf16 (6 epochs) follows another trajectory: mAP 0.926 vs 0.963 (fp16: 0.943), so
that test allows 0.1.
"""

from __future__ import annotations

import json

import pytest
import torch

from hashguard.errors import InputError
from hashguard.precision import check_precision, current_precision, mixed_precision


def _database(splits):
    return splits.database.batch(slice(None)), torch.as_tensor(splits.database.labels).float()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_codes_and_map_match_fp32(tiny_victim, single_thread, precision):
    from hashguard.hashing.evaluation import retrieval_map

    splits, model = tiny_victim
    images, _ = _database(splits)
    codes = model.encode(images)
    clean = retrieval_map(model, splits.query, splits.database, topk=None, progress=False)
    with mixed_precision(precision):
        half_codes = model.encode(images)
        half_map = retrieval_map(model, splits.query, splits.database, topk=None, progress=False)
        assert model(images[:4]).dtype == torch.float32  # autocast inside, fp32 out
    assert float((half_codes == codes).float().mean()) >= 0.99
    assert half_map == pytest.approx(clean, abs=0.01)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_an_attack_in_half_precision_keeps_the_budget_and_the_effect(tiny_attack_setting, single_thread, precision):
    from hashguard.attacks import create_attack
    from hashguard.retrieval import mean_average_precision

    s = tiny_attack_setting
    x, y = s["x"], s["y"]
    before = x.clone()
    results = {}
    for name in ("fp32", precision):
        with mixed_precision(name):
            result = create_attack("pga", s["model"], steps=20, seed=0)(x, y, knowledge=s["knowledge"])
        assert result.x_adv.dtype == torch.float32
        assert float((result.x_adv - x).abs().max()) <= 8 / 255 + 1e-6
        assert float(result.x_adv.min()) >= 0 and float(result.x_adv.max()) <= 1
        results[name] = mean_average_precision(s["model"].encode(result.x_adv), s["db_codes"], y, s["db_labels"])
    assert torch.equal(x, before)
    assert results[precision] == pytest.approx(results["fp32"], abs=0.02)


def test_fp16_training_scales_the_loss_and_records_the_precision(tmp_path, single_thread):
    from hashguard.cli import main
    from hashguard.models import load_checkpoint

    out = tmp_path / "half.pt"
    assert main(["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "1", "--warmup-epochs", "1",
                 "--precision", "fp16", "--out", str(out), "--quiet"]) == 0
    model, config = load_checkpoint(out)
    assert config["training"]["precision"] == "fp16"
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert json.loads((tmp_path / "half.pt.json").read_text())["training"]["precision"] == "fp16"


def test_precision_is_scoped_and_checked():
    assert current_precision() == "fp32"
    with mixed_precision("bf16"):
        assert current_precision() == "bf16"
        with mixed_precision("fp32"):
            assert current_precision() == "fp32"
        assert current_precision() == "bf16"
    assert current_precision() == "fp32"
    with pytest.raises(InputError, match="fp32, bf16, fp16"):
        check_precision("fp8")
    assert check_precision("BF16", "cpu") == "bf16"


def test_the_cli_refuses_an_unknown_precision(capsys):
    from hashguard.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--precision", "fp8", "--out", "x.pt"])
    assert stop.value.code == 2
    assert "fp32" in capsys.readouterr().err


def test_a_resume_file_of_another_precision_is_refused(tiny_victim, tmp_path, single_thread):
    from hashguard.defenses import create_defense

    splits, model = tiny_victim
    resume = tmp_path / "saat.resume.pt"
    create_defense("saat", model, "dpsh", epochs=1, steps=1).fit(splits.train, resume_path=resume, progress=False)
    assert torch.load(resume, weights_only=True)["precision"] == "fp32"
    with mixed_precision("bf16"), pytest.raises(ValueError, match="precision fp32.*--precision fp32"):
        create_defense("saat", model, "dpsh", epochs=1, steps=1).fit(splits.train, resume_path=resume, progress=False)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_model_trained_in_half_precision_retrieves_about_as_well(tiny_victim, single_thread, precision):
    from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
    from hashguard.hashing.evaluation import retrieval_map
    from hashguard.models import create_hash_model

    splits, reference = tiny_victim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_hash_model("cnn", 16, backbone_kwargs={"width": 8})
    objective = create_hashing("dpsh", bits=16, train_labels=splits.train.labels)
    with mixed_precision(precision):
        train_hash_model(model, objective, splits.train, TrainConfig(epochs=6, warmup_epochs=2, seed=0), progress=False)
    clean = retrieval_map(reference, splits.query, splits.database, topk=None, progress=False)
    assert retrieval_map(model.eval(), splits.query, splits.database, topk=None, progress=False) == pytest.approx(clean, abs=0.1)


def test_bench_attack_records_note_a_half_precision_only(tiny_victim, single_thread):
    from hashguard.bench.protocol import run_attack

    splits, model = tiny_victim
    plain = run_attack(model, splits, "pga", n_queries=4, seed=0, topk=None, params={"steps": 2})
    with mixed_precision("bf16"):
        half = run_attack(model, splits, "pga", n_queries=4, seed=0, topk=None, params={"steps": 2})
    assert "precision" not in plain  # fp32 records are unchanged
    assert half["precision"] == "bf16"
