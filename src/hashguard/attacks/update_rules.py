"""The update rules of the attack engine: what is subtracted from the image at each iteration.

The engine minimises a per-query loss; after each gradient it subtracts ``rule(grad, rows, t)``
from the rows ``rows`` of the batch that are still running, then projects. Rules are chosen by
name (``optimizer=`` of every attack) from a small registry:

- ``"sign"``: PGD, ``step * sign(grad)``;
- ``"sgd"``: SGD with momentum on the image itself (HAG), ``buf = momentum * buf + grad``,
  ``lr * buf``;
- ``"adam"``: Adam on the image (SDHA), bias-corrected first and second moments,
  ``lr * m_hat / (sqrt(v_hat) + 1e-8)``.

A rule object is created for each run of the loop (one batch of queries) and keeps its buffers
(one row per query of the batch) itself, so queries that stop early keep their state untouched.
"""

from __future__ import annotations

from typing import Any, List, Tuple

import torch

from .._registry import Registry

UPDATE_RULES = Registry("optimizer")

Rows = Any  # a slice (every query still running) or a LongTensor of the running rows


def register_update_rule(name: str):
    """Class decorator registering an :class:`UpdateRule` under ``name``."""
    return UPDATE_RULES.register(name)


def list_update_rules() -> List[str]:
    return UPDATE_RULES.names()


def create_update_rule(name: str, like: torch.Tensor, *, step: float, lr: Any, momentum: float,
                       betas: Tuple[float, ...]) -> UpdateRule:
    """The rule ``name`` for a batch shaped like ``like``, with the attack's settings (each rule
    reads those it uses)."""
    return UPDATE_RULES.get(name)(like, step=step, lr=lr, momentum=momentum, betas=betas)


class UpdateRule:
    """One run's update rule; ``__call__(grad, rows, t)`` returns the step to subtract from
    ``x_adv[rows]`` given the loss gradient ``grad`` of those rows at iteration ``t``."""

    def __call__(self, grad: torch.Tensor, rows: Rows, t: int) -> torch.Tensor:
        raise NotImplementedError


@register_update_rule("sign")
class SignStep(UpdateRule):
    """PGD: ``step * sign(grad)``."""

    def __init__(self, like: torch.Tensor, *, step: float, **_: Any) -> None:
        self.step = step

    def __call__(self, grad: torch.Tensor, rows: Rows, t: int) -> torch.Tensor:
        return self.step * grad.sign()


@register_update_rule("sgd")
class MomentumStep(UpdateRule):
    """SGD with momentum on the image: ``buf = momentum * buf + grad``, step ``lr * buf``."""

    def __init__(self, like: torch.Tensor, *, lr: Any, momentum: float, **_: Any) -> None:
        self.lr, self.momentum = lr, momentum
        self.buf = torch.zeros_like(like)

    def __call__(self, grad: torch.Tensor, rows: Rows, t: int) -> torch.Tensor:
        self.buf[rows] = self.momentum * self.buf[rows] + grad
        return self.lr * self.buf[rows]


@register_update_rule("adam")
class AdamStep(UpdateRule):
    """Adam on the image, with bias correction at iteration ``t`` (0-based)."""

    def __init__(self, like: torch.Tensor, *, lr: Any, betas: Tuple[float, ...], **_: Any) -> None:
        self.lr, self.betas = lr, betas
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)

    def __call__(self, grad: torch.Tensor, rows: Rows, t: int) -> torch.Tensor:
        b1, b2 = self.betas
        self.m[rows] = b1 * self.m[rows] + (1 - b1) * grad
        self.v[rows] = b2 * self.v[rows] + (1 - b2) * grad * grad
        mhat = self.m[rows] / (1 - b1 ** (t + 1))
        vhat = self.v[rows] / (1 - b2 ** (t + 1))
        return self.lr * mhat / (vhat.sqrt() + 1e-8)


__all__ = ["AdamStep", "MomentumStep", "SignStep", "UPDATE_RULES", "UpdateRule", "create_update_rule",
           "list_update_rules", "register_update_rule"]
