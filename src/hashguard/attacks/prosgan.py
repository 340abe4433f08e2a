"""ProS-GAN, prototype-supervised adversarial network (Wang et al., CVPR 2021), Eq. 3-13.

Threat model: white-box during training, targeted, one forward pass at attack time. ``fit``
trains, on the attacker's training split: (1) a PrototypeNet with the DPSH likelihood of the
prototype codes against the reference codes, a quantisation and a label-reconstruction term
(Eq. 3; ``codes.prototype``), then (2) a generator G(x, r_t) and a discriminator D against the
victim (Eq. 5-13; ``attacks.prosgan_networks``, with the public code's settings: 100 epochs, batch
24, Adam 1e-4, hash weight 5, reconstruction weight 50, LSGAN discriminator every third
iteration, widths 64, 6 residual blocks). The attack itself is one pass x_adv = G(x, r_t) for the
target label's representation r_t.

``bound`` picks how the output relates to the budget:

* ``"none"`` (default, the paper's method): no L-inf bound in training or at attack time; the
  images lie in [0, 1] and their distance to the clean images comes only from the reconstruction
  term. ``eps`` is not used. ``result.extra`` reports the perceptibility the paper reports (RMSE,
  Table 2) and the L2 and L-inf norms, so a record shows what budget the images really used.
* ``"tanh"``: x_adv = clamp(x + eps * tanh(.), 0, 1), trained and applied with the same
  differentiable bound, so every image lies in the eps-ball: the equal-budget comparison.

Which one a benchmark uses: hashguard's ``default`` protocol (docs/design.md#evaluation-protocol)
requires every attack to keep its images inside the eps-ball (8/255), so ``hashguard attack`` and
``hashguard bench`` under the default protocol run ProS-GAN with ``bound="tanh"`` unless the
user sets ``bound`` (``bench.protocols.Protocol.attack_params``). Projecting the unbounded
generator's output onto the ball at attack time would instead clip an image trained to be
judged unclipped, so the tanh bound, trained as it is applied, is the fair equal-budget variant.
``--protocol prosgan`` (ProS-GAN's own evaluation) runs the paper's ``bound="none"``.
``result.extra["fit_seconds"]`` is the training time, so a report can show the time per query
with and without training (PgA Table 3 counts training). It is not gradient-iterative, so it does
not use the shared loop: ``iterations`` is 1.

Example:
    >>> attack = create_attack("prosgan", model, targeted=True, bound="tanh").fit(knowledge, splits.train)
    >>> result = attack(x, y, target_labels=y_t, knowledge=knowledge)
    >>> result.extra["rmse"], result.extra["linf_max"]
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Dict, Optional, Tuple

import torch

from .._repr import dataclass_changes
from .context import AttackContext
from .prosgan_networks import BOUNDS, ProsGANConfig, ProsGANGenerator, check_bound, prosgan_generate, train_prosgan
from .prototype_attack import PrototypeCodeAttack
from .registry import register_attack
from .targets import unique_labels


@register_attack("prosgan")
class ProsGANAttack(PrototypeCodeAttack):
    """ProS-GAN: a generator trained to map (image, target label) to a targeted adversarial image.

    Args:
        bound: ``"none"`` (the paper: no L-inf budget, ``eps`` unused) or ``"tanh"`` (x + eps *
            tanh, inside the eps-ball); see the module docstring for which one a protocol uses.
        gan: overrides of :class:`~hashguard.attacks.prosgan_networks.ProsGANConfig`
            (e.g. ``{"epochs": 20}``).
        prototype: overrides of the PrototypeNet training settings (loss is ``"dpsh"``).
    """

    prototype_loss = "dpsh"

    fixed_steps = True

    def __init__(self, model, *, targeted=True, eps=8 / 255, steps=1, bound: str = "none",
                 gan: Optional[Dict[str, Any]] = None, **kwargs):
        if steps != 1:  # not a TypeError from passing steps twice (hashguard attack --steps)
            raise ValueError(f"prosgan attacks with one forward pass of its generator, so steps must be 1, got {steps}; "
                             "train the generator longer instead (gan={\"epochs\": N})")
        if bound not in BOUNDS:
            raise ValueError(f"bound must be 'none' (the paper: no budget) or 'tanh' (x + eps * tanh), got {bound!r}")
        super().__init__(model, targeted=targeted, eps=eps, steps=1, **kwargs)
        self.bound = bound
        check_bound(bound, self.eps)
        self._perceptibility: Dict[str, Any] = {}
        try:
            self.gan_config = replace(ProsGANConfig(seed=self.seed), **(gan or {}))
        except TypeError as err:
            raise ValueError(f"bad gan settings {gan!r}: {err}") from None
        self.gan_config.validate()
        self.generator: Optional[ProsGANGenerator] = None

    def repr_settings(self) -> Dict[str, Any]:
        settings = super().repr_settings()
        if self.bound != "none":
            settings = {**settings, "bound": self.bound}
        changed = dataclass_changes(self.gan_config, ProsGANConfig(seed=self.seed))
        return {**settings, "gan": changed} if changed else settings

    def fit(self, knowledge, train=None, *, progress=False):
        if train is None:
            raise ValueError("prosgan trains a generator on images: call fit(knowledge, splits.train)")
        knowledge = knowledge.to(self.model.device)
        if self.prototype_net is None:
            self.fit_prototype(knowledge, progress=progress)
        start = time.perf_counter()
        self.generator = train_prosgan(
            self.model, train, self.prototype_net, label_pool=unique_labels(knowledge.labels).to(self.model.device),
            eps=self.eps, bound=self.bound, config=self.gan_config, progress=progress,
        )
        self.fit_seconds += time.perf_counter() - start
        return self

    def run(self, ctx: AttackContext) -> Tuple[torch.Tensor, torch.Tensor]:
        """One generator pass instead of the shared loop: ``G(x, r_t)`` under ``self.bound``."""
        if self.generator is None:
            raise ValueError("prosgan has no trained generator: call attack.fit(knowledge, splits.train) first")
        x_adv = prosgan_generate(self.generator, self.prototype_net, ctx.x, ctx.required("target_labels"),
                                 eps=self.eps, bound=self.bound)
        if self.bound == "tanh":  # already inside; this only absorbs float rounding at the ball's edge
            x_adv = self.project(x_adv, ctx.x)
        self._add_perceptibility(x_adv, ctx.x)
        return x_adv, torch.ones(ctx.x.shape[0], dtype=torch.long)

    def _add_perceptibility(self, x_adv: torch.Tensor, x: torch.Tensor) -> None:
        """Accumulate per-image squared error, L2 and L-inf norms of ``x_adv - x`` over the call's batches."""
        d = (x_adv - x).detach().flatten(1).double()
        acc = self._perceptibility
        acc["n"] = acc.get("n", 0) + d.shape[0]
        acc["mse_sum"] = acc.get("mse_sum", 0.0) + float(d.pow(2).mean(1).sum())
        acc["l2_sum"] = acc.get("l2_sum", 0.0) + float(d.norm(dim=1).sum())
        linf = d.abs().amax(1) if d.shape[1] else torch.zeros(d.shape[0], dtype=torch.float64)
        acc["linf_sum"] = acc.get("linf_sum", 0.0) + float(linf.sum())
        acc["linf_max"] = max(acc.get("linf_max", 0.0), float(linf.max()) if linf.numel() else 0.0)

    def __call__(self, *args, **kwargs):
        self._perceptibility = {}
        return super().__call__(*args, **kwargs)

    def result_extra(self) -> Dict[str, Any]:
        """``fit_seconds``, ``bound`` and the perceptibility of the call's images: ``rmse`` (the
        paper's Table 2: the square root of the mean per-image MSE in [0, 1] pixels), the mean
        per-image ``l2`` and ``linf`` norms and the largest ``linf_max``."""
        extra: Dict[str, Any] = {"fit_seconds": self.fit_seconds, "bound": self.bound}
        acc = self._perceptibility
        n = acc.get("n", 0)
        if n:
            extra.update(rmse=math.sqrt(acc["mse_sum"] / n), l2=acc["l2_sum"] / n, linf=acc["linf_sum"] / n,
                         linf_max=acc["linf_max"])
        return extra
