"""Output paths are checked before any work (hashguard._paths): a directory where a file goes, a
folder that is a file or not writable, a nearly full disk; and paths read from records stay
inside their results folder."""

from __future__ import annotations

import os
from collections import namedtuple

import pytest

from hashguard._paths import check_output_dir, check_output_file, path_inside
from hashguard.errors import DiskFullError, OutputPathError
from unprivileged import run_unprivileged


def test_a_new_file_in_a_new_folder_is_fine_and_nothing_is_created(tmp_path):
    check_output_file(tmp_path / "a" / "b" / "r.json")
    check_output_file(tmp_path / "r.json")
    check_output_dir(tmp_path / "runs" / "x")
    assert list(tmp_path.iterdir()) == []  # a check leaves no trace


def test_an_existing_directory_is_not_a_file_target(tmp_path):
    (tmp_path / "model.pt").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_file(tmp_path / "model.pt")


def test_a_path_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for path in (tmp_path / "file.txt" / "x.json", tmp_path / "file.txt" / "sub" / "x.json"):
        with pytest.raises(OutputPathError, match="file"):
            check_output_file(path)
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file.txt")
    with pytest.raises(OutputPathError, match="not a folder"):
        check_output_dir(tmp_path / "file.txt" / "runs")


def test_a_results_folder_with_a_file_for_a_subfolder_or_a_directory_for_a_file(tmp_path):
    (tmp_path / "records").write_text("x")
    with pytest.raises(OutputPathError, match="records is a file"):
        check_output_dir(tmp_path, subdirs=("records",))
    (tmp_path / "report.html").mkdir()
    with pytest.raises(OutputPathError, match="report.html is a directory"):
        check_output_dir(tmp_path, files=("report.html",))


def test_a_read_only_folder_is_refused(unprivileged_dir):
    # as an ordinary user even when the suite runs as root (CI): root writes into read-only folders
    run_unprivileged("""
        from pathlib import Path
        import pytest
        from hashguard._paths import check_output_dir, check_output_file
        from hashguard.errors import OutputPathError

        locked = Path("locked")
        locked.mkdir()
        locked.chmod(0o555)
        for check, path in [(check_output_file, locked / "a.json"), (check_output_file, locked / "new" / "a.json"),
                            (check_output_dir, locked / "runs")]:
            with pytest.raises(OutputPathError, match="not writable"):
                check(path)
        locked.chmod(0o755)
    """, cwd=unprivileged_dir)


def test_a_nearly_full_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, (10 << 30) - 4096, 4096))
    with pytest.raises(DiskFullError, match=r"only 4\.0 KB free"):
        check_output_file(tmp_path / "m.pt")
    with pytest.raises(DiskFullError, match="free"):
        check_output_dir(tmp_path / "runs")


def test_links_devices_and_fifos_are_valid_targets(tmp_path):
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    check_output_file(link)
    check_output_file(os.devnull)
    (tmp_path / "d").mkdir()
    (tmp_path / "dirlink").symlink_to(tmp_path / "d")
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_file(tmp_path / "dirlink")


def test_paths_from_records_stay_inside_the_results_folder(tmp_path):
    out = tmp_path / "runs"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "ok.png").write_bytes(b"png")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (out / "figures" / "escape.png").symlink_to(secret)
    assert path_inside(out, "figures/ok.png") == (out / "figures" / "ok.png").resolve()
    assert path_inside(out, "figures/missing.png") is None
    assert path_inside(out, None) is None
    for bad in ("../secret.txt", str(secret), "figures/escape.png", "figures/../../secret.txt"):
        with pytest.warns(UserWarning, match="outside the results folder"):
            assert path_inside(out, bad, "figure") is None
    with pytest.warns(UserWarning, match="not a path"):
        assert path_inside(out, {"a": 1}) is None


def test_a_cache_that_cannot_be_written_costs_a_rebuild_not_the_run(tmp_path, monkeypatch):
    import torch

    import hashguard.data.cache as cache
    from hashguard.data import create_dataset

    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setenv("HASHGUARD_CACHE", str(tmp_path / "file.txt" / "cache"))
    with pytest.warns(UserWarning, match="HASHGUARD_CACHE"):
        first = create_dataset("mnist-mosaic", n_query=20, n_database=60, n_train=30, n_validation=10)

    def full(obj, path):
        raise DiskFullError(f"no space left to write {path}")

    monkeypatch.setenv("HASHGUARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "atomic_torch_save", full)
    with pytest.warns(UserWarning, match="rebuilt next time"):
        second = create_dataset("mnist-mosaic", n_query=20, n_database=60, n_train=30, n_validation=10)
    assert torch.equal(first.query.images, second.query.images)
