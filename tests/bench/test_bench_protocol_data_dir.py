"""``hashguard attack --data-dir OTHER`` silently reused the protocol file drawn on the first data
(issue 12): the file now keeps the data folder and a fingerprint of the query images and labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hashguard.bench.protocol import load_or_draw_protocol
from hashguard.cli import main
from hashguard.data import load_splits
from user_data import write_noise_lists


def write(root, seed):
    """The same list files for every seed (so the labels agree), other pixels."""
    write_noise_lists(root, seed=seed)


def test_a_protocol_drawn_on_other_images_is_refused(tmp_path):
    write(tmp_path / "a", 0)
    write(tmp_path / "b", 1)  # same lists and labels, other images
    path = tmp_path / "p.json"
    load_or_draw_protocol(path, load_splits("lists", data_dir=str(tmp_path / "a")), n_queries=4, seed=0)
    saved = json.loads(path.read_text())
    assert saved["data_dir"] == str(tmp_path / "a") and len(saved["query_fingerprint"]) == 64
    with pytest.raises(ValueError, match=r"drawn from the 'lists' data in .*a, but the query images now read from "
                                         r".*b differ .* delete the file to draw again"):
        load_or_draw_protocol(path, load_splits("lists", data_dir=str(tmp_path / "b")), n_queries=4, seed=0)
    # a copy of the same data elsewhere is the same data
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    load_or_draw_protocol(path, load_splits("lists", data_dir=str(tmp_path / "copy")), n_queries=4, seed=0)


def test_attack_with_another_data_dir_is_a_one_line_error(tmp_path, capsys):
    write(tmp_path / "a", 0)
    write(tmp_path / "b", 1)
    model = tmp_path / "m.pt"
    assert main(["train", "--dataset", "lists", "--data-dir", str(tmp_path / "a"), "--bits", "8", "--epochs", "1",
                 "--warmup-epochs", "0", "--out", str(model), "--quiet", "--workers", "0"]) == 0
    common = ["attack", "--model", str(model), "--method", "fgsm", "--queries", "3", "--quiet"]
    assert main(common + ["--json", str(tmp_path / "r" / "1.json")]) == 0
    record = json.loads((tmp_path / "r" / "1.json").read_text())
    assert record["data_dir"] == str(tmp_path / "a") and len(record["query_fingerprint"]) == 64
    capsys.readouterr()
    with pytest.raises(SystemExit, match="differ"):
        main(common + ["--data-dir", str(tmp_path / "b"), "--json", str(tmp_path / "r" / "2.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "differ" in err[0]
    assert not (tmp_path / "r" / "2.json").exists()
