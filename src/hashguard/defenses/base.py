"""The adversarial-training loop every defense shares, with resumable per-epoch state.

Per batch (x, y, idx) of the training split:

1. reference codes of the batch from the defense's current training state (``reference``);
2. the inner maximisation: the shared attack engine (``hashguard.attacks``) runs PGD on the
   current model toward / away from those codes (eps 8/255, step 2/255, 7 iterations, uniform
   random start, tanh scale alpha = 1, as ATRDH, CgAT and SAAT do);
3. the benign forward pass, which refreshes the defense's sign-code buffer B of the training set
   (and the objective's continuous buffer U);
4. the outer update on ``outer_loss`` (the checkpoint's own hashing objective is the L_ori term).

Model modes, a choice the papers leave implicit (their code runs everything in train mode):
the inner attack runs in eval mode (batch-norm running statistics, no dropout; the attack engine
restores the mode), the benign forward pass in train mode, and the adversarial forward pass in
train mode with every batch-norm layer's running statistics frozen (momentum 0), so batch-norm
statistics are only ever estimated from benign images. Gradients reach all parameters.

Every epoch ends with an atomic resume file (model, optimiser, scheduler, buffers, random state,
history, precision); ``fit`` given the same file continues after the last finished epoch.

Under torchrun (:mod:`hashguard.data_parallel`) every rank takes its slice of each global batch:
the inner attack's targets and reference codes are built for the whole global batch on every rank
(as one process would), the attack then runs on the rank's own images with the plain module (no
collective inside PGD), the benign codes of the global batch are all-gathered into B and U, the
weighted gradients are summed over the ranks, and rank 0 alone evaluates and writes the resume
file. Batch-norm statistics: each rank's own on CPU, broadcast from rank 0 at the end of every
epoch (what the resume file holds); SyncBatchNorm on GPUs.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import data_parallel as dp
from .._atomic import atomic_torch_save
from .._repr import dataclass_changes, describe, same_value
from ..attacks import create_attack
from ..data.batching import count_batches
from ..hashing.base import HashingObjective
from ..hashing.trainer import backward_over_ranks, fill_buffer, optimizer_step, rank_batches
from ..models.contract import check_hash_model
from ..models.hash_model import HashModel, encode_dataset, sign_codes
from ..precision import current_precision, grad_scaler

RESUME_FORMAT = "hashguard-defense-resume-v1"


@dataclass
class DefenseConfig:
    """Settings of one adversarial-training run (each defense sets its paper defaults).

    ``milestones`` are fractions of the epochs at which the learning rate is multiplied by
    ``gamma`` (MultiStepLR at T/2 and 3T/4 in ATRDH, CgAT and SAAT).
    """

    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 1e-5
    betas: tuple = (0.9, 0.999)
    milestones: tuple = (0.5, 0.75)
    gamma: float = 0.1
    eps: float = 8 / 255
    step: float = 2 / 255
    steps: int = 7
    random_start: bool = True
    seed: int = 0

    def validate(self) -> None:
        if int(self.epochs) != self.epochs or int(self.epochs) < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs}")
        if int(self.batch_size) < 2:
            raise ValueError(f"batch_size must be >= 2 (pairwise losses and batch norm), got {self.batch_size}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid choices: sgd, adam")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0 (pixel units, e.g. 8/255), got {self.eps}")
        if int(self.steps) < 1:
            raise ValueError(f"steps (inner PGD iterations) must be >= 1, got {self.steps}")


@contextlib.contextmanager
def frozen_batchnorm_statistics(model: nn.Module) -> Iterator[None]:
    """Train-mode forward passes inside this block leave batch-norm running statistics unchanged."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@dataclass
class DefenseHistory:
    epochs: List[Dict[str, Any]] = field(default_factory=list)


class Defense:
    """Base class: a defense supplies ``reference``, the inner attack and ``outer_loss``.

    Args:
        model: the trained model to harden: a :class:`HashModel` or a user's network wrapped with
            :func:`~hashguard.models.wrap_model` (it is not modified: ``fit`` returns a trained
            copy; for a wrapped network ``fitted.module`` is the user's own class).
        objective: the model's hashing objective (the L_ori term): a built ``HashingObjective``
            for the training split, or its name (``"dpsh"``, ``"csq"``, ...), built by ``fit``
            from the training split's labels with the model's bit length and default settings.
        config overrides: any :class:`DefenseConfig` field as a keyword.
    """

    name = "defense"
    defaults: Dict[str, Any] = {}
    inner_attack = "mainstay"  # a code-guided attack of the registry, run with codes=
    inner_targeted = False

    def __init__(self, model: HashModel, objective: HashingObjective | str, **params: Any) -> None:
        check_hash_model(model, where=f"defense {self.name!r}")
        if isinstance(objective, str):
            from ..hashing import list_hashing

            if objective not in list_hashing():
                raise ValueError(f"unknown hashing objective {objective!r} for L_ori; valid choices: {', '.join(list_hashing())}")
        elif not isinstance(objective, HashingObjective):
            raise ValueError(
                f"{self.name} needs the model's hashing objective (L_ori): a name such as 'dpsh', or "
                "hashguard.hashing.create_hashing(name, bits=..., train_labels=...); "
                f"got {type(objective).__name__}"
            )
        params = self.check_params(params)
        fields = set(DefenseConfig.__dataclass_fields__)
        config_params = {k: v for k, v in params.items() if k in fields}
        self.params = {**self.method_defaults(), **{k: v for k, v in params.items() if k not in fields}}
        self.config = DefenseConfig(**{**self.defaults, **config_params})
        self.config.validate()
        self.source = model
        self.objective: Any = objective  # a name until fit() builds the HashingObjective

    def __repr__(self) -> str:
        """``ATRDH(objective='dpsh', epochs=100, eps=8/255, step=2/255, steps=7, adv_weight=2.0)``:
        the L_ori objective, the run length and the inner attack's budget, then every setting
        that differs from the defense's own defaults."""
        always = ("epochs", "eps", "step", "steps")
        objective = self.objective if isinstance(self.objective, str) else type(self.objective)
        items = [("objective", objective)] + [(k, getattr(self.config, k)) for k in always]
        changed = dataclass_changes(self.config, DefenseConfig(**self.defaults))
        items += [(k, v) for k, v in changed.items() if k not in always]
        method = self.method_defaults()
        items += [(k, v) for k, v in self.params.items() if k not in method or not same_value(v, method[k])]
        return describe(type(self).__name__, items)

    @classmethod
    def method_defaults(cls) -> Dict[str, Any]:
        """Method-specific parameters (beyond :class:`DefenseConfig`) and their defaults."""
        return {}

    @classmethod
    def check_params(cls, params: Dict[str, Any], *, syntax: str = "python") -> Dict[str, Any]:
        """Raise ``ValueError`` (an ``InputError``) naming the valid parameters if ``params`` has a key
        this defense lacks, or naming the range if a value is of the wrong type or out of range
        (``defenses.schema``); returns the values normalised (``10.0`` -> 10)."""
        from .._params import check_params
        from ..errors import InputError
        from .schema import defense_schema

        fields = set(DefenseConfig.__dataclass_fields__)
        allowed = fields | set(cls.method_defaults())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise InputError(
                f"defense {cls.name!r} has no parameter {', '.join(map(repr, unknown))}; valid parameters: "
                f"{', '.join(sorted(allowed))}"
            )
        return check_params(cls.name, defense_schema(cls.name), params, syntax=syntax)

    # ---------------------------------------------------------------- hooks
    def setup(self, model: HashModel, train) -> None:
        """Extra state before the first epoch (e.g. a PrototypeNet)."""

    def inner_target_labels(self, y: torch.Tensor) -> Optional[torch.Tensor]:
        """Target labels (B, C) of a targeted inner attack for the batch labels ``y`` (ATRDH
        draws them at random), or None for an untargeted one."""
        return None

    def reference(self, y: torch.Tensor, idx: torch.Tensor, target_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Codes (B, K) guiding the inner attack, from the current state: pushed away from, or
        pulled toward when the batch has ``target_labels`` (from :meth:`inner_target_labels`)."""
        raise NotImplementedError

    def outer_loss(self, h_ben: torch.Tensor, h_adv: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                   ref: torch.Tensor) -> torch.Tensor:
        """The loss of the outer update from the benign and adversarial codes of the batch."""
        raise NotImplementedError

    def extra_state(self) -> Dict[str, Any]:
        return {}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        pass

    # ---------------------------------------------------------------- the loop
    def record(self) -> Dict[str, Any]:
        """What the defended checkpoint's config says about this defense."""
        cfg = asdict(self.config)
        cfg["betas"] = list(cfg["betas"])
        cfg["milestones"] = list(cfg["milestones"])
        return {"method": self.name, **cfg, "params": dict(self.params)}

    def fit(
        self,
        train,
        *,
        evaluate: Optional[Callable[[HashModel], Dict[str, float]]] = None,
        resume_path: Optional[str | Path] = None,
        progress: bool = True,
        log: Optional[Callable[[str], None]] = None,
    ) -> HashModel:
        """Adversarially train a copy of the model on ``train``; return the defended model.

        ``evaluate(model)`` runs after every epoch (validation mAP, mAP under attack); with
        ``resume_path`` the loop writes its state there after every epoch and, when the file
        already holds the state of the same run, continues after its last epoch.
        """
        cfg = self.config
        if isinstance(self.objective, str):
            from ..hashing import create_hashing

            self.objective = create_hashing(self.objective, bits=int(self.source.bits),
                                            train_labels=torch.as_tensor(train.labels).float())
        if len(train) != self.objective.num_train:
            raise ValueError(
                f"the hashing objective was built for {self.objective.num_train} training items but the training split "
                f"has {len(train)}; build it from this split's labels"
            )
        model = copy.deepcopy(self.source)
        device = model.device
        objective = self.objective.to(device)
        model, ranks, progress, log = dp.start_training(model, len(train), cfg.batch_size, progress, log)
        scaler = grad_scaler(device)
        self.model = model
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizer: torch.optim.Optimizer
        if cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        milestones = sorted({max(1, round(f * cfg.epochs)) for f in cfg.milestones})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=cfg.gamma)
        history = DefenseHistory()
        start_epoch = 1
        resume_path = None if resume_path is None else Path(resume_path)
        state = self._read_resume(resume_path)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            objective.load_state_dict(state["objective"])
            self.B = state["B"].to(device)
            generator.set_state(state["generator"])
            history.epochs = list(state["history"])
            start_epoch = int(state["epoch"]) + 1
            self.setup(model, train)
            self.load_extra_state(state.get("extra", {}))
            if log:
                log(f"resumed {self.name} from {resume_path} after epoch {state['epoch']}")
        else:
            self.B = encode_dataset(model, train).to(device)  # sign codes of the training set
            fill_buffer(model, objective, train)
            self.setup(model, train)
        attack = create_attack(
            self.inner_attack, model, targeted=self.inner_targeted, eps=cfg.eps, step=cfg.step, steps=cfg.steps,
            random_start=cfg.random_start, alpha="none", seed=cfg.seed,
        )
        steps_per_epoch = count_batches(len(train), cfg.batch_size)
        bar = tqdm(total=(cfg.epochs - start_epoch + 1) * steps_per_epoch, desc=f"defending ({self.name})", disable=not progress)
        try:
            for epoch in range(start_epoch, cfg.epochs + 1):
                begin, total, count = time.perf_counter(), 0.0, 0
                epoch_lr = optimizer.param_groups[0]["lr"]
                order = torch.randperm(len(train), generator=generator)
                all_labels = torch.as_tensor(train.labels)
                for chunk, images, labels, idx in rank_batches(train, order, cfg.batch_size, 0, ranks):
                    images, labels, idx = images.to(device), labels.to(device).float(), idx.to(device)
                    # targets and reference codes of the whole global batch (what one process draws),
                    # then this rank's slice of them; the attack runs on the rank's own images
                    whole = chunk.to(device)
                    part = dp.shard(chunk.numel(), ranks) if ranks.active else slice(None)
                    batch_labels = all_labels[chunk].to(device).float() if ranks.active else labels
                    targets = self.inner_target_labels(batch_labels)
                    ref = self.reference(batch_labels, whole, targets)
                    targets, ref = (None if targets is None else targets[part]), ref[part]
                    ids = ((epoch - 1) * len(train) + idx).tolist()  # a fresh random start every epoch
                    x_adv = attack(images, labels, codes=ref, ids=ids, target_labels=targets).x_adv
                    model.train()
                    h_ben = model(images)
                    if ranks.active:  # the global batch's codes refresh B and U on every rank
                        h_all = dp.gather_rows(h_ben.detach(), chunk.numel(), ranks)
                        self.B[whole] = sign_codes(h_all)
                        objective.update_buffer(h_all, whole.to(objective.U.device))
                    else:
                        self.B[idx] = sign_codes(h_ben.detach())
                    with frozen_batchnorm_statistics(model):
                        h_adv = model(x_adv)
                    loss = self.outer_loss(h_ben, h_adv, labels, idx, ref)
                    value = backward_over_ranks(loss, images.shape[0] / chunk.numel(), model.parameters(), optimizer,
                                                ranks, scaler)
                    if not math.isfinite(value):
                        raise FloatingPointError(f"{self.name} loss became {value} at epoch {epoch}; lower lr")
                    optimizer_step(optimizer, scaler)
                    total += value * chunk.numel()
                    count += chunk.numel()
                    bar.update(1)
                objective.end_epoch()  # DSDH: the discrete W and B steps
                scheduler.step()
                model.eval()
                dp.broadcast_state(model, ranks)  # rank 0's batch-norm statistics on every rank, as saved
                rec: Dict[str, Any] = {"epoch": epoch, "loss": total / max(count, 1), "lr": epoch_lr,
                                       "seconds": time.perf_counter() - begin}
                if evaluate is not None:
                    rec.update(dp.broadcast_object(evaluate(model) if ranks.main else None, ranks))
                history.epochs.append(rec)
                bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items() if isinstance(v, float) and k != "seconds"})
                if log is not None:
                    log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
                if resume_path is not None:
                    snapshot = {
                        "format": RESUME_FORMAT, "run": self.record(), "precision": current_precision(),
                        "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "objective": objective.state_dict(),
                        "B": self.B.cpu(), "generator": generator.get_state(), "history": history.epochs,
                        "extra": self.extra_state(),
                    }
                    dp.write_on_rank_zero(functools.partial(atomic_torch_save, snapshot, resume_path), resume_path, ranks,
                                          what=f"resume file (epoch {epoch})")
        finally:
            bar.close()
            model.eval()
        self.history = history
        return model

    def _read_resume(self, path: Optional[Path]) -> Optional[Dict[str, Any]]:
        if path is None or not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a cut-short write: the file is only a cache, so start over
            from ..models.checkpoint import load_failure

            warnings.warn(f"{path} {load_failure(err, path)}: ignoring it and starting {self.name} from epoch 1", stacklevel=3)
            return None
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise ValueError(f"{path} is not a hashguard defense resume file; delete it or pass another --out")
        if state.get("precision", "fp32") != current_precision():
            raise ValueError(
                f"{path} holds a run at precision {state.get('precision', 'fp32')}, not {current_precision()}; "
                f"repeat it with --precision {state.get('precision', 'fp32')} or delete the file to start over"
            )
        if state.get("run") != self.record():
            raise ValueError(
                f"{path} holds the state of another run ({state.get('run')}), not {self.record()}; "
                "delete it to start over or repeat the original command"
            )
        return state
