"""Atomic writes: a failed write leaves the previous file intact and no temporary file behind."""

from __future__ import annotations

import json

import pytest

from hashguard._atomic import atomic_write, atomic_write_json


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "record.json"
    atomic_write_json(target, {"map": 0.5})

    def crash(tmp):
        with open(tmp, "w") as f:
            f.write('{"map": 0.')  # half a record, then the process "dies"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"map": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "r.json"
    atomic_write_json(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]
