"""Training on a dataset read from list files: decoding workers give the same run as the main process."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from hashguard.data import create_dataset
from hashguard.hashing import TrainConfig, create_hashing, train_hash_model
from hashguard.models import create_hash_model


def _write_flickr_like(root, n=12, classes=38):
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    lines = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)).save(root / "img" / f"{i}.png")
        label = (rng.random(classes) < 0.1).astype(int)
        label[i % 3] = 1
        lines.append(f"img/{i}.png " + " ".join(map(str, label)))
    for split, rows in (("train", lines[:8]), ("test", lines[8:]), ("database", lines)):
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")


def _train(splits, workers):
    torch.manual_seed(0)
    model = create_hash_model("cnn", 8, backbone_kwargs={"width": 4})
    objective = create_hashing("dpsh", bits=8, train_labels=splits.train.labels)
    config = TrainConfig(epochs=1, batch_size=4, num_workers=workers, warmup_epochs=1)
    history = train_hash_model(model, objective, splits.train, config, progress=False)
    return model, history


def test_disk_dataset_trains_identically_with_and_without_workers(tmp_path):
    _write_flickr_like(tmp_path)
    splits = create_dataset("flickr25k", root=tmp_path, image_size=16, resize=18)
    model_main, history_main = _train(splits, workers=0)
    model_workers, history_workers = _train(splits, workers=2)
    assert history_main.losses == history_workers.losses
    for a, b in zip(model_main.state_dict().values(), model_workers.state_dict().values()):
        assert torch.equal(a, b)
