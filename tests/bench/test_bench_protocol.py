"""The attack protocol: fixed queries and targets per seed, the metrics record, ``run_attack``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hashguard.attacks import Database, Knowledge, create_attack, draw_target_labels
from hashguard.bench.protocol import (
    SUCCESS_N,
    evaluate_attack,
    load_or_draw_protocol,
    protocol_path,
    run_attack,
    select_queries,
)
from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
from hashguard.models import create_hash_model
from hashguard.retrieval import mean_average_precision, per_query_scores, perceptibility

pytestmark = pytest.mark.usefixtures("single_thread")

BITS = 16
EPS = 0.1
TINY_PROTOTYPE = {"epochs": 1, "steps_per_epoch": 50, "hidden": 64, "lr": 1e-3}
RECORD_KEYS = {"method", "targeted", "eps", "steps", "topk", "seed", "params", "transfer", "n_queries", "clean_map",
               "map", "theory_map", "perceptibility", "seconds", "seconds_per_query", "success_rate",
               "success_definition", "iterations_mean", "bits_changed", "version"}
TARGETED_KEYS = {"clean_t_map", "t_map", "theory_t_map"}


def train_tiny(splits, seed):
    torch.manual_seed(seed)
    model = create_hash_model("cnn", BITS, backbone_kwargs={"width": 8})
    objective = create_hashing("dpsh", bits=BITS, train_labels=splits.train.labels)
    train_hash_model(model, objective, splits.train, TrainConfig(epochs=6, warmup_epochs=2, seed=seed), progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def splits(tiny_victim):
    return tiny_victim[0]


@pytest.fixture(scope="module")
def victim(tiny_victim):
    return tiny_victim[1]  # the session's tiny DPSH model (tests/conftest.py), the same recipe as train_tiny(splits, 0)


@pytest.fixture(scope="module")
def surrogate(splits):
    return train_tiny(splits, 1)


@pytest.fixture(scope="module")
def database(splits, victim):
    return Database(victim.encode(splits.database.batch(slice(None))), splits.database.labels)


# ---------------------------------------------------------------------------- queries and targets
def test_select_queries_is_deterministic_sorted_and_sized():
    a = select_queries(100, 10, seed=0)
    assert np.array_equal(a, select_queries(100, 10, seed=0))
    assert a.shape == (10,) and np.all(np.diff(a) > 0)  # sorted, no repeats
    assert a.min() >= 0 and a.max() < 100
    assert not np.array_equal(a, select_queries(100, 10, seed=1))
    assert np.array_equal(select_queries(7, None, seed=0), np.arange(7))
    assert np.array_equal(select_queries(7, 7, seed=3), np.arange(7))
    assert np.array_equal(select_queries(7, 50, seed=3), np.arange(7))
    for bad in (0, -1):
        with pytest.raises(ValueError, match=">= 1"):
            select_queries(100, bad, seed=0)


def test_protocol_file_is_written_once_and_read_back(splits, tmp_path):
    path = protocol_path(tmp_path, splits.name, 0, 10)
    assert path.name == "protocol-synthetic-seed0-q10.json"
    idx, targets = load_or_draw_protocol(path, splits, n_queries=10, seed=0)
    assert path.exists()
    record = json.loads(path.read_text())
    assert record["dataset"] == "synthetic" and record["seed"] == 0 and record["n_queries"] == 10
    assert record["query_indices"] == idx.tolist()
    assert np.array_equal(idx, select_queries(len(splits.query), 10, 0))
    labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    assert targets.shape == labels.shape and targets.dtype == torch.float32
    assert bool(((labels * targets).sum(1) == 0).all()), "a target shares a label with its query"
    assert bool((targets.sum(1) > 0).all())
    before = path.read_bytes()
    idx2, targets2 = load_or_draw_protocol(path, splits, n_queries=10, seed=0)
    assert np.array_equal(idx, idx2) and torch.equal(targets, targets2)
    assert path.read_bytes() == before


@pytest.mark.parametrize("seed, count", [(1, 10), (0, 11), (0, None)])
def test_protocol_file_of_another_seed_or_count_is_refused(splits, tmp_path, seed, count):
    path = tmp_path / "protocol.json"
    load_or_draw_protocol(path, splits, n_queries=10, seed=0)
    with pytest.raises(ValueError, match="another output directory or delete the file"):
        load_or_draw_protocol(path, splits, n_queries=count, seed=seed)


def test_protocol_counts_are_clamped_to_the_query_split(splits, tmp_path):
    idx, _ = load_or_draw_protocol(tmp_path / "p.json", splits, n_queries=10_000, seed=0)
    assert np.array_equal(idx, np.arange(len(splits.query)))
    assert json.loads((tmp_path / "p.json").read_text())["n_queries"] == len(splits.query)


# ---------------------------------------------------------------------------- metrics record
@pytest.mark.parametrize("name, targeted", [("pga", False), ("mainstay", True)])
def test_evaluate_attack_matches_direct_metrics(splits, victim, database, name, targeted):
    idx = select_queries(len(splits.query), 12, seed=0)
    x = splits.query.batch(torch.as_tensor(idx))
    y = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    targets = draw_target_labels(y, splits.database.labels, seed=0, ids=idx.tolist())
    kn = Knowledge.from_model(victim, splits.train)
    attack = create_attack(name, victim, targeted=targeted, eps=EPS, steps=10)
    result = attack(x, y, target_labels=targets if targeted else None, knowledge=kn, ids=idx.tolist())
    clean = victim.encode(x)
    m = evaluate_attack(result, x, y, clean, database, target_labels=targets if targeted else None)

    def mAP(codes, labels):
        return mean_average_precision(codes, database.codes, labels, database.labels)

    assert m["n_queries"] == 12
    assert m["clean_map"] == pytest.approx(mAP(clean, y), abs=1e-12)
    assert m["map"] == pytest.approx(mAP(result.codes_adv, y), abs=1e-12)
    assert m["theory_map"] == pytest.approx(mAP(result.ideal_codes, y), abs=1e-12)
    ideal_ap, _ = per_query_scores(result.ideal_codes, database.codes, targets if targeted else y, database.labels)
    assert m["per_query"]["theory_ap"] == pytest.approx(ideal_ap.tolist(), abs=1e-6)
    assert m["bits_from_ideal"] == pytest.approx(float((result.codes_adv != result.ideal_codes).float().sum(1).mean()))
    assert m["perceptibility"] == perceptibility(x, result.x_adv)
    assert set(m["perceptibility"]) == {"linf", "l2", "rmse"}
    assert m["perceptibility"]["linf"] <= EPS + 1e-6
    assert m["seconds"] == result.seconds and m["seconds_per_query"] == pytest.approx(result.seconds / 12)
    assert m["iterations_mean"] == pytest.approx(10.0)
    assert m["bits_changed"] == pytest.approx(float((result.codes_adv != clean).float().sum(1).mean()))
    success_labels = targets if targeted else y
    _, p10 = per_query_scores(result.codes_adv, database.codes, success_labels, database.labels, n=SUCCESS_N)
    assert m["success_rate"] == pytest.approx(float(np.mean(p10 >= 0.5 if targeted else p10 < 0.5)))
    assert str(SUCCESS_N) in m["success_definition"]
    if targeted:
        assert m["clean_t_map"] == pytest.approx(mAP(clean, targets), abs=1e-12)
        assert m["t_map"] == pytest.approx(mAP(result.codes_adv, targets), abs=1e-12)
        assert m["theory_t_map"] == pytest.approx(mAP(result.target_codes, targets), abs=1e-12)
        assert m["t_map"] > m["clean_t_map"]
    else:
        assert not TARGETED_KEYS & set(m)
        assert m["map"] < m["clean_map"]
    untheoretical = evaluate_attack(result, x, y, clean, database, target_labels=targets if targeted else None,
                                    theory=False)
    assert untheoretical["theory_map"] is None and "theory_ap" not in untheoretical["per_query"]
    if targeted:
        assert untheoretical["theory_t_map"] is None


# ---------------------------------------------------------------------------- run_attack
def check_record(record, method, targeted, n):
    assert RECORD_KEYS <= set(record)
    assert (TARGETED_KEYS <= set(record)) == targeted
    assert record["method"] == method and record["targeted"] is targeted and record["n_queries"] == n
    assert record["eps"] == pytest.approx(EPS) and record["topk"] is None
    for key in ("clean_map", "map", "success_rate") + (("clean_t_map", "t_map") if targeted else ()):
        assert 0.0 <= record[key] <= 1.0
    assert record["perceptibility"]["linf"] <= EPS + 1e-6
    assert record["seconds_per_query"] > 0
    json.dumps(record)  # the record is plain JSON


@pytest.fixture(scope="module")
def runs(splits, victim, surrogate, tmp_path_factory):
    """One untargeted, one targeted and one transfer run on the same protocol file and cache."""
    out = tmp_path_factory.mktemp("protocol")
    protocol = out / "protocol.json"
    cache = {}
    common = dict(n_queries=10, seed=0, protocol_file=protocol, cache=cache)
    records = {
        "pga": run_attack(victim, splits, "pga", params={"eps": EPS, "steps": 10}, **common),
        "mainstay": run_attack(victim, splits, "mainstay", targeted=True, params={"eps": EPS, "steps": 10}, **common),
    }
    records["transfer"] = run_attack(victim, splits, "mainstay", targeted=True, surrogate=surrogate,
                                     params={"eps": EPS, "steps": 10}, **common)
    return records, protocol, cache


def test_run_attack_untargeted_end_to_end(runs, splits, victim, database):
    records, protocol, cache = runs
    record = records["pga"]
    check_record(record, "pga", False, 10)
    assert record["transfer"] is False and record["seed"] == 0
    assert record["steps"] == 10 and record["params"] == {"eps": EPS, "steps": 10}
    assert record["theory_map"] is not None and record["map"] < record["clean_map"] - 0.05
    idx = np.asarray(json.loads(protocol.read_text())["query_indices"])
    x = splits.query.batch(torch.as_tensor(idx))
    y = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    assert record["clean_map"] == pytest.approx(
        mean_average_precision(victim.encode(x), database.codes, y, database.labels), abs=1e-12)
    assert {"database", "knowledge", "knowledge_surrogate"} <= set(cache)


def test_run_attack_targeted_end_to_end(runs):
    records, _, _ = runs
    record = records["mainstay"]
    check_record(record, "mainstay", True, 10)
    assert record["theory_map"] is not None and record["theory_t_map"] is not None
    assert record["t_map"] > record["clean_t_map"] + 0.05
    assert record["clean_map"] == pytest.approx(records["pga"]["clean_map"], abs=1e-12)  # same queries


def test_run_attack_transfer_has_no_theory_rows(runs):
    records, _, _ = runs
    record = records["transfer"]
    check_record(record, "mainstay", True, 10)
    assert record["transfer"] is True
    assert record["theory_map"] is None and record["theory_t_map"] is None
    # same victim, same protocol: the clean rows are the white-box run's
    assert record["clean_map"] == pytest.approx(records["mainstay"]["clean_map"], abs=1e-12)
    assert record["clean_t_map"] == pytest.approx(records["mainstay"]["clean_t_map"], abs=1e-12)


def test_run_attack_reports_training_time_of_learned_attacks(splits, victim):
    record = run_attack(victim, splits, "tha", targeted=True, n_queries=6, seed=2,
                        params={"eps": EPS, "steps": 5, "prototype": TINY_PROTOTYPE})
    check_record(record, "tha", True, 6)
    assert record["fit_seconds"] > 0
    assert record["seconds_per_query_with_training"] == pytest.approx(
        (record["seconds"] + record["fit_seconds"]) / 6)


def test_run_attack_without_protocol_file_draws_the_same_queries(splits, victim, tmp_path):
    params = {"eps": EPS, "steps": 3}
    with_file = run_attack(victim, splits, "ifgsm", n_queries=8, seed=5, params=params,
                           protocol_file=tmp_path / "p.json")
    without = run_attack(victim, splits, "ifgsm", n_queries=8, seed=5, params=params)
    assert with_file["clean_map"] == pytest.approx(without["clean_map"], abs=1e-12)
    assert with_file["map"] == pytest.approx(without["map"], abs=1e-12)


# ---------------------------------------------------------------------------- transfer surrogates
def test_a_surrogate_of_another_split_is_refused_before_any_work(splits, victim, surrogate, tmp_path):
    protocol = tmp_path / "protocol.json"
    with pytest.raises(ValueError, match=r"surrogate was trained on cifar10 \(seed 0\) but the victim on synthetic"):
        run_attack(victim, splits, "pga", surrogate=surrogate, params={"eps": EPS, "steps": 1}, n_queries=2,
                   protocol_file=protocol, victim_data={"dataset": "synthetic", "seed": 0},
                   surrogate_data={"dataset": "cifar10", "seed": 0})
    assert not protocol.exists(), "the check must come before any work"


def test_surrogate_check_compares_dataset_seed_and_the_fields_both_give():
    from hashguard.bench.protocol import check_surrogate_data

    victim = {"dataset": "synthetic", "seed": 3, "image_size": 32}
    check_surrogate_data(victim, {"dataset": "synthetic", "seed": 3, "image_size": 32, "resize": 40})
    check_surrogate_data({"dataset": "synthetic"}, {"dataset": "synthetic", "seed": 7})  # a user's net: no seed
    with pytest.raises(ValueError, match=r"\(seed 0\) but the victim on synthetic \(seed 3\)"):
        check_surrogate_data(victim, {"dataset": "synthetic"})  # a surrogate without a seed counts as seed 0
    with pytest.raises(ValueError, match="image_size 64 vs 32"):
        check_surrogate_data(victim, {"dataset": "synthetic", "seed": 3, "image_size": 64})


def test_cli_attack_refuses_a_surrogate_of_another_split_through_the_shared_check(splits, victim, tmp_path, capsys):
    from hashguard.cli import main
    from hashguard.models import save_checkpoint

    model_path, surrogate_path, out = tmp_path / "victim.pt", tmp_path / "surrogate.pt", tmp_path / "r.json"
    save_checkpoint(model_path, victim, {"dataset": "synthetic", "seed": 0, "hash_method": "dpsh"})
    save_checkpoint(surrogate_path, victim, {"dataset": "synthetic", "seed": 5, "hash_method": "dpsh"})
    args = ["attack", "--model", str(model_path), "--surrogate", str(surrogate_path), "--method", "pga",
            "--queries", "2", "--steps", "1", "--json", str(out), "--quiet"]
    with pytest.raises(SystemExit) as err:
        main(args)
    message = f"{err.value} {capsys.readouterr().err}"
    assert "surrogate was trained on synthetic (seed 5) but the victim on synthetic (seed 0)" in message
    assert not out.exists()
