"""Database injection (NAG's threat model, hashguard.injection): the victim's database is never
modified, poisoned ids are tracked, poisoned images stay in the eps-ball and [0, 1], white-box
injection reaches the target category's benign queries, and bad input is refused clearly."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from hashguard.errors import InputError
from hashguard.injection import check_threat, evaluate_injection, noise_images

pytestmark = pytest.mark.usefixtures("single_thread")

EPS = 32 / 255  # NAG's implicit budget (32 sign steps of 1/255): enough for the tiny model's 16x16 images
FAST = {"steps": 8, "step": 4 / 255, "eps": EPS}


def test_injection_leaves_the_database_untouched_and_tracks_poisoned_ids(tiny_victim):
    splits, model = tiny_victim
    db_images = splits.database.batch(slice(None)).clone()
    db_labels = torch.as_tensor(splits.database.labels).clone()
    train_images = splits.train.batch(slice(None)).clone()
    db_codes = model.encode(db_images)
    record, details = evaluate_injection(model, splits, "nag", per_target=3, params=FAST, return_details=True)

    assert torch.equal(splits.database.batch(slice(None)), db_images)
    assert torch.equal(torch.as_tensor(splits.database.labels), db_labels)
    assert torch.equal(splits.train.batch(slice(None)), train_images)  # the attacker's images are copied
    assert len(splits.database) == db_images.shape[0]
    assert torch.equal(details["database_codes"], db_codes)  # the database the queries saw = the victim's own

    n_db = db_images.shape[0]
    n_poison = 3 * len(record["targets"])
    assert record["threat"] == "injection" and record["database_size"] == n_db
    assert record["poisoned_ids"] == list(range(n_db, n_db + n_poison))
    per_target = [i for p in record["per_target_metrics"] for i in p["poisoned_ids"]]
    assert sorted(per_target) == record["poisoned_ids"]  # each poisoned id belongs to exactly one target
    for p in record["per_target_metrics"]:
        rows = [i - n_db for i in p["poisoned_ids"]]
        assert (details["target_of"][rows] == p["target"]).all()
        # the source images do not carry the target category
        assert not torch.as_tensor(splits.train.labels)[p["source_indices"], p["target"]].any()
    assert torch.equal(details["poison_codes"], model.encode(details["x_poison"]))


def test_poisoned_images_stay_inside_eps_and_the_unit_box(tiny_victim):
    splits, model = tiny_victim
    record, details = evaluate_injection(model, splits, "ifgsm", per_target=2, params=FAST, return_details=True)
    x, x_adv = details["x_source"], details["x_poison"]
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    sources = [i for p in record["per_target_metrics"] for i in p["source_indices"]]
    assert torch.equal(x, splits.train.batch(torch.tensor(sources)))  # the originals, untouched
    assert record["eps"] == pytest.approx(EPS)


def test_white_box_injection_reaches_the_target_category_far_above_clean_images(tiny_victim):
    splits, model = tiny_victim
    record = evaluate_injection(model, splits, "nag", per_target=5, radius=2, params={"eps": EPS, "steps": 32, "step": 2 / 255})
    assert record["surrogate_radius_hit"] >= 0.8  # white-box: the victim is the surrogate
    assert record["radius_success"] >= record["clean_radius_success"] + 0.25, record
    assert record["t_map"] > record["clean_t_map"]


def test_injection_is_deterministic_and_runs_on_out_of_distribution_images(tiny_victim):
    splits, model = tiny_victim
    runs = [evaluate_injection(model, splits, "nag", targets=[1, 2], per_target=2, source="noise", params=FAST)
            for _ in range(2)]
    for r in runs:
        r.pop("seconds")
    assert runs[0] == runs[1]
    assert runs[0]["source"] == "noise" and runs[0]["targets"] == [1, 2]
    images = noise_images(5, (3, 16, 16), seed=0)
    assert images.shape == (5, 3, 16, 16) and float(images.min()) >= 0 and float(images.max()) <= 1


def test_vulnerable_pair_mining_picks_images_nearer_the_target_code(tiny_victim):
    splits, model = tiny_victim
    plain, d_plain = evaluate_injection(model, splits, "nag", targets=[0], per_target=4, params=FAST, return_details=True)
    mined, d_mined = evaluate_injection(model, splits, "nag", targets=[0], per_target=4, mine=5, params=FAST,
                                        return_details=True)
    goal = d_mined["result"].target_codes.cpu()
    # NAG's target is one anchor per image: compare each clean image with its own target code
    dist_mined = (model.encode(d_mined["x_source"]) != goal).sum(1).float().mean()
    dist_plain = (model.encode(d_plain["x_source"]) != d_plain["result"].target_codes.cpu()).sum(1).float().mean()
    assert dist_mined <= dist_plain
    assert mined["mine"] == 5 and len(mined["poisoned_ids"]) == 4


def test_noise_proxy_keeps_the_most_noise_robust_poisoned_images(tiny_victim):
    splits, model = tiny_victim
    record, details = evaluate_injection(model, splits, "nag", targets=[3], per_target=3, noise_proxy=0.1,
                                         params=FAST, return_details=True)
    retention = details["noise_retention"]
    assert retention.shape == (6,)  # twice per_target crafted
    assert len(record["poisoned_ids"]) == 3 and record["noise_proxy"] == 0.1
    kept = sorted(retention.tolist(), reverse=True)[:3]
    assert record["per_target_metrics"][0]["target"] == 3
    assert min(kept) >= max(sorted(retention.tolist(), reverse=True)[3:])


@pytest.mark.parametrize("kwargs, words", [
    ({"radius": -1}, "radius"),
    ({"per_target": 0}, "per_target"),
    ({"mine": -2}, "mine"),
    ({"noise_proxy": -0.1}, "noise_proxy"),
    ({"source": torch.zeros(0, 3, 16, 16)}, "no attacker images"),
    ({"source": "imagenet"}, "source"),
    ({"targets": [99]}, "out of range"),
    ({"targets": []}, "empty"),
])
def test_bad_input_is_refused_with_a_clear_input_error(tiny_victim, kwargs, words):
    splits, model = tiny_victim
    with pytest.raises(InputError, match=words):
        evaluate_injection(model, splits, "nag", **kwargs)


def test_unknown_threat_and_untargeted_only_attack_are_refused(tiny_victim):
    splits, model = tiny_victim
    with pytest.raises(InputError, match="unknown threat 'poison'"):
        check_threat("poison")
    with pytest.raises(InputError, match="no targeted mode"):
        evaluate_injection(model, splits, "hag")


def test_cli_injection_writes_a_record_and_leaves_the_checkpoint_untouched(tiny_checkpoint, tmp_path, capsys):
    from hashguard.cli import main

    digest = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    out = tmp_path / "injection.json"
    code = main(["attack", "--model", str(tiny_checkpoint), "--method", "nag", "--threat", "injection",
                 "--target-categories", "0,2", "--per-target", "2", "--steps", "4", "--radius", "3", "--mine", "2",
                 "--json", str(out), "--quiet"])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["threat"] == "injection" and record["targets"] == [0, 2] and record["radius"] == 3
    assert len(record["poisoned_ids"]) == 4 and record["poisoned_ids"][0] == record["database_size"]
    assert "radius-3 success" in capsys.readouterr().out
    assert hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("extra, words", [
    (["--threat", "injection", "--radius", "-1"], "--radius must be >= 0"),
    (["--targeted", "--per-target", "3"], "--per-target apply only with --threat injection"),
    (["--threat", "injection", "--protocol", "default"], "--protocol belongs to the query threat"),
    (["--threat", "injection", "--target-categories", "a,b"], "--target-categories takes"),
])
def test_cli_injection_bad_flags_give_one_error_line(tiny_checkpoint, tmp_path, capsys, extra, words):
    from hashguard.cli import main

    code = main(["attack", "--model", str(tiny_checkpoint), "--method", "nag", *extra,
                 "--json", str(tmp_path / "x.json"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err
