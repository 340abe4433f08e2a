"""The attack base class and the one optimisation engine every gradient attack shares.

An attack file holds only what makes the method itself: its default hyper-parameters, how it
builds its reference or target codes (``prepare``) and the loss it minimises (``code_loss`` or
``objective``). This module owns the rest, once:

- input checks (images NCHW in [0, 1], label widths, eps > 0, steps >= 1), device handling, model
  mode (eval, parameters frozen, both restored), timing, batching, the input never modified;
- the loop: L-inf projection to the eps-ball and to [0, 1] after every step, optional uniform
  random start, the tanh-scale ("alpha") schedule, the update rule (sign steps = PGD, or SGD with
  momentum / Adam on the image, for HAG and SDHA), and per-query early stops:
  ``"code"`` stops a query once every bit of its code is on the goal's side,
  ``"ap"`` once its AP against the database reaches 0 (untargeted) or 1 (targeted), checked every
  ``check_every`` iterations (SDHA Sec. 4.4); ``"auto"`` is ``"ap"`` for a call that passes
  ``database=`` and no early stop for one that does not (SDHA's default);
- the result: ``codes_adv`` are re-encoded from the final ``x_adv`` in eval mode, never taken
  from inside the loop.

The hooks get what they need explicitly: the batch's :class:`~.context.AttackContext` (per-query
tensors, subset as queries stop, and the shared knowledge / database) and the iteration ``t``;
nothing of a call is kept on the attack object. Model modes are scoped:
:func:`~hashguard.models.modes.eval_frozen` around the call, and
:func:`~hashguard.models.modes.inputs_in_unit_range` around the loop, whose projected iterates
need no range scan. Update rules are small objects chosen by name (:mod:`.update_rules`).

Randomness (random start, noise, anchor samples) is drawn per query from ``(seed, id)``, so a
query gets the same adversarial image whether it is attacked alone or in a batch.

The alpha schedule (docs/design.md#alpha-schedule, SAAT ``get_alpha``): over T iterations,
alpha = (0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)[floor(10 t / T)]; the model computes
tanh(alpha * logits), a flatter relaxation early on (larger gradients), sign-like at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

import torch

from .._params import check_params
from .._random import default_ids, per_sample_rand, sample_generators
from .._repr import describe, init_defaults, same_value
from .._validation import check_images, check_labels
from ..errors import InputError
from ..models.contract import check_hash_model, input_channels
from ..models.hash_model import HashModel, sign_codes
from ..models.modes import eval_frozen, inputs_in_unit_range
from .context import AttackContext
from .knowledge import Database, Knowledge
from .schema import ENGINE_RULES
from .update_rules import create_update_rule, list_update_rules

RELATIVE_ALPHAS = (0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
OPTIMIZERS = tuple(list_update_rules())
EARLY_STOPS = ("code", "ap", "auto")


def relative_alpha(t: int, steps: int) -> float:
    """The relative tanh-scale schedule of SAAT / HAG for iteration ``t`` of ``steps``."""
    return RELATIVE_ALPHAS[min(len(RELATIVE_ALPHAS) - 1, (10 * t) // max(steps, 1))]


def parse_eps(value: Any) -> float:
    """``8/255``, ``"8/255"`` or ``0.0314`` -> float; raises on a non-number."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                return float(num) / float(den)
            return float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"cannot read {value!r} as a number; write eps as 8/255 or 0.0314") from None
    return float(value)


@dataclass
class AttackResult:
    """What every attack returns.

    Attributes (tensors on the attacked model's device):
        x_adv: adversarial images, inside the eps-ball of the input and [0, 1].
        codes_adv: ±1 codes of ``x_adv``, re-encoded in eval mode after the attack.
        target_codes: the target code of each query (targeted attacks), else None.
        reference_codes: the code an untargeted attack pushed away from (pharos, mainstay, the
            clean code for HAG ...), or None when the method has none (SDHA).
        iterations: per-query number of update steps taken (early stops take fewer).
        seconds: wall time of the whole call (codes, loop, re-encoding); excludes ``fit``.
        extra: method-specific information (e.g. training time of a generator).
    """

    x_adv: torch.Tensor
    codes_adv: torch.Tensor
    target_codes: Optional[torch.Tensor]
    reference_codes: Optional[torch.Tensor]
    iterations: torch.Tensor
    seconds: float
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def ideal_codes(self) -> Optional[torch.Tensor]:
        """The code the attack aims for: the target code, or the negated reference code."""
        if self.target_codes is not None:
            return self.target_codes
        return None if self.reference_codes is None else -self.reference_codes


class Attack:
    """Base class of every attack; subclasses set defaults and implement ``prepare`` / the loss.

    Args:
        model: the attacked (or surrogate) :class:`HashModel`.
        targeted: pull toward a target label's code instead of pushing away from the query's.
        eps: L-inf budget in pixel units (images in [0, 1]); default 8/255.
        step: step size of sign updates (PGD); default 1/255.
        steps: number of iterations T.
        random_start: start from a uniform point of the eps-ball (drawn per query from the seed).
        alpha: ``"relative"`` (the schedule above), ``"none"`` (1.0 throughout), a float, or a
            callable ``(t, steps) -> float``.
        optimizer: the update rule, by name (:mod:`.update_rules`): ``"sign"`` (PGD: x -= step *
            sign(grad)), ``"sgd"`` (momentum on the image, learning rate ``lr``) or ``"adam"``
            (learning rate ``lr``, ``betas``).
        early_stop: None, ``"code"``, ``"ap"`` (needs ``database=`` in the call) or ``"auto"``
            (``"ap"`` when the call passes ``database=``, else none).
        check_every: iterations between two AP checks.
        seed: seed of every random draw.
        batch_size: queries attacked together (None: all at once).
    """

    name = "attack"
    supports_untargeted = True
    supports_targeted = True
    fixed_steps = False  # True: the iteration count is part of the method (one generator pass)
    needs_knowledge = True

    def __init__(
        self,
        model: HashModel,
        *,
        targeted: bool = False,
        eps: float = 8 / 255,
        step: float = 1 / 255,
        steps: int = 100,
        random_start: bool = False,
        alpha: Any = "relative",
        optimizer: str = "sign",
        lr: Optional[float] = None,
        momentum: float = 0.9,
        betas: Tuple[float, float] = (0.9, 0.999),
        early_stop: Optional[str] = None,
        check_every: int = 10,
        seed: int = 0,
        batch_size: Optional[int] = None,
    ) -> None:
        check_hash_model(model, where=f"attack {self.name!r}")
        self.model = model
        # the engine's settings pass the same rules as a grid file or --param (attacks/schema.py), so
        # PharosGuidedAttack(model, eps=5) is refused exactly like --param eps=5
        v = check_params(self.name, ENGINE_RULES, dict(
            targeted=targeted, eps=eps, step=step, steps=steps, random_start=random_start, alpha=alpha,
            optimizer=optimizer, lr=lr, momentum=momentum, betas=betas, early_stop=early_stop,
            check_every=check_every, seed=seed, batch_size=batch_size))
        self.targeted = v["targeted"]
        self.eps, self.step, self.steps = float(v["eps"]), float(v["step"]), v["steps"]
        self.random_start = v["random_start"]
        self.alpha = alpha if callable(alpha) else v["alpha"]
        self.optimizer = v["optimizer"]
        if self.optimizer != "sign" and v["lr"] is None:
            raise InputError(f"{self.name}: optimizer {self.optimizer!r} needs a positive learning rate lr, got None; "
                             "e.g. lr=0.01")
        self.lr = v["lr"]
        self.momentum = float(v["momentum"])
        self.betas = tuple(v["betas"])
        self.early_stop = None if v["early_stop"] == "none" else v["early_stop"]
        self.check_every = v["check_every"]
        self.seed = v["seed"]
        self.batch_size = v["batch_size"]

    # ------------------------------------------------------------------ description
    def __repr__(self) -> str:
        """``PharosGuidedAttack(targeted=False, eps=8/255, steps=100, margin=-0.5)``: the mode,
        budget and iterations, then every parameter that differs from the class's default."""
        always = ("targeted", "eps", "steps")
        items = [(k, getattr(self, k)) for k in always]
        items += [(k, getattr(self, k)) for k, default in init_defaults(type(self)).items()
                  if k not in always and hasattr(self, k) and not same_value(getattr(self, k), default)]
        return describe(type(self).__name__, items + list(self.repr_settings().items()))

    def repr_settings(self) -> Dict[str, Any]:
        """Non-default parameters not kept under their own name (settings dicts), for ``repr``."""
        return {}

    # ------------------------------------------------------------------ hooks for subclasses
    def fit(self, knowledge: Knowledge, train: Any = None, *, progress: bool = False) -> Attack:
        """Train whatever the attack learns before attacking (prototype nets, generators); the
        result is state of the attack, reused by every later call. Returns ``self``."""
        return self

    def prepare(self, ctx: AttackContext) -> None:
        """Fill in what the loss needs for the batch ``ctx`` before the loop, under no_grad:
        ``ctx.reference`` (untargeted) or ``ctx.target`` (targeted), reported in the result,
        ``ctx.goal``, and method-specific per-query tensors in ``ctx.per_query``."""
        raise NotImplementedError

    def objective(self, x_adv: torch.Tensor, ctx: AttackContext, *, t: int, alpha: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """The per-query loss (B,) to minimise at iteration ``t`` (0-based) and the continuous
        codes (B, K) of ``x_adv``; ``alpha`` is the tanh scale of iteration ``t``. ``ctx`` holds
        the running queries only. Default: ``code_loss`` of ``model(x_adv, alpha)``."""
        h = self.model(x_adv, alpha)
        return self.code_loss(h, ctx), h

    def code_loss(self, h: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        """The per-query loss (B,) of the continuous codes ``h`` (B, K) of the running queries."""
        raise NotImplementedError

    def goal_codes(self, ctx: AttackContext) -> Optional[torch.Tensor]:
        """The ±1 code (B, K) a query is done at (for ``early_stop="code"``), or None when the
        method has no single goal code per query."""
        if self.targeted:
            return ctx.target
        return None if ctx.reference is None else -ctx.reference

    def result_extra(self) -> Dict[str, Any]:
        """Method-specific entries of ``AttackResult.extra`` (e.g. a generator's training time)."""
        return {}

    # ------------------------------------------------------------------ the public call
    def __call__(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        target_labels: Optional[torch.Tensor] = None,
        knowledge: Optional[Knowledge] = None,
        database: Optional[Database] = None,
        ids: Optional[Sequence[int]] = None,
        codes: Optional[torch.Tensor] = None,
    ) -> AttackResult:
        """Attack the images ``x`` (N, C, H, W) in [0, 1] with labels ``labels`` (N, classes).

        ``codes`` (N, K) ±1, for code-guided attacks: use these reference codes (untargeted) or
        target codes (targeted) instead of building them from ``knowledge`` (adversarial training
        passes the codes of its current training state this way)."""
        check_images(x, channels=input_channels(self.model))
        labels = torch.as_tensor(labels)
        check_labels(labels, name="labels", all_zero="warn" if codes is None else "allow")
        if labels.shape[0] != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} images but {labels.shape[0]} label rows")
        if knowledge is not None and labels.shape[1] != knowledge.num_classes:
            raise ValueError(
                f"labels have {labels.shape[1]} columns but the attacker's reference set has "
                f"{knowledge.num_classes} classes; use labels of the dataset the model was trained on"
            )
        if self.targeted:
            if target_labels is None:
                raise ValueError(f"{self.name} is targeted: pass target_labels= (one row per query)")
            target_labels = torch.as_tensor(target_labels)
            check_labels(target_labels, labels.shape[1], name="target_labels", all_zero="error")
            if target_labels.shape[0] != x.shape[0]:
                raise ValueError(f"got {x.shape[0]} images but {target_labels.shape[0]} target label rows")
        elif target_labels is not None:
            raise ValueError(f"{self.name} was created untargeted; create it with targeted=True to use target_labels")
        if codes is not None:
            codes = torch.as_tensor(codes)
            if not isinstance(self, CodeAttack) or codes.shape != (x.shape[0], getattr(self.model, "bits", codes.shape[1])):
                raise ValueError(
                    f"codes= needs a code-guided attack and one ±1 code of {getattr(self.model, 'bits', '?')} bits per "
                    f"image, got {tuple(codes.shape)} for {self.name}"
                )
            if codes.numel() and not bool(((codes == 1) | (codes == -1)).all()):
                raise ValueError("codes= must be ±1 sign codes (e.g. sign_codes(model(x)) or mainstay_codes(...)), "
                                 "not tanh outputs or 0/1 bits")
        if self.needs_knowledge and knowledge is None and codes is None:
            raise ValueError(
                f"{self.name} needs the attacker's reference set: pass knowledge=Knowledge.from_model(model, splits.train)"
            )
        if self.early_stop == "ap" and database is None:
            raise ValueError("early_stop='ap' checks each query's AP against the database: pass database=Database(codes, labels, topk)")
        ids = default_ids(x.shape[0], ids)

        device = self.model.device
        model = self.model
        start = time.perf_counter()
        with eval_frozen(model):
            if knowledge is not None:
                knowledge = knowledge.to(device)
            chunk = self.batch_size or max(1, x.shape[0])
            parts = []
            for lo in range(0, x.shape[0], chunk):
                sl = slice(lo, lo + chunk)
                ctx = AttackContext.of_batch(
                    x[sl], labels[sl], ids[sl], device=device,
                    target_labels=None if target_labels is None else target_labels[sl],
                    given_codes=None if codes is None else codes[sl], knowledge=knowledge, database=database,
                )
                parts.append(self._attack_batch(ctx))
            x_adv = torch.cat([p[0] for p in parts]) if parts else x.clone()
            codes_adv = model.encode(x_adv)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start

        def cat(i: int) -> Optional[torch.Tensor]:
            vals = [p[i] for p in parts]
            return None if not vals or any(v is None for v in vals) else torch.cat([v for v in vals if v is not None])

        return AttackResult(
            x_adv=x_adv,
            codes_adv=codes_adv,
            target_codes=cat(2) if self.targeted else None,
            reference_codes=None if self.targeted else cat(1),
            iterations=torch.cat([p[3] for p in parts]) if parts else torch.zeros(0, dtype=torch.long),
            seconds=seconds,
            extra=self.result_extra() if parts else {},
        )

    def _attack_batch(self, ctx: AttackContext) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], torch.Tensor]:
        """``(x_adv, reference codes, target codes, iterations)`` of one batch; the context itself
        (a copy of the clean images) is dropped with the batch."""
        with torch.no_grad():
            self.prepare(ctx)
        with inputs_in_unit_range():  # the projection keeps every iterate in [0, 1]
            x_adv, iterations = self.run(ctx)
        return x_adv.detach(), ctx.reference, ctx.target, iterations

    # ------------------------------------------------------------------ the engine
    def alpha_at(self, t: int) -> float:
        if callable(self.alpha):
            return float(self.alpha(t, self.steps))
        if self.alpha == "relative":
            return relative_alpha(t, self.steps)
        if self.alpha in ("none", None):
            return 1.0
        return float(self.alpha)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Clip into the L-inf eps-ball of ``x`` and into [0, 1]."""
        return torch.min(torch.max(x_adv, x - self.eps), x + self.eps).clamp_(0.0, 1.0)

    def random_noise(self, ids: Sequence[int], shape: Sequence[int], device, salt: int = 0) -> torch.Tensor:
        """Uniform noise in [-1, 1) of shape ``(len(ids), *shape)``, drawn per query id."""
        gens = sample_generators(self.seed * 1000003 + salt, ids, device)
        return per_sample_rand(gens, shape, device=device) * 2 - 1

    def early_stop_for(self, database: Optional[Database]) -> Optional[str]:
        """The early stop a call runs with: ``"auto"`` is ``"ap"`` with a database, else none."""
        if self.early_stop == "auto":
            return "ap" if database is not None else None
        return self.early_stop

    def run(self, ctx: AttackContext) -> Tuple[torch.Tensor, torch.Tensor]:
        """The shared loop on the prepared batch ``ctx``; returns ``(x_adv, iterations per query)``."""
        x = ctx.x
        early_stop = self.early_stop_for(ctx.database)
        b = x.shape[0]
        device = x.device
        x_adv = x.clone()
        if self.random_start:
            x_adv = self.project(x + self.eps * self.random_noise(ctx.id_list, x.shape[1:], device), x)
        iterations = torch.zeros(b, dtype=torch.long)
        if b == 0:
            return x_adv, iterations
        active = torch.arange(b, device=device)
        sel: Any = slice(None)  # the active rows: a view while every query is still running
        sub = ctx  # the context of the active rows
        update = create_update_rule(self.optimizer, x, step=self.step, lr=self.lr, momentum=self.momentum, betas=self.betas)
        goal_all = self.goal_codes(ctx) if early_stop == "code" else None
        if early_stop == "code" and goal_all is None:  # would silently run every step
            raise ValueError(f"{self.name} has no single goal code per query, so early_stop='code' cannot tell "
                             "when a query is done; use early_stop='ap' with database=")
        ap_labels = ctx.required("target_labels") if self.targeted else ctx.labels
        for t in range(self.steps):
            xa = x_adv[sel].detach().requires_grad_(True)
            loss, h = self.objective(xa, sub, t=t, alpha=self.alpha_at(t))
            grad, = torch.autograd.grad(loss.sum(), xa)
            keep = None
            if goal_all is not None:  # queries already at their goal take no step
                done = (torch.where(h.detach() >= 0, 1.0, -1.0) == goal_all[sel]).all(1)
                if bool(done.any()):
                    keep = ~done
            with torch.no_grad():
                upd = update(grad, sel, t)
                if keep is not None:
                    upd = upd * keep.view(-1, *([1] * (x.dim() - 1))).to(upd.dtype)
                x_adv[sel] = self.project(x_adv[sel] - upd, x[sel])
                stepped = active if keep is None else active[keep]
                iterations[stepped.cpu()] += 1
                if early_stop == "ap" and ((t + 1) % self.check_every == 0 or t + 1 == self.steps):
                    finished = self._ap_reached(x_adv[sel], ap_labels[sel], cast(Database, ctx.database))
                    keep = ~finished if keep is None else keep & ~finished
            if keep is not None and not bool(keep.all()):
                active = active[keep]
                if active.numel() == 0:
                    break
                sel = active
                sub = sub.subset(keep)
        return x_adv, iterations

    @torch.no_grad()
    def _ap_reached(self, x_adv: torch.Tensor, labels: torch.Tensor, database: Database) -> torch.Tensor:
        from ..retrieval import per_query_scores

        codes = sign_codes(self.model.logits(x_adv))
        scores, _ = per_query_scores(codes.cpu(), database.codes, labels.cpu(), database.labels, topk=database.topk)
        ap = torch.as_tensor(scores, device=x_adv.device)
        return ap >= 1.0 - 1e-12 if self.targeted else ap <= 1e-12


class CodeAttack(Attack):
    """An attack guided by one code per query: away from a reference code (untargeted) or toward
    a target code (targeted). Subclasses implement ``reference_codes`` and/or ``target_codes``
    and a ``code_loss``; the default loss is the linear one of PgA Eq. 10 / SAAT Eq. 13-14 /
    DHTA, ``-(1/K) <goal, h>`` with goal = target code or negated reference code."""

    def reference_codes(self, x: torch.Tensor, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        """The ±1 code (B, K) each query of an untargeted attack is pushed away from.
        ``knowledge`` is None only for an attack with ``needs_knowledge = False``."""
        raise NotImplementedError

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        """The ±1 code (B, K) each query of a targeted attack is pulled toward."""
        raise NotImplementedError

    def prepare(self, ctx: AttackContext) -> None:
        """The reference or target codes: the caller's ``codes=`` if given, else built from the
        knowledge; ``goal`` is the target code or the negated reference code."""
        given, device = ctx.given_codes, ctx.x.device
        knowledge = cast(Knowledge, ctx.knowledge)  # None only where needs_knowledge is False
        if self.targeted:
            if given is None:
                given = self.target_codes(ctx.required("target_labels"), knowledge, ctx.id_list).to(device).float()
            ctx.target = ctx.goal = given
        else:
            if given is None:
                given = self.reference_codes(ctx.x, ctx.labels, knowledge, ctx.id_list).to(device).float()
            ctx.reference, ctx.goal = given, -given

    def code_loss(self, h: torch.Tensor, ctx: AttackContext) -> torch.Tensor:
        return linear_code_loss(h, ctx.required("goal"))


def linear_code_loss(h: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """``-(1/K) <goal, h>`` per query: minimising it maximises the agreement with ``goal``
    (PgA Eq. 10 with goal = -pharos, SAAT Eq. 13-14, DHTA / THA with goal = the target code)."""
    return -(goal * h).mean(1)
