"""The hashing-model contract every layer relies on, and the check that tells a user how to meet it.

Anything that takes a model (attacks, defenses, ``encode_dataset``, ``Knowledge.from_model``, the
benchmark) takes an ``nn.Module`` with:

    bits                 int, the code length K
    device               torch.device of its parameters
    channels             int, input channels (optional: None skips the channel check)
    logits(x)            (N, K) pre-activation codes of images x, float NCHW in [0, 1]
    forward(x, alpha)    tanh(alpha * logits(x)), the relaxation objectives and attacks differentiate
    encode(x)            sign codes in {-1, +1} (sign(0) = +1), eval mode, no_grad, batched

:class:`~hashguard.models.HashModel` (a backbone plus a linear hash layer, built by hashguard) and
:func:`~hashguard.models.wrap_model` (any user network, no layer or weight added) both implement it;
a user may also implement it directly. A plain network without it is refused with a message that
says to wrap it, instead of an ``AttributeError`` deep inside an attack.
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

REQUIRED = ("bits", "logits", "encode")


def check_hash_model(model: Any, *, where: str = "this function") -> None:
    """Raise ``ValueError`` unless ``model`` has the hashing-model contract above."""
    if isinstance(model, nn.Module) and all(hasattr(model, name) for name in REQUIRED):
        return
    if isinstance(model, nn.Module):
        missing = [name for name in REQUIRED if not hasattr(model, name)]
        raise ValueError(
            f"{where} needs a hashing model, but got a plain torch module ({type(model).__name__}) without "
            f"{', '.join(missing)}. Wrap your network first: model = hashguard.wrap_model(net, "
            "input_norm='imagenet' | 'none' | (mean, std)) - it adds no layer and no weight"
        )
    raise ValueError(
        f"{where} needs a hashing model (a torch.nn.Module: a HashModel, or your network wrapped with "
        f"hashguard.wrap_model), got {type(model).__name__}"
    )


def input_channels(model: Any) -> Optional[int]:
    """The channel count ``model`` expects (None when it does not say)."""
    channels = getattr(model, "channels", None)
    return None if channels is None else int(channels)


__all__ = ["check_hash_model", "input_channels"]
