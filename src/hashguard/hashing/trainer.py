"""Training a hashing model with one of the registered objectives.

Paper defaults (docs/methods.md#training-defaults, SAAT / THA code): SGD, lr 0.01, momentum 0.9, weight decay
5e-4, batch 32, learning rate x0.1 every ``epochs // 3`` epochs. Model selection never looks at the
query set: the model of the last epoch is kept, and the optional per-epoch validation mAP is
measured on the dataset's validation split ranked against the training split.

Training from scratch: a randomly initialised network starts at the saddle of the pairwise
objectives (all outputs near 0, so every pairwise term and its gradient is near 0 and the loss sits
at log 2 per pair), and its random codes carry no semantics for the pairwise terms to build on
while DPSH's quantisation term (eta = 50) freezes them towards their random signs. The papers
avoid both by starting from ImageNet weights. Without them, three measures make the start
reliable (measured on ``mnist-mosaic``: DPSH stays at chance mAP 0.40 without them, 0.8+ with):

1. ``warmup_epochs``: a short label-classification warm-up of the backbone (a temporary linear
   head with a multi-label logistic loss on the training labels, then discarded), the from-scratch
   stand-in for ImageNet pre-training. No query or database label is used.
2. ``calibrate_hash_layer``: centre and scale every hash bit on a batch (balanced bits, unit
   spread), which moves the codes off the saddle at 0.
3. The pairwise buffer ``U`` starts from the codes of the whole training set instead of zeros.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch
from tqdm.auto import tqdm

from .. import data_parallel as dp
from .._params import Param
from ..data.base import ImageDataset
from ..data.batching import count_batches as _num_batches
from ..data.batching import iterate_chunks, split_order
from ..data.batching import load_images as _images
from ..models.hash_model import HashModel
from ..precision import grad_scaler
from .base import HashingObjective


@dataclass
class TrainConfig:
    """Optimisation settings; the defaults are the papers' (SGD 0.01, momentum 0.9, wd 5e-4, batch 32)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: Optional[int] = None  # epochs between x0.1 decays; None = epochs // 3
    lr_gamma: float = 0.1
    seed: int = 0
    calibrate: bool = True
    warmup_epochs: int = 0  # epochs of label-classification warm-up of a from-scratch backbone
    num_workers: int = 0  # image-decoding processes for datasets read from disk

    def validate(self, *, syntax: str = "python") -> None:
        """Check the type and range of every field (``TRAIN_RULES``), normalising them in place
        (``10.0`` epochs -> 10); raises ``InputError`` (a ``ValueError``) naming the field."""
        from dataclasses import asdict

        from .._params import check_params

        for key, value in check_params("train", train_schema(), asdict(self), syntax=syntax).items():
            setattr(self, key, value)


TRAIN_RULES = {
    "epochs": Param("int", low=1),
    "batch_size": Param("int", low=2, note="pairwise objectives need pairs"),
    "lr": Param("float", low=0, low_open=True),
    "momentum": Param("float", low=0, high=1),
    "weight_decay": Param("float", low=0),
    "lr_step": Param("int", low=1, optional=True, example=4, note="epochs between x0.1 decays; none = epochs // 3"),
    "lr_gamma": Param("float", low=0, high=1, low_open=True),
    "seed": Param("int", low=0),
    "calibrate": Param("bool"),
    "warmup_epochs": Param("int", low=0),
    "num_workers": Param("int", low=0),
}


def train_schema() -> Dict[str, Param]:
    """``field -> Param`` of :class:`TrainConfig`: its types and defaults, ``TRAIN_RULES``' ranges."""
    from .._params import dataclass_schema

    return dataclass_schema(TrainConfig, TRAIN_RULES, where="TrainConfig")


@dataclass
class TrainHistory:
    epochs: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def losses(self) -> List[float]:
        return [e["loss"] for e in self.epochs]


@torch.no_grad()
def calibrate_hash_layer(model: HashModel, images: torch.Tensor, target_std: float = 1.0) -> None:
    """Centre and scale each hash bit on ``images``: per-bit mean 0 and standard deviation ``target_std``.

    Features after ReLU and pooling share a large common component, so a random hash layer gives
    nearly the same code to every image; the pairwise gradient then only moves that common code and
    cannot separate the images (the saddle). Centring each bit on a batch (balanced bits, as the
    hashing literature asks of good codes) and scaling it to unit spread starts training from
    image-dependent codes. The random directions of the weights are kept.
    """
    logits = model.logits(images)
    mean, std = logits.mean(0), logits.std(0)
    if not bool(torch.isfinite(std).all()) or bool((std <= 0).any()):
        return
    scale = target_std / std
    model.hash_layer.weight.mul_(scale[:, None])
    model.hash_layer.bias.sub_(mean).mul_(scale)


def warm_up_backbone(model: HashModel, train: ImageDataset, config: TrainConfig, generator: torch.Generator, progress: bool) -> None:
    """Train the backbone with a temporary linear classifier on the training labels (then dropped)."""
    device = model.device
    with torch.no_grad():
        width = model.embed(_images(train, torch.arange(min(len(train), 64))).to(device)).shape[1]
    head = torch.nn.Linear(width, train.num_classes).to(device)
    params = list(model.features.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps = config.warmup_epochs * _num_batches(len(train), config.batch_size)
    model.train()
    ranks = dp.current_ranks()
    dp.broadcast_state(head, ranks)
    scaler = grad_scaler(device)
    with tqdm(total=steps, desc="backbone warm-up", disable=not progress or not ranks.main) as bar:
        for _ in range(config.warmup_epochs):
            order = torch.randperm(len(train), generator=generator)
            for chunk, images, labels, _ in rank_batches(train, order, config.batch_size, config.num_workers, ranks):
                images, labels = images.to(device), labels.to(device)
                logits = head(model.embed(images))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
                backward_over_ranks(loss, images.shape[0] / chunk.numel(), params, optimizer, ranks, scaler)
                optimizer_step(optimizer, scaler)
                bar.update(1)


def rank_batches(train: ImageDataset, order: torch.Tensor, batch_size: int, num_workers: int, ranks: dp.Ranks):
    """``(global batch indices, images, labels, indices)`` of this rank's slice of every global
    batch of ``order`` (the whole batch in a single process): :mod:`hashguard.data_parallel`."""
    chunks = split_order(order, batch_size)
    local = [c[dp.shard(c.numel(), ranks)] for c in chunks] if ranks.active else chunks
    for chunk, (images, labels, idx) in zip(chunks, iterate_chunks(train, local, num_workers), strict=True):
        yield chunk, images, labels, idx


def backward_over_ranks(loss: torch.Tensor, share: float, params, optimizer: torch.optim.Optimizer,
                        ranks: dp.Ranks, scaler=None) -> float:
    """Backward pass of this rank's ``loss`` weighted by its ``share`` of the global batch, the
    gradients summed over the ranks: the gradient of the global batch's mean loss. Returns that
    global loss (the weighted sum of the ranks' losses). fp16 scales the loss (``scaler``)."""
    optimizer.zero_grad(set_to_none=True)
    weighted = loss * share
    (scaler.scale(weighted) if scaler is not None else weighted).backward()
    total = dp.all_reduce_gradients(list(params), ranks, extra=weighted.detach().reshape(1))
    return float(weighted.detach() if total is None else total[0])


def optimizer_step(optimizer: torch.optim.Optimizer, scaler=None) -> None:
    """The optimiser's step (through the GradScaler under fp16, which skips steps with inf gradients)."""
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


@torch.no_grad()
def fill_buffer(
    model: HashModel, objective: HashingObjective, train: ImageDataset, batch_size: int = 256, num_workers: int = 0
) -> None:
    """Set the objective's buffer ``U`` to the current continuous codes of every training item.

    Runs in train mode, the mode of the training forward passes whose codes later replace these
    rows: before training, batch-norm running statistics have seen at most one batch, and eval-mode
    codes would sit near the saddle at 0 (measured: per-bit spread 0.004 instead of 1). Under
    torchrun each rank encodes its slice of every batch and the codes are all-gathered, so every
    rank holds the whole buffer.
    """
    was_training = model.training
    model.train()
    ranks = dp.current_ranks()
    if ranks.active and min((c.numel() for c in split_order(torch.arange(len(train)), batch_size)), default=0) < ranks.world_size:
        ranks = dp.SINGLE  # too few items to split: every rank encodes every batch itself
    for chunk, images, _, _ in rank_batches(train, torch.arange(len(train)), batch_size, num_workers, ranks):
        u = dp.gather_rows(model(images.to(model.device)), chunk.numel(), ranks)
        objective.update_buffer(u, chunk.to(objective.U.device))
    model.train(was_training)


def train_hash_model(
    model: HashModel,
    objective: HashingObjective,
    train: ImageDataset,
    config: Optional[TrainConfig] = None,
    *,
    evaluate: Optional[Callable[[HashModel], Dict[str, float]]] = None,
    evaluate_every: int = 0,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> TrainHistory:
    """Train ``model`` in place on ``train`` with ``objective``; returns the per-epoch history.

    ``evaluate(model)`` (e.g. validation mAP) is called every ``evaluate_every`` epochs and after
    the last one when given; it must not look at the query set. ``config``: default ``TrainConfig()``.

    In a process group started by torchrun (:func:`hashguard.data_parallel.init_from_env`) each
    rank trains on its slice of every global batch of ``config.batch_size`` items, U is refreshed
    with the gathered codes of the global batch, the share-weighted gradients are summed over the
    ranks, rank 0 alone evaluates, and every rank ends each epoch with rank 0's parameters and
    batch-norm statistics (each rank's own slice statistics during the epoch on CPU; SyncBatchNorm
    on CUDA). Inside :func:`hashguard.precision.mixed_precision` the model runs under autocast (fp16
    with a GradScaler).
    """
    config = TrainConfig() if config is None else config
    config.validate()
    if len(train) != objective.num_train:
        raise ValueError(
            f"the objective was built for {objective.num_train} training items but the training split has {len(train)}"
        )
    device = model.device
    objective.to(device)
    model, ranks, progress, log = dp.start_training(model, len(train), config.batch_size, progress, log)
    scaler = grad_scaler(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    step_size = config.lr_step or max(1, config.epochs // 3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=config.lr_gamma)
    history = TrainHistory()
    steps_per_epoch = _num_batches(len(train), config.batch_size)
    if config.warmup_epochs:
        warm_up_backbone(model, train, config, generator, progress)
    if config.calibrate:
        model.train()
        calibrate_hash_layer(model, _images(train, torch.arange(min(len(train), 256))).to(device))
    fill_buffer(model, objective, train, num_workers=config.num_workers)
    model.train()
    bar = tqdm(total=config.epochs * steps_per_epoch, desc=f"training {objective.name}", disable=not progress)
    step = 0
    try:
        for epoch in range(1, config.epochs + 1):
            start, total, count = time.perf_counter(), 0.0, 0
            epoch_lr = optimizer.param_groups[0]["lr"]
            order = torch.randperm(len(train), generator=generator)
            for chunk, images, labels, idx in rank_batches(train, order, config.batch_size, config.num_workers, ranks):
                images, labels = images.to(device), labels.to(device)
                u = model(images, alpha=objective.alpha(step))
                if ranks.active:  # the whole global batch refreshes U, as in one process
                    objective.update_buffer(dp.gather_rows(u.detach(), chunk.numel(), ranks), chunk.to(objective.U.device))
                loss = objective(u, labels, idx)
                value = backward_over_ranks(loss, images.shape[0] / chunk.numel(), model.parameters(), optimizer,
                                            ranks, scaler)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"{objective.name} loss became {value} at epoch {epoch}; lower the learning rate (--lr)"
                    )
                optimizer_step(optimizer, scaler)
                total += value * chunk.numel()
                count += chunk.numel()
                step += 1
                bar.update(1)
            objective.end_epoch()
            scheduler.step()
            dp.broadcast_state(model, ranks)  # rank 0's batch-norm statistics on every rank
            record: Dict[str, Any] = {
                "epoch": epoch,
                "loss": total / max(count, 1),
                "lr": epoch_lr,
                "seconds": time.perf_counter() - start,
            }
            if evaluate is not None and (
                epoch == config.epochs or (evaluate_every and epoch % evaluate_every == 0)
            ):
                record.update(dp.broadcast_object(evaluate(model) if ranks.main else None, ranks))
                model.train()
            history.epochs.append(record)
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", "val_map")})
            if log is not None:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
    finally:
        bar.close()
        model.eval()
    return history
