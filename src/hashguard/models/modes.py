"""Scoped model states: eval mode with frozen parameters, and inputs vouched to lie in [0, 1].

Both are context managers so that whatever they change is undone on exit, including when the
block raises, and so that nobody outside a model sets attributes on it:

- :func:`eval_frozen` puts a module in eval mode and sets ``requires_grad=False`` on every
  parameter (an attack differentiates with respect to the image only; ProS-GAN's generator is
  trained through a fixed victim), then restores the previous mode and each parameter's own flag.
- :func:`inputs_in_unit_range` marks a block in which the caller guarantees that every image it
  passes to a model lies in [0, 1] (attack iterates, projected after every step), so
  :class:`~hashguard.models.HashModel` and :class:`~hashguard.models.WrappedModel` skip their
  per-call range scan. It is a context variable, local to the thread (and asyncio task): a model
  used elsewhere at the same time still checks its inputs. ``encode`` always checks.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from torch import nn

_UNIT_RANGE_VOUCHED: contextvars.ContextVar[bool] = contextvars.ContextVar("hashguard_unit_range_vouched", default=False)


@contextlib.contextmanager
def eval_frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter of ``module`` inside the block;
    the previous mode and every parameter's flag are restored on exit (also on an exception)."""
    was_training = module.training
    flags = [p.requires_grad for p in module.parameters()]
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)


@contextlib.contextmanager
def inputs_in_unit_range() -> Iterator[None]:
    """Inside the block the caller vouches that every image given to a model lies in [0, 1], so
    models skip the value scan of their input check (shape, channels and dtype are still checked)."""
    token = _UNIT_RANGE_VOUCHED.set(True)
    try:
        yield
    finally:
        _UNIT_RANGE_VOUCHED.reset(token)


def unit_range_vouched() -> bool:
    """Whether the current block is inside :func:`inputs_in_unit_range`."""
    return _UNIT_RANGE_VOUCHED.get()


__all__ = ["eval_frozen", "inputs_in_unit_range", "unit_range_vouched"]
