"""Shared test settings: a temporary dataset cache for the session, and a single-thread fixture."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    old = os.environ.get("HASHGUARD_CACHE")
    os.environ["HASHGUARD_CACHE"] = str(tmp_path_factory.mktemp("hashguard-cache"))
    yield
    if old is None:
        os.environ.pop("HASHGUARD_CACHE", None)
    else:
        os.environ["HASHGUARD_CACHE"] = old


@pytest.fixture(scope="module")
def single_thread():
    """Run torch (and the numba retrieval kernels) on one thread, restored after the module.

    Used by the modules that train tiny models. On two busy cores, torch's intra-op pool spends far
    more time synchronising than computing on 16x16 inputs (measured: 0.8 s vs 0.01 s for three
    forwards), and numba's OpenMP workers keep spinning after each mAP kernel and starve the next
    torch forward (0.47 s vs 0.03 s to encode 280 images).
    """
    import torch

    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency, but the numpy backend needs none
        numba = None
    if numba is not None:
        # first: launching numba's OpenMP pool resets the OpenMP thread count torch reads
        previous_numba = numba.get_num_threads()
        numba.set_num_threads(1)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    if numba is not None:
        numba.set_num_threads(previous_numba)
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_victim():
    """``(splits, model)``: a tiny DPSH victim (``cnn`` width 8, 16 bits) trained on the synthetic
    dataset in about a second, shared by the attack and defense tests. The model is in eval mode;
    tests that change its weights must work on a copy."""
    import torch

    from hashguard.data import create_dataset
    from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
    from hashguard.models import create_hash_model

    splits = create_dataset("synthetic", seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = create_hash_model("cnn", 16, backbone_kwargs={"width": 8})
            objective = create_hashing("dpsh", bits=16, train_labels=splits.train.labels)
            train_hash_model(model, objective, splits.train, TrainConfig(epochs=6, warmup_epochs=2, seed=0), progress=False)
    finally:
        torch.set_num_threads(threads)
    return splits, model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """``model.pt``: the checkpoint ``hashguard train`` writes for a tiny DPSH model (synthetic data,
    16 bits, 2 epochs, seed 0), trained once for the CLI and ``defend_checkpoint`` tests. Tests
    must not write into its folder."""
    import torch

    from hashguard.cli import main

    out = tmp_path_factory.mktemp("tiny-checkpoint") / "model.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["train", "--dataset", "synthetic", "--bits", "16", "--epochs", "2", "--warmup-epochs", "1",
                     "--seed", "0", "--out", str(out), "--quiet"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_attack_setting(tiny_victim):
    """The tiny victim with what an attack needs: its reference set (training split), database
    codes and labels, every query with its labels and one target label per query (seed 0)."""
    import torch

    from hashguard.attacks import Knowledge, draw_target_labels

    splits, model = tiny_victim
    y = torch.as_tensor(splits.query.labels).float()
    db_labels = torch.as_tensor(splits.database.labels).float()
    return {
        "splits": splits,
        "model": model,
        "knowledge": Knowledge.from_model(model, splits.train),
        "db_codes": model.encode(splits.database.batch(slice(None))),
        "db_labels": db_labels,
        "x": splits.query.batch(slice(None)),
        "y": y,
        "targets": draw_target_labels(y, db_labels, seed=0),
    }


@pytest.fixture
def unprivileged_dir():
    """A fresh folder for the child (chmod-ed back and removed afterwards)."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="hashguard-unprivileged-"))
    yield folder
    for sub in folder.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)
