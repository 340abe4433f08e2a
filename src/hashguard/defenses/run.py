"""Defend a checkpoint file: load it, adversarially train, log each epoch, save a new checkpoint.

The per-epoch log has the loss, the clean mAP of a validation subset (never the query set) ranked
against the training split, and its mAP under a short PGD attack (PgA, ``eval_steps``
iterations). The defended checkpoint's config is the original's plus a ``defense`` entry (method,
settings, history) and ``defended_from``; its database codes are always recomputed by whoever
evaluates it. An interrupted run resumes from ``<out>.resume.pt`` after its last finished epoch.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from .. import __version__
from .. import data_parallel as dp
from .._atomic import atomic_write_json
from .._lock import file_lock
from .._paths import check_output_file
from ..data.batching import load_images
from ..data.loading import load_splits
from ..hashing import create_hashing, list_hashing
from ..models import load_checkpoint, save_checkpoint
from ..models.checkpoint import check_config
from ..precision import current_precision
from ..retrieval import mean_average_precision
from .registry import create_defense


def objective_from_config(config: Dict[str, Any], train_labels: torch.Tensor):
    """The checkpoint's hashing objective (the L_ori term), rebuilt for the training split."""
    name = config.get("hash_method")
    if name not in list_hashing():
        raise ValueError(
            f"the checkpoint records hashing objective {name!r}, which is not a known objective "
            f"({', '.join(list_hashing())}); adversarial training needs it as L_ori. Train the model with "
            "`hashguard train --hash ...` or add hash_method to its config"
        )
    return create_hashing(name, bits=int(config["bits"]), train_labels=train_labels, **dict(config.get("hash_params") or {}))


def validation_probe(splits, *, n: int = 200, steps: int = 10, topk: Optional[int] = None, seed: int = 0) -> Callable:
    """``evaluate(model)`` for the epoch log: clean and PgA-attacked mAP of ``n`` validation images."""
    from ..attacks import Knowledge, create_attack

    val = splits.validation if splits.validation is not None else splits.train
    idx = torch.arange(min(n, len(val)))
    x = load_images(val, idx)
    y = torch.as_tensor(val.labels).float()[idx]

    def evaluate(model) -> Dict[str, float]:
        knowledge = Knowledge.from_model(model, splits.train)
        db, dl = knowledge.codes.cpu(), knowledge.labels.cpu()
        clean = mean_average_precision(model.encode(x.to(model.device)).cpu(), db, y, dl, topk=topk)
        result = create_attack("pga", model, steps=steps, seed=seed)(x, y, knowledge=knowledge)
        attacked = mean_average_precision(result.codes_adv.cpu(), db, y, dl, topk=topk)
        return {"val_map": clean, "val_map_pga": attacked}

    return evaluate


def check_defense_outputs(out: str | Path) -> Path:
    """Check, before any training, that the defended model ``out``, its ``<out>.json`` and its
    ``<out>.resume.pt`` can be written (:func:`hashguard._paths.check_output_file`)."""
    out = Path(out)
    for path in (out, out.with_name(out.name + ".json"), out.with_name(out.name + ".resume.pt")):
        check_output_file(path)
    return out


def defense_lock(out: Path, log=None):
    """One process at a time per defended model: two runs with one ``out`` would share (and spoil)
    its ``<out>.resume.pt``. The lock file ``<out>.lock`` is removed when the run ends."""
    return file_lock(out.with_name(out.name + ".lock"), what=f"defended model {out}", log=log,
                     hint="wait for it to finish or use another --out")


def defend_model(
    model,
    method: str,
    splits,
    *,
    objective: Any,
    params: Optional[Dict[str, Any]] = None,
    resume_path: Optional[str | Path] = None,
    eval_queries: int = 200,
    eval_steps: int = 10,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
):
    """Run defense ``method`` on ``model`` (a HashModel or a wrapped network) with the per-epoch
    validation log; returns ``(defended model, record)``, the record being what a checkpoint's
    config says about the defense (method, settings, seconds, history)."""
    defense = create_defense(method, model, objective, **dict(params or {}))
    start = time.perf_counter()
    probe = validation_probe(splits, n=eval_queries, steps=eval_steps, topk=None, seed=defense.config.seed)
    defended = defense.fit(splits.train, evaluate=probe, resume_path=resume_path, progress=progress, log=log)
    record = {**defense.record(), "seconds": time.perf_counter() - start, "history": defense.history.epochs,
              "precision": current_precision(), "world_size": dp.current_ranks().world_size}
    return defended, record


def defend_checkpoint(
    model_path: str | Path,
    method: str,
    out: str | Path,
    *,
    splits=None,
    params: Optional[Dict[str, Any]] = None,
    device: str = "cpu",
    eval_queries: int = 200,
    eval_steps: int = 10,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Load ``model_path``, run defense ``method`` (``params``: epochs, seed, lr, ...) and save
    the defended checkpoint to ``out``; returns its config."""
    check_defense_outputs(out)
    model, config = load_checkpoint(model_path, map_location=device)
    if splits is None:
        check_config(config, str(model_path), required=("backbone", "bits", "dataset"))
        splits = load_splits(config["dataset"], int(config.get("seed", 0)), config.get("data_dir"),
                             image_size=config.get("image_size"), resize=config.get("resize"))
    objective = objective_from_config(config, torch.as_tensor(splits.train.labels).float())

    def save(defended, record: Dict[str, Any]) -> Dict[str, Any]:
        new_config = {**config, "defense": record, "defended_from": str(model_path), "version": __version__}
        save_checkpoint(out, defended, new_config)
        return new_config

    return _defend_and_save(model, method, splits, Path(out), save, objective=objective, params=params,
                            eval_queries=eval_queries, eval_steps=eval_steps, progress=progress, log=log)


def defend_external(
    model,
    info: Dict[str, Any],
    method: str,
    out: str | Path,
    splits,
    *,
    hash_method: str = "dpsh",
    params: Optional[Dict[str, Any]] = None,
    eval_queries: int = 200,
    eval_steps: int = 10,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Defend a user's wrapped network and save the defended network's own ``state_dict`` to
    ``out``, with ``<out>.json`` describing the run; returns that description. The file loads into
    the user's class: ``net.load_state_dict(torch.load(out, weights_only=True))``.

    ``hash_method`` names the L_ori term (the objective the network was trained with)."""
    from ..models.external import file_sha256, save_weights

    out = check_defense_outputs(out)

    def save(defended, record: Dict[str, Any]) -> Dict[str, Any]:
        save_weights(defended, out)
        config = {**info, "hash_method": hash_method, "dataset": splits.name, "defense": record,
                  "defended_from": info.get("weights"), "weights": str(out), "weights_sha256": file_sha256(out),
                  "version": __version__}
        atomic_write_json(out.with_name(out.name + ".json"), config)
        return config

    return _defend_and_save(model, method, splits, out, save, objective=hash_method, params=params,
                            eval_queries=eval_queries, eval_steps=eval_steps, progress=progress, log=log)


def _defend_and_save(model, method: str, splits, out: Path, save: Callable[[Any, Dict[str, Any]], Dict[str, Any]],
                     **defend_kwargs: Any) -> Dict[str, Any]:
    """Defend under ``out``'s lock, resuming from ``<out>.resume.pt``; ``save(defended, record)``
    writes the result and returns its description; the resume file is removed only after that."""
    log = defend_kwargs.get("log")
    resume = out.with_name(out.name + ".resume.pt")
    ranks = dp.current_ranks()  # under torchrun rank 0 holds the lock and writes; the others wait
    with defense_lock(out, log) if ranks.main else contextlib.nullcontext():
        defended, record = defend_model(model, method, splits, resume_path=resume, **defend_kwargs)
        description = dp.write_on_rank_zero(lambda: save(defended, record), out, ranks, what="defended model")
        if ranks.main:
            resume.unlink(missing_ok=True)
    return dp.broadcast_object(description, ranks)
