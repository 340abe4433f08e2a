"""THA, targeted hashing attack with a prototype code (Wang et al., SIGIR 2021, "Targeted attack
and defense for deep hashing"), with the circle-loss PrototypeNet (``codes.prototype``).

Threat model: white-box, L-inf, targeted only. ``fit`` trains a PrototypeNet on the attacker's
reference set (label -> code, circle loss against the reference codes, 100 epochs x 300 steps,
Adam 1e-4); the target code is p = sign(PrototypeNet(y_t)), and the attack minimises
-(1/K) <p, h> by sign-PGD: T = 100, step 1/255, eps 8/255, no random start, with the relative
alpha schedule (SAAT's re-implementation; the THA code runs alpha = 1). A saved PrototypeNet can be
reused with ``prototype_path=``; a net that was not fitted is trained on first use.

Example:
    >>> attack = create_attack("tha", model, targeted=True).fit(knowledge)
    >>> result = attack(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Dict, Optional

from ..codes.prototype import PrototypeConfig, load_prototype_net, train_prototype_net
from .base import CodeAttack
from .registry import register_attack
from .targets import unique_labels


class PrototypeCodeAttack(CodeAttack):
    """A targeted attack toward the sign of a learned PrototypeNet code (THA, ProS-GAN)."""

    supports_untargeted = False
    prototype_loss = "circle"

    def __init__(self, model, *, prototype: Optional[Dict[str, Any]] = None, prototype_path=None, **engine):
        super().__init__(model, **engine)
        base = PrototypeConfig(loss=self.prototype_loss, seed=self.seed)
        try:
            self.prototype_config = replace(base, **(prototype or {}))
        except TypeError as err:
            raise ValueError(f"bad prototype settings {prototype!r}: {err}") from None
        self.prototype_net = None
        self.fit_seconds = 0.0
        if prototype_path is not None:
            self.prototype_net = load_prototype_net(prototype_path, map_location=model.device)

    def fit_prototype(self, knowledge, *, progress=False):
        start = time.perf_counter()
        self.prototype_net = train_prototype_net(
            knowledge.codes, knowledge.labels, label_pool=unique_labels(knowledge.labels).to(knowledge.codes.device),
            config=self.prototype_config, progress=progress,
        )
        self.fit_seconds += time.perf_counter() - start
        return self.prototype_net

    def fit(self, knowledge, train=None, *, progress=False):
        if self.prototype_net is None:
            self.fit_prototype(knowledge.to(self.model.device), progress=progress)
        return self

    def target_codes(self, target_labels, knowledge, ids):
        if self.prototype_net is None:
            self.fit(knowledge)
        net = self.prototype_net
        assert net is not None  # fitted above
        return net.codes(target_labels.to(next(net.parameters()).device)).to(target_labels.device)


@register_attack("tha")
class TargetedHashingAttack(PrototypeCodeAttack):
    """THA: PGD-100 toward the circle-loss prototype code of the target label."""

    def __init__(self, model, *, targeted=True, eps=8 / 255, step=1 / 255, steps=100, **kwargs):
        super().__init__(model, targeted=targeted, eps=eps, step=step, steps=steps, **kwargs)
