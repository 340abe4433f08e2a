"""ProS-GAN, prototype-supervised adversarial network (Wang et al., CVPR 2021), Eq. 3-13.

Threat model: white-box during training, targeted, one forward pass at attack time. ``fit``
trains, on the attacker's training split: (1) a PrototypeNet with the DPSH likelihood of the
prototype codes against the reference codes, a quantisation and a label-reconstruction term
(Eq. 3; ``codes.prototype``), then (2) a generator G(x, r_t) and a discriminator D against the
victim (Eq. 5-13; ``attacks.prosgan_networks``: 100 epochs, batch 24, Adam 1e-4, reconstruction
weight 50, D every third iteration). The attack itself is x_adv = G(x, r_t) for the target
label's representation r_t, projected onto the eps-ball (8/255) and [0, 1] (the paper has no
budget; our protocol requires one). ``result.extra["fit_seconds"]`` is the training time, so a
report can show the time per query with and without training (PgA Table 3 counts training).
It is not gradient-iterative, so it does not use the shared loop: ``iterations`` is 1.

Example:
    >>> attack = create_attack("prosgan", model, targeted=True).fit(knowledge, splits.train)
    >>> result = attack(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Dict, Optional, Tuple

import torch

from .._repr import dataclass_changes
from .context import AttackContext
from .prosgan_networks import ProsGANConfig, ProsGANGenerator, prosgan_generate, train_prosgan
from .prototype_attack import PrototypeCodeAttack
from .registry import register_attack
from .targets import unique_labels


@register_attack("prosgan")
class ProsGANAttack(PrototypeCodeAttack):
    """ProS-GAN: a generator trained to map (image, target label) to a targeted adversarial image.

    Args:
        gan: overrides of :class:`~hashguard.attacks.prosgan_networks.ProsGANConfig`
            (e.g. ``{"epochs": 20}``).
        prototype: overrides of the PrototypeNet training settings (loss is ``"dpsh"``).
    """

    prototype_loss = "dpsh"

    fixed_steps = True

    def __init__(self, model, *, targeted=True, eps=8 / 255, steps=1, gan: Optional[Dict[str, Any]] = None, **kwargs):
        if steps != 1:  # not a TypeError from passing steps twice (hashguard attack --steps)
            raise ValueError(f"prosgan attacks with one forward pass of its generator, so steps must be 1, got {steps}; "
                             "train the generator longer instead (gan={\"epochs\": N})")
        super().__init__(model, targeted=targeted, eps=eps, steps=1, **kwargs)
        try:
            self.gan_config = replace(ProsGANConfig(seed=self.seed), **(gan or {}))
        except TypeError as err:
            raise ValueError(f"bad gan settings {gan!r}: {err}") from None
        self.gan_config.validate()
        self.generator: Optional[ProsGANGenerator] = None

    def repr_settings(self) -> Dict[str, Any]:
        settings = super().repr_settings()
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
            eps=self.eps, config=self.gan_config, progress=progress,
        )
        self.fit_seconds += time.perf_counter() - start
        return self

    def run(self, ctx: AttackContext) -> Tuple[torch.Tensor, torch.Tensor]:
        """One generator pass instead of the shared loop: ``G(x, r_t)``, projected."""
        if self.generator is None:
            raise ValueError("prosgan has no trained generator: call attack.fit(knowledge, splits.train) first")
        x_adv = prosgan_generate(self.generator, self.prototype_net, ctx.x, ctx.required("target_labels"), eps=self.eps)
        return self.project(x_adv, ctx.x), torch.ones(ctx.x.shape[0], dtype=torch.long)

    def result_extra(self) -> Dict[str, Any]:
        return {"fit_seconds": self.fit_seconds}
