"""``HashModel``: backbone + linear hash layer + tanh, with input normalisation inside.

Contract (docs/design.md#hash-models): images are float NCHW in [0, 1]; ``forward(x, alpha)`` returns the
continuous relaxation ``tanh(alpha * logits)`` of shape (N, K) that hashing objectives and attacks
differentiate; ``encode(x)`` returns the sign codes in {-1, +1} (sign(0) = +1) computed in eval
mode under ``no_grad`` in batches, restoring the previous mode afterwards.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from .._params import Param, check_bits, check_value
from .._validation import check_images, to_model_dtype
from ..precision import run_forward
from .backbones import Backbone, create_backbone
from .modes import unit_range_vouched


def sign_codes(h: torch.Tensor) -> torch.Tensor:
    """Binarise continuous codes to {-1, +1} with sign(0) = +1 (same dtype as ``h``)."""
    return torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))


class HashModel(nn.Module):
    """A deep hashing network: ``tanh(alpha * W f((x - mean) / std))``.

    Args:
        backbone: a :class:`Backbone` (feature extractor, its width and its mean/std).
        bits: code length K.
        mean, std: per-channel normalisation applied inside ``forward``; default the backbone's.
        check_inputs: validate that inputs lie in [0, 1] in every forward pass (shape, channels
            and dtype are always checked). Attacks need not switch it off: their loop runs inside
            :func:`~hashguard.models.modes.inputs_in_unit_range`, where the projection already
            guarantees the range and the scan is skipped.
    """

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor
    backbone_name: str  # set by create_hash_model
    backbone_kwargs: Dict[str, Any]

    def __init__(
        self,
        backbone: Backbone,
        bits: int,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        *,
        check_inputs: bool = True,
    ) -> None:
        super().__init__()
        self.bits = check_bits(bits)  # 1 to 4096: before the hash layer is allocated
        self.features = backbone.features
        self.hash_layer = nn.Linear(backbone.out_features, self.bits)
        mean = backbone.mean if mean is None else mean
        std = backbone.std if std is None else std
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.check_inputs = check_inputs

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def channels(self) -> int:
        """Input channels (the length of the normalisation's mean)."""
        return int(self.mean.shape[1])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's features of the normalised images (N, D), below the hash layer."""
        check_images(x, channels=self.mean.shape[1], check_values=self.check_inputs and not unit_range_vouched())
        x = (to_model_dtype(x, self) - self.mean) / self.std
        if x.device.type == "cpu":
            # oneDNN's NHWC convolutions: about 1.4-1.7x faster forward + backward on CPU (measured
            # on the cnn backbone, 2 cores); same values, only the memory layout differs
            x = x.contiguous(memory_format=torch.channels_last)
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The hash layer's pre-activation output (N, K); inside
        :func:`hashguard.precision.mixed_precision` computed under autocast and returned in fp32."""
        return run_forward(lambda: self.hash_layer(self.embed(x)), x.device.type)

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Continuous codes ``tanh(alpha * logits)`` in (-1, 1), shape (N, K)."""
        return torch.tanh(alpha * self.logits(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Sign codes in {-1, +1} (float32, on the model's device), in eval mode, batched."""
        check_images(x, channels=self.mean.shape[1], check_values=True)
        was_training = self.training
        self.eval()
        try:
            device = self.device
            parts = [sign_codes(self.logits(x[i : i + batch_size].to(device))) for i in range(0, x.shape[0], batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.bits, device=self.device)


def create_hash_model(
    backbone: str = "cnn",
    bits: int = 32,
    *,
    pretrained: bool = False,
    backbone_kwargs: Optional[Dict[str, Any]] = None,
) -> HashModel:
    """Build a :class:`HashModel` from a registered backbone name."""
    check_bits(bits)  # before the backbone is built (or its weights downloaded)
    check_value("pretrained", Param("bool"), pretrained)  # "no" is not false
    model = HashModel(create_backbone(backbone, pretrained=pretrained, **(backbone_kwargs or {})), bits)
    # recorded so that save_checkpoint can describe the architecture without being told
    model.backbone_name = backbone
    model.backbone_kwargs = dict(backbone_kwargs or {})
    return model


@torch.no_grad()
def encode_dataset(
    model: HashModel,
    dataset: Any,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "encoding",
) -> torch.Tensor:
    """Sign codes of every image of an ``ImageDataset`` (float32 ±1, on the CPU), in order."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .contract import check_hash_model

    check_hash_model(model, where="encode_dataset")
    codes = []
    if getattr(dataset, "in_memory", False):  # in-memory (or a subset of one): slicing beats a DataLoader
        n = len(dataset)
        batches = (dataset.batch(slice(i, i + batch_size)) for i in range(0, n, batch_size))
        total = (n + batch_size - 1) // batch_size
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        batches = (images for images, _, _ in loader)
        total = len(loader)
    for images in tqdm(batches, total=total, desc=desc, disable=not progress, leave=False):
        codes.append(model.encode(images, batch_size=batch_size).cpu())
    return torch.cat(codes) if codes else torch.empty(0, model.bits)
