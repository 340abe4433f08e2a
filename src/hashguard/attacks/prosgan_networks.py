"""ProS-GAN networks and training (Wang et al., CVPR 2021, "Prototype-supervised adversarial
network for targeted attack of deep hashing"), Sec. 3.3-3.4, Eq. 5-13.

ProS-GAN is a generative targeted attack: a prototype network (``hashguard.codes.prototype``)
maps a target label ``y_t`` to a semantic representation ``r_t`` and a prototype code ``h_t``; a
conditional generator ``G(x, r_t)`` turns an image into an adversarial image whose hash code
should equal ``p = sign(h_t)``; a discriminator ``D`` keeps the generated images realistic and of
the target category. This module holds the two networks, the training loop and the generation
function. It follows the paper and the authors' public code (xunguangwang/ProS-GAN, read for
behaviour only; see docs/methods.md#pros-gan).

Architecture (any square image size divisible by 4, at least 8):

* :class:`ProsGANGenerator` (Sec. 3.3, "generator"). A label decoder: ``Linear(F -> 128 x 14 x
  14)`` + ReLU, then stride-2 transposed convolutions (kernel 4, InstanceNorm, ReLU, halving the
  channels) ``round(log2(S / 14))`` times (4 at 224 px, as the paper, 2 at 56 px, 0 at 16 px), a
  bilinear resize to ``S`` when ``S / 14`` is not a power of two, and a 3x3 convolution to
  ``channels`` maps ``x_t``. The FC's size does not grow with the image (12.8 M weights for
  ``F = 512``). An encoder-decoder on ``concat([x_t, 2x - 1])``: 7x7 convolution (width ``w``,
  64 in the paper's code) + InstanceNorm + ReLU, two stride-2 4x4 convolutions (``2w``, ``4w``),
  ``res_blocks`` (6) residual blocks, half in the encoder and half in the decoder (conv-IN-ReLU-
  conv-IN + skip), two transposed up-convolutions back to ``w``, concatenation with the scaled
  input image and a 3x3 convolution to ``channels`` with Tanh: the raw map ``t`` in [-1, 1].
* :class:`ProsGANDiscriminator` (Sec. 3.3, "discriminator"): a StarGAN PatchGAN of stride-2 4x4
  spectral-normalised convolutions with LeakyReLU(0.01), doubling the width from ``w`` (64),
  while the map is at least 14 pixels (5 layers at 224 px, 2 at 56 or 28 px), then a bias-free
  convolution whose kernel covers the remaining map (7 at 224 px) to ``C + 1`` raw outputs: the
  first ``C`` are the categories, the last the "fake" flag. No Sigmoid: the public code trains it
  as an LSGAN on raw outputs (the paper's text mentions a Sigmoid layer; the code has none).

Output bound (``bound``), from the raw map ``t``:

* ``"none"``, the paper's: ``x_adv = (t + 1) / 2``, inside [0, 1] by construction and with no
  L-inf budget. Imperceptibility comes only from the reconstruction term (the paper's Table 2
  reports RMSE 1.9-2.2e-2); the attack records the RMSE, L2 and L-inf it produces.
* ``"tanh"``, a differentiable L-inf bound for equal-budget comparisons: ``x_adv = clamp(x + eps
  * t, 0, 1)``; every pixel keeps a gradient from every term (unlike a hard clamp of ``G(x)`` onto
  the ball, whose gradient is zero outside it).

Objectives (Eq. 5-13), with ``x_adv`` the bounded output and ``p = sign(h_t)``:

* Eq. 7, Hamming term: ``J_ham = 1 - mean_k(F(x_adv) * p)``, averaged over the batch, where ``F``
  is the victim's continuous code; gradients flow through the frozen victim.
* Eq. 8, reconstruction: ``J_re = mean((2 x_adv - 1 - (2x - 1))^2)``, on the generator's [-1, 1]
  scale as the public code computes it (4 times the MSE in [0, 1] pixels).
* Eq. 9-10, adversarial term for ``G``: ``J_adv = MSE(D(x_adv), [y_t, 0])`` (least squares; flag
  0 means "real").
* Eq. 5: ``L_G = hash_weight * J_ham + rec_weight * J_re + adv_weight * J_adv``.
* Eq. 11-13: ``L_D = (MSE(D(x), [y, 0]) + MSE(D(x_adv), [y_t, 1])) / 2`` (real flag 0, fake flag 1,
  the public code's convention).

Hyper-parameters (:class:`ProsGANConfig`, the public code's): 100 epochs (50 at a constant
learning rate, 50 with a linear decay to 0), batch 24, Adam (lr 1e-4, betas (0.5, 0.999)) for
both networks, ``hash_weight = 5`` (Eq. 5 writes 1; the code uses 5), ``rec_weight = alpha = 50``
(NUS-WIDE, MS-COCO; the code uses 100 on FLICKR-25K: pass ``rec_weight=100`` there), ``adv_weight =
beta = 1``, ``D`` updated every third iteration, widths 64, 6 residual blocks. Training targets are
drawn per image uniformly, with replacement, from the unique label rows (the code's rule, which
lets a target share labels with the source image); ``target_rule="zero-overlap"`` draws only rows
that share no label with the image, as the default evaluation protocol's targets do.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .._validation import check_images, check_labels
from ..data.batching import iterate_batches, load_images
from ..models.modes import eval_frozen, inputs_in_unit_range

__all__ = [
    "BOUNDS",
    "ProsGANConfig",
    "ProsGANDiscriminator",
    "ProsGANGenerator",
    "bounded_output",
    "check_bound",
    "draw_training_targets",
    "label_upsamplings",
    "prosgan_generate",
    "train_prosgan",
]


def _check_image_size(image_size: int) -> int:
    size = int(image_size)
    if size < 8 or size % 4 != 0:
        raise ValueError(
            f"ProS-GAN needs square images whose side is divisible by 4 and at least 8 pixels, got {image_size}; "
            "resize the images (e.g. to 224 or 56)"
        )
    return size


BOUNDS = ("none", "tanh")
TARGET_RULES = ("any", "zero-overlap")
LABEL_SIZE = 14  # the label decoder's FC map is 14 x 14 (224 / 16), as the paper and its code


class _ResBlock(nn.Module):
    """conv3x3-IN-ReLU-conv3x3-IN plus the identity (bias-free, InstanceNorm without affine)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False),
            nn.InstanceNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_in_relu(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding), nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]


def _up_in_relu(cin: int, cout: int) -> List[nn.Module]:
    # kernel 4, stride 2, padding 1 doubles the spatial size exactly
    return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.InstanceNorm2d(cout),
            nn.ReLU(inplace=True)]


def label_upsamplings(image_size: int) -> int:
    """How many stride-2 up-convolutions take the 14 x 14 label map towards ``image_size``:
    ``round(log2(S / 14))``, at least 0 (224 px: 4, as the paper; 56 px: 2; 28 and 32 px: 1)."""
    return max(0, int(round(math.log2(int(image_size) / LABEL_SIZE))))


class ProsGANGenerator(nn.Module):
    """ProS-GAN's generator ``G(x, r_t)`` (Sec. 3.3): images in [0, 1] and target features -> ``t``.

    Args:
        feature_dim: width ``F`` of the prototype network's semantic representation ``r_t``.
        image_size: side ``S`` of the square images (divisible by 4, at least 8).
        channels: image channels.
        width: base channel width ``w`` of the encoder-decoder (the paper's code: 64).
        res_blocks: residual blocks at the bottleneck (the code: 3 in the encoder + 3 in the decoder).
        label_channels: channels of the label decoder's FC map (the code: 128, halved per up-convolution).
    """

    history: List[Dict[str, Any]]  # set by train_prosgan

    def __init__(self, feature_dim: int, image_size: int, channels: int = 3, width: int = 64, res_blocks: int = 6,
                 label_channels: int = 128) -> None:
        super().__init__()
        if min(int(feature_dim), int(channels), int(width), int(label_channels)) < 1 or int(res_blocks) < 0:
            raise ValueError(
                "feature_dim, channels, width and label_channels must be positive and res_blocks non-negative, got "
                f"feature_dim={feature_dim}, channels={channels}, width={width}, label_channels={label_channels}, "
                f"res_blocks={res_blocks}"
            )
        self.feature_dim, self.image_size = int(feature_dim), _check_image_size(image_size)
        self.channels, self.width, self.res_blocks = int(channels), int(width), int(res_blocks)
        self.label_channels = int(label_channels)
        c, w = self.channels, self.width
        self.label_fc = nn.Sequential(nn.Linear(self.feature_dim, self.label_channels * LABEL_SIZE * LABEL_SIZE),
                                      nn.ReLU(inplace=True))
        ups: List[nn.Module] = []
        cur = self.label_channels
        for _ in range(label_upsamplings(self.image_size)):
            ups += _up_in_relu(cur, max(1, cur // 2))
            cur = max(1, cur // 2)
        self.label_up = nn.Sequential(*ups)
        self.label_out = nn.Conv2d(cur, c, 3, padding=1, bias=False)
        half = self.res_blocks // 2
        self.encoder = nn.Sequential(
            *_conv_in_relu(2 * c, w, 7, padding=3),
            *_conv_in_relu(w, 2 * w, 4, stride=2, padding=1),
            *_conv_in_relu(2 * w, 4 * w, 4, stride=2, padding=1),
            *[_ResBlock(4 * w) for _ in range(half)],
        )
        self.decoder = nn.Sequential(
            *[_ResBlock(4 * w) for _ in range(self.res_blocks - half)],
            *_up_in_relu(4 * w, 2 * w),
            *_up_in_relu(2 * w, w),
        )
        self.head = nn.Sequential(nn.Conv2d(w + c, c, 3, padding=1, bias=False), nn.Tanh())

    def decode_label(self, feature: torch.Tensor) -> torch.Tensor:
        """The label decoder's maps ``x_t`` (B, channels, S, S) of the target features (B, F)."""
        if feature.dim() != 2 or feature.shape[1] != self.feature_dim:
            raise ValueError(
                f"target features must be a (B, {self.feature_dim}) matrix, got shape {tuple(feature.shape)}"
            )
        h = self.label_up(self.label_fc(feature).view(feature.shape[0], self.label_channels, LABEL_SIZE, LABEL_SIZE))
        if h.shape[-1] != self.image_size:
            h = F.interpolate(h, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.label_out(h)

    def raw(self, x: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """The Tanh map ``t`` in [-1, 1], same shape as ``x`` (see :func:`bounded_output`)."""
        if x.dim() != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(
                f"images must be (B, {self.channels}, {self.image_size}, {self.image_size}), got shape {tuple(x.shape)}"
            )
        if feature.shape[0] != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} images but {feature.shape[0]} target features")
        scaled = 2.0 * x - 1.0
        h = self.decoder(self.encoder(torch.cat([self.decode_label(feature), scaled], dim=1)))
        return self.head(torch.cat([h, scaled], dim=1))

    def forward(self, x: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """The paper's generated images ``(t + 1) / 2`` in [0, 1] (bound ``"none"``)."""
        return (self.raw(x, feature) + 1.0) / 2.0


class ProsGANDiscriminator(nn.Module):
    """ProS-GAN's discriminator (Sec. 3.3): a spectral-normalised PatchGAN with ``C + 1`` raw outputs.

    ``forward(x)`` takes images in [0, 1] (scaled to [-1, 1] inside, like the generator's input)
    and returns (B, C + 1) raw scores for the LSGAN loss: the first ``C`` columns are the
    categories, the last one the "fake" flag (1 = generated, 0 = real).
    """

    def __init__(self, num_classes: int, image_size: int, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if int(num_classes) < 1 or int(channels) < 1 or int(width) < 1:
            raise ValueError(
                f"num_classes, channels and width must be positive, got {num_classes}, {channels}, {width}"
            )
        self.num_classes, self.image_size = int(num_classes), _check_image_size(image_size)
        self.channels, self.width = int(channels), int(width)
        layers: List[nn.Module] = []
        cin, cout, size = self.channels, self.width, self.image_size
        while size >= 2 * 7 or not layers:  # halve down to about 7 x 7 (224 px: 5 layers, as the code)
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.01, inplace=True)]
            size = size // 2
            cin, cout = cout, cout * 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, self.num_classes + 1, size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(
                f"images must be (B, {self.channels}, {self.image_size}, {self.image_size}), got shape {tuple(x.shape)}"
            )
        return self.head(self.body(2.0 * x - 1.0)).flatten(1)


@dataclass
class ProsGANConfig:
    """ProS-GAN training settings; defaults are the public code's (see the module docstring)."""

    epochs: int = 100  # paper: 100 (code: 50 constant lr + 50 linear decay to 0)
    batch_size: int = 24
    lr: float = 1e-4  # Adam betas (0.5, 0.999) for G and D
    rec_weight: float = 50.0  # alpha of Eq. 5 on the [-1, 1] scale (code: 50 NUS-WIDE / MS-COCO, 100 FLICKR-25K)
    hash_weight: float = 5.0  # weight of J_ham (Eq. 5 writes 1; the public code uses 5)
    adv_weight: float = 1.0  # beta of Eq. 5
    d_every: int = 3  # D updated every 3rd iteration (public code)
    batches_per_epoch: Optional[int] = None  # None: the whole training split; fewer for a quick, unconverged run
    width: int = 64  # generator and discriminator base width (code: 64)
    res_blocks: int = 6  # generator bottleneck (code: 3 + 3)
    label_channels: int = 128  # the label decoder's FC map channels (code: 128 x 14 x 14)
    target_rule: str = "any"  # training targets: "any" unique label row (code) or "zero-overlap" with the source
    seed: int = 0

    def validate(self) -> None:
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("rec_weight", "hash_weight", "adv_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.batches_per_epoch is not None and int(self.batches_per_epoch) < 1:
            raise ValueError(f"batches_per_epoch must be >= 1 or None, got {self.batches_per_epoch}")
        if int(self.d_every) < 1:
            raise ValueError(f"d_every must be >= 1, got {self.d_every}")
        for name in ("width", "label_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.res_blocks) < 0:
            raise ValueError(f"res_blocks must be >= 0, got {self.res_blocks}")
        if self.target_rule not in TARGET_RULES:
            raise ValueError(f"target_rule must be one of {', '.join(TARGET_RULES)}, got {self.target_rule!r}")


def check_bound(bound: Any, eps: Optional[float]) -> Tuple[str, Optional[float]]:
    """``(bound, eps)`` checked: ``bound`` one of :data:`BOUNDS`; ``eps`` >= 0, required by ``"tanh"``."""
    if bound not in BOUNDS:
        raise ValueError(f"bound must be 'none' (the paper: no budget) or 'tanh' (x + eps * tanh), got {bound!r}")
    if eps is not None:
        eps = float(eps)
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0 (pixel units in [0, 1], e.g. 8/255), got {eps}")
    if bound == "tanh" and eps is None:
        raise ValueError("bound='tanh' needs eps (the L-inf radius, e.g. 8/255)")
    return bound, eps


def bounded_output(t: torch.Tensor, x: torch.Tensor, bound: str, eps: Optional[float]) -> torch.Tensor:
    """The adversarial image of the generator's Tanh map ``t``: ``(t + 1) / 2`` (``"none"``, the
    paper) or ``clamp(x + eps * t, 0, 1)`` (``"tanh"``: inside the eps-ball, differentiable in ``t``)."""
    if bound == "none":
        return (t + 1.0) / 2.0
    return (x + float(eps) * t).clamp(0.0, 1.0)  # type: ignore[arg-type]


def _sign(h: torch.Tensor) -> torch.Tensor:
    return torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))


def _module_device(module: Any, default: torch.device) -> torch.device:
    if isinstance(module, nn.Module):
        for p in module.parameters():
            return p.device
        for b in module.buffers():
            return b.device
    return default


def _run_prototype(prototype: Callable, labels: torch.Tensor, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(r_t, h_t)`` of the prototype network for ``labels``, without gradients, on ``device``."""
    with torch.no_grad():
        out = prototype(labels.to(_module_device(prototype, device)))
    if not isinstance(out, (tuple, list)) or len(out) < 2:
        raise ValueError("prototype(labels) must return (feature, h, label_pred)")
    feature, h = out[0], out[1]
    if feature.dim() != 2 or h.dim() != 2 or feature.shape[0] != labels.shape[0] or h.shape[0] != labels.shape[0]:
        raise ValueError(
            f"prototype(labels) must return a (B, F) feature and (B, K) code for B = {labels.shape[0]} labels, "
            f"got {tuple(feature.shape)} and {tuple(h.shape)}"
        )
    return feature.detach().float().to(device), h.detach().float().to(device)


def _first_image(train: Any) -> torch.Tensor:
    return load_images(train, torch.arange(1)) if hasattr(train, "batch") or hasattr(train, "load_image") else train[0][0].unsqueeze(0)


def _linear_decay(epochs: int) -> Callable[[int], float]:
    """lr factor of epoch ``e`` (0-based): 1 for the first half, then linear towards 0 (pix2pix style)."""
    keep = (epochs + 1) // 2
    decay = epochs - keep

    def factor(e: int) -> float:
        return 1.0 if e < keep else max(0.0, 1.0 - (e - keep + 1) / (decay + 1))

    return factor


def draw_training_targets(y: torch.Tensor, pool: torch.Tensor, rule: str, generator: torch.Generator) -> torch.Tensor:
    """One target row of ``pool`` (M, C) per source label row of ``y`` (B, C), uniformly with
    replacement: any row (``"any"``, the public code) or a row sharing no label with the source
    (``"zero-overlap"``; a source that overlaps every row falls back to any row). On ``pool``'s device."""
    b = y.shape[0]
    if rule == "any":
        return pool[torch.randint(0, pool.shape[0], (b,), generator=generator)]
    allowed = (y.float().cpu() @ pool.t().float()) <= 0  # (B, M)
    allowed[~allowed.any(1)] = True
    pick = torch.multinomial(allowed.float(), 1, generator=generator).squeeze(1)
    return pool[pick]


def train_prosgan(
    model: nn.Module,
    train: Any,
    prototype: Any,  # a PrototypeNet (or a callable label -> (feature, code))
    *,
    label_pool: torch.Tensor,
    eps: Optional[float] = 8 / 255,
    bound: str = "none",
    config: Optional[ProsGANConfig] = None,
    progress: bool = False,
    on_epoch: Optional[Callable[[int, ProsGANGenerator], None]] = None,
) -> ProsGANGenerator:
    """Train ProS-GAN's generator against the victim ``model`` (Eq. 5-13); returns ``G`` in eval mode.

    Args:
        model: the victim hashing model, ``model(x) -> tanh(logits)`` (N, K) for images in [0, 1].
            It is kept in eval mode with frozen parameters during training; its mode and its
            parameters' ``requires_grad`` flags are restored afterwards. Gradients of ``J_ham``
            flow through it into ``G``. Training runs on its device.
        train: the attacker's training images: a ``TensorImageDataset`` (or anything with
            ``__len__``, ``labels`` (N, C) and ``batch(idx)``), or any ``ImageDataset`` whose
            items are ``(image, label, index)`` (read through a DataLoader).
        prototype: the trained prototype network, ``prototype(labels) -> (feature (B, F), h (B, K),
            label_pred (B, C))``; run without gradients (in eval mode if it is a module).
        label_pool: (M, C) target labels; each image draws its target from these rows by
            ``config.target_rule`` (:func:`draw_training_targets`).
        eps: L-inf radius of ``bound="tanh"``; unused by ``"none"``.
        bound: ``"none"`` (the paper: no budget) or ``"tanh"`` (``x + eps * t``), see the module docstring.
        config: :class:`ProsGANConfig` (defaults: the public code's settings).
        progress: show a tqdm progress bar with the losses.
        on_epoch: called as ``on_epoch(epoch, G)`` after each epoch (e.g. to evaluate a curve);
            ``G`` is in training mode again when it returns.

    Returns:
        the generator, in eval mode, with ``G.history``: one dict per epoch with ``epoch``,
        ``loss_g``, ``loss_d`` (NaN in an epoch without a discriminator step), ``hash`` (J_ham),
        ``rec`` (J_re) and ``adv`` (J_adv), averaged over the epoch's iterations.
    """
    from tqdm.auto import tqdm

    config = ProsGANConfig() if config is None else config
    config.validate()
    bound, eps = check_bound(bound, eps)
    if len(train) < 1:
        raise ValueError("the training set is empty")
    train_labels = train.labels
    check_labels(train_labels, name="training labels")
    num_classes = int(train_labels.shape[1])
    if not isinstance(label_pool, torch.Tensor):
        raise ValueError(f"label_pool must be an (M, C) tensor of target labels, got {type(label_pool).__name__}")
    check_labels(label_pool, name="label_pool")
    if label_pool.shape[1] != num_classes:
        raise ValueError(
            f"label_pool has {label_pool.shape[1]} columns but the training labels have {num_classes} classes"
        )
    if label_pool.shape[0] < 1:
        raise ValueError("label_pool is empty: give at least one target label")
    first = _first_image(train)
    check_images(first, channels=None)
    channels, height, width_px = int(first.shape[1]), int(first.shape[2]), int(first.shape[3])
    if height != width_px:
        raise ValueError(f"ProS-GAN needs square images, got {height}x{width_px}")
    image_size = _check_image_size(height)

    device = next(model.parameters()).device
    pool = label_pool.detach().float().cpu()
    with contextlib.ExitStack() as scope:
        scope.enter_context(eval_frozen(model))  # gradients flow through the victim, never into it
        if isinstance(prototype, nn.Module):
            scope.enter_context(eval_frozen(prototype))
        scope.enter_context(inputs_in_unit_range())  # every generated image lies in [0, 1]
        feature_dim = _run_prototype(prototype, pool[:1], device)[0].shape[1]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            G = ProsGANGenerator(feature_dim, image_size, channels, width=config.width, res_blocks=config.res_blocks,
                                 label_channels=config.label_channels)
            D = ProsGANDiscriminator(num_classes, image_size, channels, width=config.width)
        G.to(device).train()
        D.to(device).train()
        opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=(0.5, 0.999))
        factor = _linear_decay(int(config.epochs))
        sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, factor)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, factor)
        generator = torch.Generator().manual_seed(config.seed)

        n = len(train)
        steps = math.ceil(n / config.batch_size)
        if config.batches_per_epoch is not None:
            steps = min(steps, int(config.batches_per_epoch))
        bar = scope.enter_context(tqdm(total=int(config.epochs) * steps, desc="training ProS-GAN", disable=not progress))
        history: List[Dict[str, Any]] = []
        G.history = history  # filled epoch by epoch (on_epoch sees the epochs so far)
        for epoch in range(1, int(config.epochs) + 1):
            order = torch.randperm(n, generator=generator)
            sums = {k: torch.zeros((), device=device) for k in ("loss_g", "hash", "rec", "adv", "loss_d")}
            g_steps = d_steps = 0
            # the public code counts D's every-third iteration from the start of each epoch
            for i, (images, labels, _) in enumerate(
                    iterate_batches(train, order[: steps * int(config.batch_size)], int(config.batch_size))):
                b = images.shape[0]
                x = images.to(device=device, dtype=torch.float32)
                y = labels.to(device=device, dtype=torch.float32)
                y_t = draw_training_targets(y, pool, config.target_rule, generator).to(device)
                r_t, h_t = _run_prototype(prototype, y_t, device)
                p = _sign(h_t)
                zeros, ones = torch.zeros(b, 1, device=device), torch.ones(b, 1, device=device)

                x_adv = bounded_output(G.raw(x, r_t), x, bound, eps)

                if i % config.d_every == 0:  # Eq. 11-13
                    loss_d = 0.5 * (
                        F.mse_loss(D(x), torch.cat([y, zeros], 1))
                        + F.mse_loss(D(x_adv.detach()), torch.cat([y_t, ones], 1))
                    )
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    opt_d.step()
                    sums["loss_d"] += loss_d.detach()
                    d_steps += 1

                code = model(x_adv)
                if code.shape != p.shape:
                    raise ValueError(
                        f"the prototype's codes have shape {tuple(p.shape)} but the victim's codes {tuple(code.shape)}"
                    )
                j_ham = 1.0 - (code * p).mean()  # Eq. 7
                j_re = 4.0 * F.mse_loss(x_adv, x)  # Eq. 8 on the [-1, 1] scale: MSE(2 x_adv - 1, 2 x - 1)
                d_out = D(x_adv)
                j_adv = F.mse_loss(d_out, torch.cat([y_t, zeros], 1))  # Eq. 9-10
                loss_g = config.hash_weight * j_ham + config.rec_weight * j_re + config.adv_weight * j_adv  # Eq. 5
                opt_g.zero_grad(set_to_none=True)
                D.requires_grad_(False)  # G's step leaves D's gradients alone
                loss_g.backward()
                D.requires_grad_(True)
                opt_g.step()
                for k, v in (("loss_g", loss_g), ("hash", j_ham), ("rec", j_re), ("adv", j_adv)):
                    sums[k] += v.detach()
                g_steps += 1
                bar.update(1)
                if progress:
                    bar.set_postfix(loss_g=f"{loss_g.item():.4f}", hash=f"{j_ham.item():.4f}", rec=f"{j_re.item():.2e}")
            sched_g.step()
            sched_d.step()
            record: Dict[str, Any] = {"epoch": epoch, "g_steps": g_steps}
            for k in ("loss_g", "loss_d", "hash", "rec", "adv"):
                count = d_steps if k == "loss_d" else g_steps
                record[k] = float(sums[k]) / count if count else float("nan")
            history.append(record)
            if on_epoch is not None:
                G.eval()
                on_epoch(epoch, G)
                G.train()
    G.eval()
    G.history = history
    return G


@torch.no_grad()
def prosgan_generate(
    generator: ProsGANGenerator,
    prototype: Any,
    x: torch.Tensor,
    target_labels: torch.Tensor,
    eps: Optional[float] = 8 / 255,
    bound: str = "none",
    batch_size: int = 256,
) -> torch.Tensor:
    """Adversarial images of ``G`` for ``target_labels``: :func:`bounded_output` of ``G.raw(x, r_t)``.

    ``bound="none"`` returns the paper's ``(t + 1) / 2`` (in [0, 1], no budget; ``eps`` unused);
    ``"tanh"`` returns ``clamp(x + eps * t, 0, 1)``. Runs without gradients, with the generator
    (and a module prototype) in eval mode, restoring their modes afterwards; ``x`` is not
    modified. Returns a new tensor on ``x``'s device.
    """
    check_images(x, channels=generator.channels)
    bound, eps = check_bound(bound, eps)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_labels(target_labels, name="target_labels")
    if target_labels.shape[0] != x.shape[0]:
        raise ValueError(f"got {x.shape[0]} images but {target_labels.shape[0]} target labels")
    device = next(generator.parameters()).device
    parts = []
    with contextlib.ExitStack() as scope:
        scope.enter_context(eval_frozen(generator))
        if isinstance(prototype, nn.Module):
            scope.enter_context(eval_frozen(prototype))
        for i in range(0, x.shape[0], int(batch_size)):
            xb = x[i : i + batch_size].to(device=device, dtype=torch.float32)
            r_t, _ = _run_prototype(prototype, target_labels[i : i + batch_size].float(), device)
            parts.append(bounded_output(generator.raw(xb, r_t), xb, bound, eps).to(x.device))
    if not parts:
        return x.clone()
    return torch.cat(parts).to(x.dtype)
