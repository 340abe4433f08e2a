"""Train a hashing model from names and save it as a checkpoint: what ``hashguard train`` and the
benchmark runner both do.

The checkpoint's JSON config records everything needed to rebuild the model and its L_ori term
(dataset, data_dir, backbone, hashing objective and its hyper-parameters, bits, seed, version), the
training settings with the per-epoch history, and the clean mAP of the query split.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from .. import __version__
from .. import data_parallel as dp
from .._paths import check_output_file
from ..models import create_hash_model, save_checkpoint
from ..precision import current_precision
from .base import create_hashing
from .evaluation import retrieval_map, validation_map
from .trainer import TrainConfig, train_hash_model


def train_checkpoint(
    splits,
    out: str | Path,
    *,
    backbone: str = "cnn",
    hash_method: str = "dpsh",
    bits: int = 32,
    seed: int = 0,
    pretrained: bool = False,
    config: Optional[TrainConfig] = None,
    topk: Optional[int] = None,
    data_dir: Optional[str] = None,
    device: str = "cpu",
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
    image_size: Optional[int] = None,
    resize: Optional[int] = None,
) -> Dict[str, Any]:
    """Train ``backbone`` + ``bits``-bit hash layer with ``hash_method`` on ``splits.train``, save
    the checkpoint to ``out`` (atomically) and return its config.

    Args:
        splits: the dataset (``data.load_splits``); its name goes into the config.
        config: the trainer settings (default ``TrainConfig(seed=seed)``; warm-up 2 epochs from
            scratch, 0 with ``pretrained``, unless set).
        topk: mAP cut-off of the reported clean mAP (None: whole database).
        data_dir, image_size, resize: recorded in the config so later commands read the images
            again the same way (``data.load_splits``).
    """
    out = Path(out)
    for path in (out, out.with_name(out.name + ".json")):  # the checkpoint and its JSON config
        check_output_file(path)  # before training, not after it
    config = config if config is not None else TrainConfig(seed=seed, warmup_epochs=0 if pretrained else 2)
    torch.manual_seed(seed)
    model = create_hash_model(backbone, bits, pretrained=pretrained).to(device)
    objective = create_hashing(hash_method, bits=bits, train_labels=splits.train.labels)
    start = time.perf_counter()
    history = train_hash_model(
        model,
        objective,
        splits.train,
        config,
        evaluate=(lambda m: validation_map(m, splits, topk)) if splits.validation is not None else None,
        evaluate_every=1,
        progress=progress,
        log=log,
    )
    seconds = time.perf_counter() - start
    ranks = dp.current_ranks()
    clean_map = dp.broadcast_object(retrieval_map(
        model, splits.query, splits.database, topk=topk, num_workers=config.num_workers, progress=progress
    ) if ranks.main else None, ranks)  # under torchrun rank 0 evaluates, the others wait
    record = {
        "dataset": splits.name,
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "image_size": image_size,
        "resize": resize,
        "backbone": backbone,
        "pretrained": bool(pretrained),
        "hash_method": hash_method,
        "hash_params": objective.hparams(),
        "bits": int(bits),
        "seed": int(seed),
        "version": __version__,
        "training": {**asdict(config), "seconds": seconds, "history": history.epochs, "precision": current_precision(),
                     "world_size": ranks.world_size},
        "clean_map": clean_map,
        "topk": topk,
    }
    dp.write_on_rank_zero(lambda: save_checkpoint(out, model, record), out, ranks, what="checkpoint")
    return record


__all__ = ["train_checkpoint"]
