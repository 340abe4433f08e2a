"""``wrap_model``: give a user's own hashing network the contract every hashguard layer takes.

Most users arrive with a network of their own, written the DeepHash-pytorch way (features, a
``Linear`` hash layer, perhaps a final ``tanh``; mean/std normalisation done in their data
pipeline) and its ``state_dict``. ``wrap_model(net, input_norm=...)`` returns a
:class:`WrappedModel` that

- adds no layer and no weight: ``logits`` is the network's own output (the code tensor picked by
  ``select`` from a tuple or dict), and the wrapper's ``state_dict`` is the network's with the
  prefix ``module.`` (the normalisation constants are not saved); ``wrapped.module`` is the
  network itself, so a defended copy loads back into the user's class;
- moves the normalisation inside: hashguard feeds images in [0, 1] (eps = 8/255 means 8/255 in
  pixel units) and the wrapper applies ``(x - mean) / std`` before the network;
- probes one batch when it is built: it infers the code length K and the channel count, checks
  that the output is a finite (N, K) tensor, and that ``encode(x) == sign(net(x))``, so a wrong
  normalisation, output or ``select`` fails here with a message instead of giving plausible,
  wrong numbers later.

``output="logits"`` (default): the network returns pre-activation codes; ``forward(x, alpha) =
tanh(alpha * net(x))``. ``output="tanh"``: the network already ends in tanh; the wrapper recovers
the pre-activation as ``atanh(net(x))`` (clamped to |h| <= 1 - 1e-6), so ``forward(x, 1) ==
net(x)`` and the attacks' tanh-scale schedule ``forward(x, alpha) = tanh(alpha * atanh(net(x)))``
acts as it does on a logits network; ``encode`` is ``sign(net(x))`` either way.

Example::

    net = MyHashNet(); net.load_state_dict(torch.load("w.pth", weights_only=True))
    model = hashguard.wrap_model(net, input_norm="imagenet", output="tanh", example=images[:2])
    codes = model.encode(images)            # ±1, shape (N, K)
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .._validation import check_images, to_model_dtype
from ..precision import run_forward
from .backbones import IMAGENET_MEAN, IMAGENET_STD
from .hash_model import sign_codes
from .modes import unit_range_vouched

OUTPUTS = ("logits", "tanh")
NORMS = ("imagenet", "none")
PROBE_CHANNELS = (3, 1)
PROBE_SIZES = (224, 32, 28, 64, 56, 96, 128, 256, 299)
TANH_CLAMP = 1.0 - 1e-6

InputNorm = Union[str, Tuple[Sequence[float], Sequence[float]]]
Select = Union[None, int, str, Callable[[Any], torch.Tensor]]


def parse_input_norm(value: InputNorm) -> Tuple[Optional[Tuple[float, ...]], Optional[Tuple[float, ...]], str]:
    """``"imagenet"``, ``"none"``, ``(mean, std)`` or the CLI text ``"0.5,0.5,0.5/0.25,0.25,0.25"``
    -> ``(mean, std, description)``; mean and std are None for ``"none"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "imagenet":
            return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), "imagenet"
        if text == "none":
            return None, None, "none"
        parsed = None
        if "/" in text:
            mean_text, std_text = text.split("/", 1)
            try:
                parsed = ([float(v) for v in mean_text.split(",")], [float(v) for v in std_text.split(",")])
            except ValueError:
                parsed = None
        if parsed is None:
            raise ValueError(
                f"input_norm {text!r} is not 'imagenet', 'none' or MEAN/STD with comma-separated per-channel "
                "values (e.g. 0.5,0.5,0.5/0.25,0.25,0.25)"
            )
        value = parsed
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(
            f"input_norm must be 'imagenet', 'none' or a (mean, std) pair of per-channel sequences, got {value!r}"
        )
    pair: Any = value  # also a (scalar, scalar) pair, which the annotation does not spell out
    try:
        mean = tuple(float(v) for v in (pair[0] if isinstance(pair[0], (list, tuple)) else [pair[0]]))
        std = tuple(float(v) for v in (pair[1] if isinstance(pair[1], (list, tuple)) else [pair[1]]))
    except (TypeError, ValueError):
        raise ValueError(f"input_norm (mean, std) must hold numbers, got {value!r}") from None
    if len(mean) != len(std):
        raise ValueError(f"input_norm mean has {len(mean)} values but std has {len(std)}; give one per channel")
    if not all(math.isfinite(v) for v in mean + std) or not all(s > 0 for s in std):
        raise ValueError(f"input_norm needs finite means and positive standard deviations, got mean {mean}, std {std}")
    text = ",".join(f"{v:g}" for v in mean) + "/" + ",".join(f"{v:g}" for v in std)
    return mean, std, text


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} items (" + ", ".join(_describe(o) for o in out) + ")"
    if isinstance(out, dict):
        return "a dict (" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in out.items()) + ")"
    return f"a {type(out).__name__}"


class WrappedModel(nn.Module):
    """A user's hashing network with hashguard's model contract (see :func:`wrap_model`).

    Attributes:
        module: the user's network, unchanged (train it, save ``module.state_dict()``).
        bits: code length K, inferred by the probe.
        channels: input channel count, inferred by the probe.
        input_shape: the (C, H, W) the probe ran at.
        output, input_norm: as given (``input_norm`` as text: imagenet, none or MEAN/STD).
    """

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, module: nn.Module, *, mean, std, input_norm: str, output: str, select: Select) -> None:
        super().__init__()
        self.module = module
        self.output = output
        self.select = select
        self.input_norm = input_norm
        self.check_inputs = True
        self.bits = 0
        self.channels: Optional[int] = None if mean is None or len(mean) == 1 else len(mean)
        self.input_shape: Optional[Tuple[int, ...]] = None
        self.channels_last = False  # set by the probe: the network accepts NHWC tensors (faster on CPU)
        self.normalise = mean is not None
        shape = (1, -1, 1, 1)
        # not persistent: the wrapper's state_dict is exactly the user's network's (prefix module.)
        self.register_buffer("mean", torch.tensor(mean if mean else (0.0,), dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std if std else (1.0,), dtype=torch.float32).view(shape), persistent=False)

    @property
    def device(self) -> torch.device:
        for tensor in self.module.parameters():
            return tensor.device
        return self.mean.device

    def _pick(self, out: Any) -> torch.Tensor:
        select = self.select
        if select is not None:
            try:
                out = select(out) if callable(select) else out[select]
            except (IndexError, KeyError, TypeError) as err:
                raise ValueError(
                    f"select={select!r} cannot pick the codes out of the network's output, {_describe(out)} "
                    f"({type(err).__name__}: {err}); pass the index (tuple) or key (dict) of the code tensor"
                ) from None
        if not isinstance(out, torch.Tensor):
            raise ValueError(
                f"the network returns {_describe(out)}, not one code tensor; pass select=INDEX (tuple/list) or "
                "select='KEY' (dict) to wrap_model (--select on the command line) to pick the (N, K) codes"
            )
        return out

    def logits(self, x: torch.Tensor, *, exact: bool = False) -> torch.Tensor:
        """The network's pre-activation codes (N, K) of images ``x`` in [0, 1].

        On CPU the images go to the network in channels-last memory layout when the probe found
        that the network accepts it (oneDNN's NHWC convolutions: about 1.3x faster attack loops;
        the values differ only by float rounding). ``exact=True`` (what ``encode`` uses) keeps the
        layout the network was written for, so codes are bit-identical to ``sign(net(x))``."""
        check_images(x, channels=self.channels, check_values=self.check_inputs and not unit_range_vouched())
        x = to_model_dtype(x, self.module)
        if self.normalise:
            x = (x - self.mean) / self.std
        if self.channels_last and not exact and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        h = run_forward(lambda: self._pick(self.module(x)), x.device.type)  # autocast: hashguard.precision
        if h.dim() != 2 or h.shape[0] != x.shape[0]:
            raise ValueError(
                f"the network's codes must have shape (N, K) = ({x.shape[0]}, K), got {tuple(h.shape)}; "
                "flatten them in the network, or pick the code tensor with select="
            )
        if self.output == "tanh":
            h = torch.atanh(h.clamp(-TANH_CLAMP, TANH_CLAMP))
        return h

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """``tanh(alpha * logits(x))``; equals the network's output at alpha = 1 for ``output="tanh"``."""
        return torch.tanh(alpha * self.logits(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Sign codes in {-1, +1} (float32, on the model's device), in eval mode, batched."""
        check_images(x, channels=self.channels, check_values=True)
        was_training = self.training
        self.eval()
        try:
            device = self.device
            parts = []
            for i in range(0, x.shape[0], batch_size):
                h = self.logits(x[i : i + batch_size].to(device), exact=True).float()
                if not bool(torch.isfinite(h).all()):
                    raise ValueError(
                        "the network produced non-finite (NaN or inf) codes; check its weights and that input_norm "
                        "matches the normalisation it was trained with"
                    )
                parts.append(sign_codes(h))
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.bits, device=self.device)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, channels={self.channels}, input_norm={self.input_norm!r}, output={self.output!r}"


def _probe_batches(model: WrappedModel, example, input_shape):
    """Candidate probe batches: the given images, the given shape, or common shapes in turn."""
    if example is not None:
        example = torch.as_tensor(example)
        check_images(example, channels=None)
        if example.shape[0] == 0:
            raise ValueError("example= must hold at least one image")
        yield example[:2]
        return
    gen = torch.Generator().manual_seed(0)
    if input_shape is not None:
        if len(tuple(input_shape)) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
        yield torch.rand((2, *map(int, input_shape)), generator=gen)
        return
    channels = (model.channels,) if model.channels is not None else PROBE_CHANNELS
    for size in PROBE_SIZES:
        for c in channels:
            yield torch.rand((2, c, size, size), generator=gen)


def wrap_model(
    module: nn.Module,
    *,
    input_norm: InputNorm,
    output: str = "logits",
    select: Select = None,
    example: Optional[torch.Tensor] = None,
    input_shape: Optional[Sequence[int]] = None,
) -> WrappedModel:
    """Wrap a user's hashing network so every hashguard attack, defense and metric takes it.

    Args:
        module: the network (an ``nn.Module``) mapping normalised images to codes; no layer or
            weight is added.
        input_norm: the normalisation the network was trained with, applied inside the wrapper:
            ``"imagenet"`` (mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225), ``"none"`` (the
            network takes [0, 1] pixels), or ``(mean, std)`` per channel. Required: a forgotten
            normalisation gives plausible, wrong numbers, so there is no default.
        output: ``"logits"`` (pre-activation codes) or ``"tanh"`` (the network ends in tanh; see
            the module docstring for how the tanh scale alpha then applies).
        select: picks the code tensor out of a tuple / list (an index), a dict (a key) or any
            output (a callable ``out -> tensor``); None when the network returns the tensor.
        example: a few images in [0, 1] (N, C, H, W) of the user's data to probe with (best: it
            also checks the image size); else ``input_shape=(C, H, W)``; else common shapes
            (channels 3 and 1, sizes 224, 32, 28, ...) are tried.

    Returns:
        :class:`WrappedModel`, in eval mode on the module's device.

    Raises:
        ValueError: a bad argument, or the probe failed (the network raises on the probe batch,
            returns something other than one finite (N, K) tensor, or its codes depend on whether
            it is called through the wrapper).
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"wrap_model needs a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, WrappedModel) or all(hasattr(module, n) for n in ("bits", "logits", "encode")):
        raise ValueError(f"{type(module).__name__} already has the hashing-model contract; use it without wrap_model")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r} ('tanh' if the network ends in tanh)")
    if select is not None and not (callable(select) or isinstance(select, (int, str))):
        raise ValueError(f"select must be an index, a key or a callable, got {select!r}")
    mean, std, norm_text = parse_input_norm(input_norm)
    model = WrappedModel(module, mean=mean, std=std, input_norm=norm_text, output=output, select=select)
    try:
        model.to(next(module.parameters()).device)
    except StopIteration:
        pass
    model.eval()
    failures = []
    for batch in _probe_batches(model, example, input_shape):
        batch = batch.to(model.device)
        try:
            with torch.no_grad():
                raw = model.module((batch - model.mean) / model.std if model.normalise else batch)
        except Exception as err:  # the user's network rejects this shape: try the next one
            failures.append((tuple(batch.shape[1:]), f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}"))
            continue
        _check_probe(model, batch, raw)
        return model
    if example is not None or input_shape is not None:
        shape, error = failures[0]
        raise ValueError(
            f"the network fails on the probe images of shape (C, H, W) = {shape}: {error}. Check that the "
            "images have the size and channel count the network was built for (--image-size N resizes a "
            "dataset read from disk)"
        )
    raise ValueError(
        "the network fails on every probe shape tried (" + "; ".join(f"{s}: {e}" for s, e in failures[:3])
        + ", ...); pass example=images or input_shape=(C, H, W) of the data it was built for"
    )


def _check_probe(model: WrappedModel, batch: torch.Tensor, raw: Any) -> None:
    h = model._pick(raw)
    if h.dim() != 2 or h.shape[0] != batch.shape[0] or h.shape[1] < 1:
        hint = " (did you pass a classifier's output, or forget to flatten?)" if h.dim() != 2 else ""
        raise ValueError(
            f"the network must return codes of shape (N, K); for {batch.shape[0]} probe images of shape "
            f"{tuple(batch.shape[1:])} it returned {tuple(h.shape)}{hint}"
        )
    if not h.is_floating_point():
        raise ValueError(f"the network's codes must be floating point (logits or tanh outputs), got {h.dtype}")
    if not bool(torch.isfinite(h).all()):
        raise ValueError(
            "the network returned non-finite (NaN or inf) codes on the probe images; check its weights "
            "and input_norm"
        )
    if model.output == "tanh" and float(h.detach().abs().max()) > 1.0:
        raise ValueError(
            f"output='tanh' but the network's codes reach {float(h.abs().max()):.3g}, outside [-1, 1]; "
            "use output='logits' for a network without a final tanh"
        )
    if model.output == "logits" and h.shape[1] > 1 and bool((h >= 0).all()):
        warnings.warn(
            f"every one of the {h.shape[1]} code values is >= 0 on the probe images, so every code would be all +1: "
            "this looks like ReLU features or probabilities, not hash codes; check select= (--select) and output=",
            stacklevel=3,
        )
    model.bits = int(h.shape[1])
    model.channels = int(batch.shape[1])
    model.input_shape = tuple(int(v) for v in batch.shape[1:])
    codes = model.encode(batch)
    if not torch.equal(codes, sign_codes(h.detach().float())):
        raise ValueError(
            "encode(x) differs from sign(network(x)) on the probe images: the network is not deterministic "
            "in eval mode (dropout or random layers left on?)"
        )
    model.channels_last = _accepts_channels_last(model, batch, h.detach().float())
    if batch.shape[0] > 1:
        single = torch.cat([model.encode(batch[i : i + 1]) for i in range(batch.shape[0])])
        if not torch.equal(codes, single):
            warnings.warn(
                "the network's codes of an image depend on the rest of its batch in eval mode; attacks "
                "assume they do not (batch results then differ from per-image results)",
                stacklevel=3,
            )


def _accepts_channels_last(model: WrappedModel, batch: torch.Tensor, h: torch.Tensor) -> bool:
    """Whether the network gives the same codes on channels-last input (a ``.view`` after the
    convolutions, common in DeepHash-style code, rejects it; then the layout is left alone)."""
    x = (batch - model.mean) / model.std if model.normalise else batch
    try:
        with torch.no_grad():
            out = model._pick(model.module(x.contiguous(memory_format=torch.channels_last))).float()
    except Exception:
        return False
    return out.shape == h.shape and bool(torch.allclose(out, h, rtol=1e-3, atol=1e-4))


__all__ = ["OUTPUTS", "WrappedModel", "parse_input_norm", "wrap_model"]
