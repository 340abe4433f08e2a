"""RecordStore: atomic records keyed by config, and refusal to mix incompatible results."""

from __future__ import annotations

import json
import os
import re

import pytest

import hashguard
import hashguard._atomic
from hashguard.bench import RESULTS_FORMAT, RecordStore

PROTOCOL = {"eps": 8 / 255, "steps": 100, "relevance": "share"}
CONFIG = {"dataset": "mnist-mosaic", "backbone": "cnn", "hash_method": "dpsh", "bits": 16, "method": "pga", "targeted": True, "seed": 0}


def snapshot(directory):
    """Every file under ``directory``: relative path -> (bytes, mtime_ns)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_first_open_writes_the_header(tmp_path):
    RecordStore(tmp_path / "res", protocol=PROTOCOL)
    header = json.loads((tmp_path / "res" / "store.json").read_text())
    assert header == {"format": RESULTS_FORMAT, "version": hashguard.__version__, "protocol": PROTOCOL}
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["store.json"]


def test_put_get_round_trip(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    assert not store.has(CONFIG) and store.get(CONFIG) is None and store.records() == []
    path = store.put(CONFIG, {"map": 0.25, "t_map": float("nan")}, {"seconds": 1.5})
    assert path == tmp_path / "records" / f"{store.key_of(CONFIG)}.json"
    assert store.has(CONFIG)
    record = store.get(CONFIG)
    assert record["key"] == store.key_of(CONFIG) == path.stem
    assert record["config"] == CONFIG
    assert record["metrics"]["map"] == 0.25
    assert record["metrics"]["t_map"] != record["metrics"]["t_map"]  # NaN survives
    assert record["timings"] == {"seconds": 1.5}
    assert record["version"] == hashguard.__version__ and record["protocol"] == PROTOCOL
    assert json.loads(path.read_text())["config"] == CONFIG  # plain JSON on disk
    assert store.records() == [record]
    # a second store object on the same directory sees it
    assert RecordStore(tmp_path, protocol=dict(reversed(PROTOCOL.items()))).get(CONFIG)["key"] == record["key"]


def test_numpy_values_and_tuples_are_stored_as_json(tmp_path):
    np = pytest.importorskip("numpy")
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    store.put({"bits": 16, "topk": (10, 100)}, {"map": np.float32(0.5), "curve": np.arange(3)}, {})
    record = store.get({"bits": 16, "topk": [10, 100]})
    assert record["config"] == {"bits": 16, "topk": [10, 100]}
    assert record["metrics"] == {"map": 0.5, "curve": [0, 1, 2]}


def test_put_replaces_a_record(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    store.put(CONFIG, {"map": 0.1}, {})
    store.put(CONFIG, {"map": 0.2}, {})
    assert [r["metrics"] for r in store.records()] == [{"map": 0.2}]


def test_key_is_stable_across_orderings_and_distinct_across_configs():
    reordered = dict(reversed(CONFIG.items()))
    assert list(reordered) != list(CONFIG)
    key = RecordStore.key_of(CONFIG)
    assert RecordStore.key_of(reordered) == key
    assert RecordStore.key_of({"a": {"x": 1, "y": 2}}) == RecordStore.key_of({"a": {"y": 2, "x": 1}})
    assert key.startswith("mnist-mosaic_cnn_dpsh_16bits_pga_targeted-")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key)
    variants = [
        {**CONFIG, "bits": 32},
        {**CONFIG, "targeted": False},
        {**CONFIG, "seed": 1},
        {**CONFIG, "eps": 0.03},  # a field outside the slug still changes the key
        {k: v for k, v in CONFIG.items() if k != "seed"},
    ]
    keys = {key, *(RecordStore.key_of(c) for c in variants)}
    assert len(keys) == len(variants) + 1
    # the key is fixed by the config alone: the same on every run and machine
    assert RecordStore.key_of({"bits": 16}) == RecordStore.key_of({"bits": 16})
    assert re.fullmatch(r"16bits-[0-9a-f]{12}", RecordStore.key_of({"bits": 16}))
    assert re.fullmatch(r"[0-9a-f]{12}", RecordStore.key_of({"eps": 0.03}))


def test_key_is_filesystem_safe_for_odd_values(tmp_path):
    config = {"dataset": "../../etc/pass wd", "backbone": "a:b\\c", "method": "x" * 300, "defense": None}
    key = RecordStore.key_of(config)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key) and len(key) < 120
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    assert store.put(config, {}, {}).parent == tmp_path / "records"


def test_another_protocol_is_refused_before_writing(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    store.put(CONFIG, {"map": 0.25}, {})
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="protocol") as err:
        RecordStore(tmp_path, protocol={**PROTOCOL, "steps": 20})
    message = str(err.value)
    assert '"steps":100' in message and '"steps":20' in message
    assert "new results directory" in message and "delete" in message
    assert snapshot(tmp_path) == before


def test_another_version_is_refused_before_writing(tmp_path, monkeypatch):
    RecordStore(tmp_path, protocol=PROTOCOL).put(CONFIG, {"map": 0.25}, {})
    before = snapshot(tmp_path)
    monkeypatch.setattr(hashguard, "__version__", "9.9.9")
    with pytest.raises(ValueError, match="version") as err:
        RecordStore(tmp_path, protocol=PROTOCOL)
    assert "9.9.9" in str(err.value) and str(json.loads((tmp_path / "store.json").read_text())["version"]) in str(err.value)
    assert snapshot(tmp_path) == before


def test_another_format_or_a_headerless_directory_is_refused(tmp_path):
    (tmp_path / "store.json").write_text(json.dumps({"format": "other-v0", "version": hashguard.__version__, "protocol": PROTOCOL}))
    with pytest.raises(ValueError, match="other-v0"):
        RecordStore(tmp_path, protocol=PROTOCOL)
    bare = tmp_path / "bare"
    (bare / "records").mkdir(parents=True)
    (bare / "records" / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="no store.json"):
        RecordStore(bare, protocol=PROTOCOL)
    assert not (bare / "store.json").exists()


def test_corrupt_record_names_the_file(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    path = store.put(CONFIG, {"map": 0.25}, {})
    path.write_text('{"key": "half a rec')
    with pytest.raises(ValueError, match=re.escape(path.name)):
        store.records()
    with pytest.raises(ValueError, match=re.escape(path.name)):
        store.get(CONFIG)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=re.escape(path.name)):
        store.records()


def test_corrupt_header_names_the_file(tmp_path):
    (tmp_path / "store.json").write_text("{")
    with pytest.raises(ValueError, match="store.json"):
        RecordStore(tmp_path, protocol=PROTOCOL)


def test_temporary_files_are_never_records(tmp_path, monkeypatch):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    # what atomic_write renames into place: the temp name must not look like a record
    renamed = []
    real_replace = os.replace

    def spy(src, dst):
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(hashguard._atomic.os, "replace", spy)
    store.put(CONFIG, {"map": 0.25}, {})
    monkeypatch.undo()
    [(tmp_name, final_name)] = renamed
    assert final_name.endswith(".json") and not tmp_name.endswith(".json") and tmp_name.endswith(".tmp")
    # a temp file left by a run killed mid-write (same naming) is ignored, garbage or not
    (tmp_path / "records" / (final_name + ".k3j2h1.tmp")).write_text('{"key": "trunc')
    (tmp_path / "records" / "notes.txt").write_text("hello")
    assert [r["key"] for r in store.records()] == [store.key_of(CONFIG)]


def test_failed_put_leaves_nothing(tmp_path):
    store = RecordStore(tmp_path, protocol=PROTOCOL)
    with pytest.raises(ValueError, match="metrics"):
        store.put(CONFIG, {"map": object()}, {})
    with pytest.raises(ValueError, match="timings"):
        store.put(CONFIG, {}, [1.0])
    with pytest.raises(ValueError, match="config"):
        store.put({"bits": {1, 2}}, {}, {})
    assert not store.has(CONFIG) and store.records() == []
    assert not (tmp_path / "records").exists() or list((tmp_path / "records").iterdir()) == []


def test_bad_protocol_is_refused(tmp_path):
    with pytest.raises(ValueError, match="protocol"):
        RecordStore(tmp_path, protocol=[("eps", 0.03)])
    with pytest.raises(ValueError, match="protocol"):
        RecordStore(tmp_path, protocol={"eps": object()})
    assert list(tmp_path.iterdir()) == []
