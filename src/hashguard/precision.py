"""Mixed precision: the model's forward pass under ``torch.autocast``, everything else in fp32.

``--precision bf16|fp16|fp32`` (train, attack, defend, bench) and, in Python, the context manager
:func:`mixed_precision` select the precision of every model forward pass inside it:
:class:`~hashguard.models.HashModel` and :class:`~hashguard.models.WrappedModel` run their network
under ``torch.autocast(device_type, dtype)`` and return their pre-activation codes in fp32. So
what surrounds the model stays in fp32: the attack's perturbation, its L-inf / [0, 1] projection,
the tanh relaxation, the hashing and defense losses and their reductions, the optimiser's weights
(autocast casts the weights per operation; the master copy is fp32).

- ``bf16``: the range of fp32 with 8 bits of mantissa; no loss scaling needed. CPU autocast
  supports it (measured on the tiny cnn, one thread of an AVX-512 BF16 CPU: as fast as fp32;
  the gain is on GPUs).
- ``fp16``: training (``train``, ``defend``) scales the loss with ``torch.amp.GradScaler`` so
  small gradients do not underflow (:func:`grad_scaler`); attacks run unscaled (PGD's sign step
  and Adam do not depend on the gradient's scale, but a tiny image gradient can underflow to 0 in
  fp16, whereas bf16 has the range of fp32: prefer bf16 for attacks). CPU autocast supports fp16 in the PyTorch
  this package is tested with (2.14; 2.5x slower than fp32 on the tiny cnn on CPU); where a
  PyTorch lacks it :func:`check_precision` says so.
- ``fp32``: no autocast (the default; bit-for-bit the behaviour without this module).

The precision is a context variable (local to a thread or asyncio task), so code running
elsewhere at the same time keeps its own. Checkpoints and records note the precision they were
made with. Measured on the tiny test model (tests/test_precision.py): bf16 and fp32 give the
same sign for at least 95 % of the code bits of a trained model, and mAPs within 0.05.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator, Optional

from .errors import InputError

PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT = "fp32"
_PRECISION: contextvars.ContextVar[str] = contextvars.ContextVar("hashguard_precision", default=DEFAULT)


def _dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


def check_precision(name: Any, device: str = "cpu", *, label: str = "--precision") -> str:
    """``name`` if it is one of fp32, bf16, fp16 and this PyTorch can autocast to it on ``device``'s
    type; else :class:`InputError` naming the choices or the reason."""
    text = str(name).strip().lower() if isinstance(name, str) else None
    if text not in PRECISIONS:
        raise InputError(f"{label} must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if text == DEFAULT:
        return text
    import torch

    device_type = str(device).split(":")[0]
    try:
        available = torch.amp.is_autocast_available(device_type)
        if available:
            with torch.autocast(device_type, dtype=_dtype(text)):
                pass
    except (RuntimeError, ValueError, AssertionError):
        available = False
    if not available:
        raise InputError(f"{label} {text}: this PyTorch ({torch.__version__}) cannot autocast to {text} on "
                         f"{device_type}; use {label} fp32" + (" or bf16" if text == "fp16" else ""))
    return text


@contextlib.contextmanager
def mixed_precision(name: str = DEFAULT, device: str = "cpu") -> Iterator[str]:
    """Inside the block every model forward pass runs in precision ``name`` (checked for
    ``device``); yields the name. Blocks nest; the previous precision is restored on exit."""
    name = check_precision(name, device, label="precision")
    token = _PRECISION.set(name)
    try:
        yield name
    finally:
        _PRECISION.reset(token)


def current_precision() -> str:
    """The precision of the current block (``fp32`` outside any :func:`mixed_precision`)."""
    return _PRECISION.get()


def run_forward(forward: Callable[[], Any], device_type: str) -> Any:
    """``forward()`` under autocast to the current precision on ``device_type``; a half-precision
    tensor result comes back in fp32. Outside :func:`mixed_precision` it is just ``forward()``."""
    name = _PRECISION.get()
    if name == DEFAULT:
        return forward()
    import torch

    with torch.autocast(device_type, dtype=_dtype(name)):
        out = forward()
    if isinstance(out, torch.Tensor) and out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    return out


def grad_scaler(device: Any) -> Optional[Any]:
    """A ``torch.amp.GradScaler`` for fp16 training on ``device``, or None (fp32, bf16)."""
    if _PRECISION.get() != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(str(device).split(":")[0])


__all__ = ["DEFAULT", "PRECISIONS", "check_precision", "current_precision", "grad_scaler", "mixed_precision",
           "run_forward"]
