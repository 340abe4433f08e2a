"""Targeted attacks toward a learned prototype code: the base of THA and ProS-GAN.

A PrototypeNet (``codes.prototype``) maps a label to a code; it is trained in ``fit`` on the
attacker's reference set (circle loss for THA, the DPSH likelihood for ProS-GAN), or loaded
with ``prototype_path=``. The target code of a query is p = sign(PrototypeNet(y_t)). The trained
net is state of the attack object (reused by every call); ``fit_seconds`` adds up its training
time.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, cast

import torch

from .._repr import dataclass_changes
from ..codes.prototype import PrototypeConfig, PrototypeNet, load_prototype_net, train_prototype_net
from .base import CodeAttack
from .knowledge import Knowledge
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
        self.prototype_path = prototype_path
        self.fit_seconds = 0.0
        if prototype_path is not None:
            self.prototype_net = load_prototype_net(prototype_path, map_location=model.device)

    def repr_settings(self) -> Dict[str, Any]:
        changed = dataclass_changes(self.prototype_config, PrototypeConfig(loss=self.prototype_loss, seed=self.seed))
        return {"prototype": changed} if changed else {}

    def fit_prototype(self, knowledge: Knowledge, *, progress: bool = False) -> PrototypeNet:
        start = time.perf_counter()
        self.prototype_net = train_prototype_net(
            knowledge.codes, knowledge.labels, label_pool=unique_labels(knowledge.labels).to(knowledge.codes.device),
            config=self.prototype_config, progress=progress,
        )
        self.fit_seconds += time.perf_counter() - start
        return self.prototype_net

    def fit(self, knowledge: Knowledge, train: Any = None, *, progress: bool = False) -> PrototypeCodeAttack:
        if self.prototype_net is None:
            self.fit_prototype(knowledge.to(self.model.device), progress=progress)
        return self

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        if self.prototype_net is None:  # not fitted: fit on first use (the subclass's fit)
            self.fit(knowledge)
        net = cast(PrototypeNet, self.prototype_net)
        return net.codes(target_labels.to(next(net.parameters()).device)).to(target_labels.device)


__all__ = ["PrototypeCodeAttack"]
