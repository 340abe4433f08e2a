"""PrototypeNet: the learned target-code generator of THA and ProS-GAN.

A targeted attack on a deep-hashing model needs, for a target label ``y_t``, one code that stands
for "a database item labelled ``y_t``". THA (Wang et al., SIGIR 2021, "Targeted attack and defense
for deep hashing"; Wang et al. 2021a) and ProS-GAN (Wang et al., CVPR 2021, "Prototype-supervised
adversarial network for targeted attack of deep hashing") learn it with a small MLP over labels,
trained against the attacker's reference set (codes ``b_j`` in {-1, +1}^K of the victim's training
images, labels ``y_j``):

    r_t   = W_2 relu(W_1 y_t)                  feature, C -> hidden (4096) -> 512
    h_t   = tanh(W_h r_t)                      continuous prototype code, 512 -> K
    y^_t  = sigmoid(W_c r_t)                   label reconstruction, 512 -> C (ProS-GAN only)

and the prototype code is ``sign(h_t)`` (sign(0) = +1). Two training objectives:

``circle`` (THA). With s_ij = <h_i, b_j> / K in [-1, 1], positives P_i = {j : <y_t,i, y_j> > 0}
and negatives N_i the rest, the circle loss (Sun et al., CVPR 2020) with margin m and scale gamma,

    O_p = 1 + m, O_n = -m, Delta_p = 1 - m, Delta_n = m,
    a_p = [O_p - s_p]_+,  a_n = [s_n - O_n]_+            (constants: no gradient)
    L_i = softplus( logsumexp_{n in N_i} gamma a_n (s_n - Delta_n)
                    + logsumexp_{p in P_i} -gamma a_p (s_p - Delta_p) ),

averaged over the batch, plus ``quantization * sum ||sign(h) - h||^2 / B``. Defaults gamma = 1,
m = 0, quantization = 1e-4. A row whose positive (or negative) set is empty contributes softplus
of the other term alone; a row with neither contributes 0.

``circle-code`` (THA's and SAAT's public code, docs/methods.md#tha). The same s, P, N, but the
code departs from the textbook form in two ways: the weights are a_p = [2 - s_p]_+ and
a_n = [s_n + 2]_+ with no margin offsets in the logits, and the pairs of the whole batch are pooled
into one logsumexp per side instead of one per prototype:

    L = softplus( logsumexp_{(i,n): n in N_i} gamma a_n s_in + logsumexp_{(i,p): p in P_i} -gamma a_p s_ip ) / B

plus the same quantisation term (SAAT's copy wraps the sum in softplus, THA's does not; softplus is
kept). Since s lies in [-1, 1], a_p and a_n lie in [1, 3] and the clamps never act: every pair is
re-weighted, none is dropped as "already good". Pooling makes the prototypes of one batch compete
for the same softmax mass, so a prototype whose pairs are already good gets almost no gradient.

``dpsh`` (ProS-GAN Eq. 3). With Omega_ij = 1/2 <h_i, b_j> and S_ij = 1 when the labels share one,

    J1 = -1/(B N) sum_ij ( S_ij Omega_ij - log(1 + e^Omega_ij) )     DPSH pairwise likelihood
    J2 = sum_i ||h_i - sign(h_i)||^2 / B                              quantisation
    J3 = mean (y^_t - y_t)^2                                          label reconstruction
    L  = alpha1 J1 + alpha2 J2 + alpha3 J3,  alpha = (1, 1e-4, 1).

Training (both papers): 100 epochs x 300 steps of target labels drawn uniformly from the distinct
label rows of the reference set, Adam(lr 1e-4, betas (0.5, 0.999)), the learning rate divided by 10
at 50% and 75% of the steps; batch 64 (ProS-GAN; the THA code uses 32).

One deliberate difference from the public THA code: it multiplies the rectangular (batch x
reference) label-similarity matrix by ``triu(diagonal=1)``, so prototype i silently ignores
reference samples 0..i (and with a batch larger than the reference set, the last rows see none).
That is a bug, not part of the method; here every prototype sees every reference code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._atomic import atomic_torch_save
from ..models.checkpoint import load_failure, safe_load
from ..models.hash_model import sign_codes
from .similarity import shares
from .weighted import check_reference

FORMAT = "hashguard-prototype"
LOSSES = ("circle", "circle-code", "dpsh")

__all__ = [
    "FORMAT",
    "LOSSES",
    "PrototypeConfig",
    "PrototypeNet",
    "circle_code_prototype_loss",
    "circle_prototype_loss",
    "dpsh_prototype_loss",
    "load_prototype_net",
    "save_prototype_net",
    "train_prototype_net",
]


class PrototypeNet(nn.Module):
    """MLP label -> (feature r_t, continuous prototype code h, predicted label).

    Args:
        num_classes: label width C.
        bits: code length K.
        hidden: width of the first layer (4096 in THA and ProS-GAN).
        feature_dim: width of the feature r_t (512; the ProS-GAN generator consumes it).
    """

    def __init__(self, num_classes: int, bits: int, hidden: int = 4096, feature_dim: int = 512) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("bits", bits), ("hidden", hidden), ("feature_dim", feature_dim)):
            if int(value) < 1:
                raise ValueError(f"PrototypeNet needs {name} >= 1, got {value}")
        self.num_classes = int(num_classes)
        self.bits = int(bits)
        self.hidden = int(hidden)
        self.feature_dim = int(feature_dim)
        self.config: Optional[Dict[str, Any]] = None  # training config, set by train_prototype_net
        self.feature = nn.Sequential(
            nn.Linear(self.num_classes, self.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden, self.feature_dim),
        )
        self.hash = nn.Sequential(nn.Linear(self.feature_dim, self.bits), nn.Tanh())
        self.classifier = nn.Sequential(nn.Linear(self.feature_dim, self.num_classes), nn.Sigmoid())

    def _labels(self, labels: torch.Tensor) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor):
            raise ValueError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
        if labels.dim() != 2 or labels.shape[1] != self.num_classes:
            raise ValueError(
                f"labels must be a (B, {self.num_classes}) multi-hot matrix, got shape {tuple(labels.shape)}; "
                "add a batch dimension with labels.unsqueeze(0) for a single label row"
            )
        first = self.feature[0]
        assert isinstance(first, nn.Linear)
        weight = first.weight
        return labels.to(device=weight.device, dtype=weight.dtype)

    def forward(self, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(feature (B, feature_dim), h (B, K) in (-1, 1), label_pred (B, C) in (0, 1))``."""
        r = self.feature(self._labels(labels))
        return r, self.hash(r), self.classifier(r)

    def features(self, labels: torch.Tensor) -> torch.Tensor:
        """The feature r_t ``(B, feature_dim)``; gradients flow (the ProS-GAN generator uses it)."""
        return self.feature(self._labels(labels))

    @torch.no_grad()
    def codes(self, labels: torch.Tensor) -> torch.Tensor:
        """Prototype codes ``sign(h)`` as float ±1 ``(B, K)``, computed in eval mode (mode restored)."""
        was_training = self.training
        self.eval()
        try:
            return sign_codes(self.hash(self.feature(self._labels(labels))))
        finally:
            self.train(was_training)


# --------------------------------------------------------------------------------------- losses


def _check_loss_inputs(h: torch.Tensor, target_labels: torch.Tensor, ref_codes: torch.Tensor, ref_labels: torch.Tensor) -> None:
    check_reference(target_labels, ref_codes, ref_labels)  # label widths, row counts, ±1 codes
    if h.dim() != 2 or h.shape[0] != target_labels.shape[0] or h.shape[1] != ref_codes.shape[1]:
        raise ValueError(
            f"h must be (B, K) = ({target_labels.shape[0]}, {ref_codes.shape[1]}): one continuous code per target "
            f"label, with as many bits as the reference codes; got {tuple(h.shape)}"
        )


def _positives(target_labels: torch.Tensor, ref_labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``(B, N)``: the label rows share at least one label."""
    return shares(target_labels.to(dtype), ref_labels.to(target_labels.device, dtype)) > 0


def _masked_logsumexp(logits: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row-wise logsumexp over ``mask``; returns ``(value, nonempty)``.

    Rows with an empty mask get value 0 and ``nonempty`` False; their logits are replaced by zeros
    before the reduction so that no -inf - (-inf) reaches the backward pass (no NaN gradients).
    """
    nonempty = mask.any(dim=1)
    filled = logits.masked_fill(~mask, float("-inf"))
    filled = torch.where(nonempty.unsqueeze(1), filled, torch.zeros_like(logits))
    value = torch.logsumexp(filled, dim=1)
    return torch.where(nonempty, value, torch.zeros_like(value)), nonempty


def circle_prototype_loss(
    h: torch.Tensor,
    target_labels: torch.Tensor,
    ref_codes: torch.Tensor,
    ref_labels: torch.Tensor,
    gamma: float = 1.0,
    margin: float = 0.0,
    quantization: float = 1e-4,
) -> torch.Tensor:
    """THA's circle loss between prototype codes and the reference codes (scalar).

    With s_ij = <h_i, b_j> / K, positives P_i (labels shared) and negatives N_i (the rest):

        a_p = [1 + m - s_p]_+, a_n = [s_n + m]_+   (detached)
        L_i = softplus( logsumexp_{N_i} gamma a_n (s_n - m) + logsumexp_{P_i} -gamma a_p (s_p - 1 + m) )
        L   = mean_i L_i + quantization * sum ||sign(h) - h||^2 / B.

    An empty P_i or N_i drops its term (the row contributes softplus of the other); a row with
    neither contributes 0. Every prototype sees every reference code (no THA ``triu`` mask).

    Args:
        h: ``(B, K)`` continuous prototype codes.
        target_labels: ``(B, C)`` multi-hot target labels.
        ref_codes: ``(N, K)`` ±1 reference codes.
        ref_labels: ``(N, C)`` multi-hot reference labels.
    """
    _check_loss_inputs(h, target_labels, ref_codes, ref_labels)
    bits = h.shape[1]
    s = h @ ref_codes.to(h.device, h.dtype).t() / bits
    pos = _positives(target_labels.to(h.device), ref_labels, h.dtype)
    neg = ~pos
    m = float(margin)
    a_p = torch.clamp_min(1.0 + m - s.detach(), 0.0)
    a_n = torch.clamp_min(s.detach() + m, 0.0)
    lse_p, has_p = _masked_logsumexp(-gamma * a_p * (s - (1.0 - m)), pos)
    lse_n, has_n = _masked_logsumexp(gamma * a_n * (s - m), neg)
    rows = F.softplus(lse_p + lse_n)
    rows = torch.where(has_p | has_n, rows, torch.zeros_like(rows))
    return rows.mean() + quantization * _quantization(h)


def _quantization(h: torch.Tensor) -> torch.Tensor:
    """sum ||h - sign(h)||^2 / B: the quantisation term every prototype loss adds."""
    return (h - sign_codes(h.detach())).pow(2).sum() / h.shape[0]


def circle_code_prototype_loss(
    h: torch.Tensor,
    target_labels: torch.Tensor,
    ref_codes: torch.Tensor,
    ref_labels: torch.Tensor,
    gamma: float = 1.0,
    quantization: float = 1e-4,
) -> torch.Tensor:
    """The circle loss as THA's and SAAT's public code compute it (scalar; ``loss="circle-code"``).

    With s_ij = <h_i, b_j> / K and the pairs of the whole batch pooled,

        a_p = [2 - s_p]_+, a_n = [s_n + 2]_+   (detached)
        L = softplus( logsumexp_{all negative pairs} gamma a_n s_n
                      + logsumexp_{all positive pairs} -gamma a_p s_p ) / B
            + quantization * sum ||sign(h) - h||^2 / B.

    This is not the circle loss of Sun et al. (CVPR 2020), which :func:`circle_prototype_loss`
    implements (per-row logsumexp, a_p = [1 + m - s_p]_+, a_n = [s_n + m]_+, offsets Delta). With no
    positive (or negative) pair in the batch the side drops out; with no pair at all the loss is
    the quantisation term alone. Every prototype sees every reference code (no THA ``triu`` mask).
    """
    _check_loss_inputs(h, target_labels, ref_codes, ref_labels)
    bits, batch = h.shape[1], h.shape[0]
    s = h @ ref_codes.to(h.device, h.dtype).t() / bits
    pos = _positives(target_labels.to(h.device), ref_labels, h.dtype)
    a_p = torch.clamp_min(2.0 - s.detach(), 0.0)
    a_n = torch.clamp_min(s.detach() + 2.0, 0.0)
    lse_p, has_p = _masked_logsumexp((-gamma * a_p * s).reshape(1, -1), pos.reshape(1, -1))
    lse_n, has_n = _masked_logsumexp((gamma * a_n * s).reshape(1, -1), (~pos).reshape(1, -1))
    pooled = F.softplus(lse_p + lse_n)
    pooled = torch.where(has_p | has_n, pooled, torch.zeros_like(pooled))
    return pooled.sum() / batch + quantization * _quantization(h)


def dpsh_prototype_loss(
    h: torch.Tensor,
    label_pred: torch.Tensor,
    target_labels: torch.Tensor,
    ref_codes: torch.Tensor,
    ref_labels: torch.Tensor,
    alpha1: float = 1.0,
    alpha2: float = 1e-4,
    alpha3: float = 1.0,
) -> torch.Tensor:
    """ProS-GAN Eq. 3: ``alpha1 J1 + alpha2 J2 + alpha3 J3`` (scalar).

        Omega_ij = 1/2 <h_i, b_j>,  S_ij = 1 if labels share one else 0
        J1 = -sum_ij ( S_ij Omega_ij - log(1 + e^Omega_ij) ) / (B N)     (DPSH likelihood)
        J2 = sum ||h - sign(h)||^2 / B                                     (quantisation)
        J3 = mean (label_pred - target_labels)^2                           (label reconstruction)
    """
    _check_loss_inputs(h, target_labels, ref_codes, ref_labels)
    if label_pred.shape != target_labels.shape:
        raise ValueError(
            f"label_pred has shape {tuple(label_pred.shape)} but target_labels has {tuple(target_labels.shape)}"
        )
    omega = 0.5 * (h @ ref_codes.to(h.device, h.dtype).t())
    sim = _positives(target_labels.to(h.device), ref_labels, h.dtype).to(h.dtype)
    j1 = (F.softplus(omega) - sim * omega).mean()
    j2 = _quantization(h)
    j3 = F.mse_loss(label_pred, target_labels.to(label_pred.device, label_pred.dtype))
    return alpha1 * j1 + alpha2 * j2 + alpha3 * j3


# ------------------------------------------------------------------------------------- training


@dataclass
class PrototypeConfig:
    """Training settings of :func:`train_prototype_net` (defaults: the papers')."""

    loss: str = "circle"  # "circle" (THA, textbook) | "circle-code" (THA / SAAT code) | "dpsh" (ProS-GAN Eq. 3)
    epochs: int = 100  # paper: 100 epochs x 300 steps
    steps_per_epoch: int = 300
    batch_size: int = 64  # ProS-GAN 64 (the THA code uses 32)
    lr: float = 1e-4  # Adam, betas (0.5, 0.999)
    hidden: int = 4096
    seed: int = 0


def _check_config(config: PrototypeConfig) -> None:
    if config.loss not in LOSSES:
        raise ValueError(f"unknown prototype loss {config.loss!r}; valid losses: {', '.join(repr(x) for x in LOSSES)}")
    for name in ("epochs", "steps_per_epoch", "batch_size", "hidden"):
        value = getattr(config, name)
        if int(value) != value or int(value) < 1:
            raise ValueError(f"PrototypeConfig.{name} must be a positive integer, got {value!r}")
    if not config.lr > 0:
        raise ValueError(f"PrototypeConfig.lr must be positive, got {config.lr!r}")


def _check_multi_hot(labels: torch.Tensor, name: str) -> None:
    if labels.dim() != 2:
        raise ValueError(
            f"{name} must be an (N, C) multi-hot matrix, got shape {tuple(labels.shape)}; "
            "one-hot encode class indices with torch.nn.functional.one_hot"
        )
    if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{name} must contain only 0 and 1 (multi-hot)")


def _label_pool(ref_labels: torch.Tensor, label_pool: Optional[torch.Tensor]) -> torch.Tensor:
    """Distinct non-zero label rows to draw targets from (sorted, so the draw is reproducible)."""
    pool = ref_labels if label_pool is None else label_pool
    name = "ref_labels" if label_pool is None else "label_pool"
    if label_pool is not None:
        _check_multi_hot(pool, "label_pool")
        if pool.shape[1] != ref_labels.shape[1]:
            raise ValueError(
                f"label_pool has {pool.shape[1]} columns but ref_labels has {ref_labels.shape[1]}; "
                "draw target labels from the reference set's label space"
            )
    pool = pool.float()
    pool = pool[pool.sum(1) > 0]
    if pool.shape[0] == 0:
        raise ValueError(f"no non-zero label rows in {name} to draw target labels from")
    return torch.unique(pool, dim=0)


def train_prototype_net(
    ref_codes: torch.Tensor,
    ref_labels: torch.Tensor,
    *,
    label_pool: Optional[torch.Tensor] = None,
    config: Optional[PrototypeConfig] = None,
    progress: bool = False,
) -> PrototypeNet:
    """Train a :class:`PrototypeNet` against the attacker's reference set.

    Args:
        ref_codes: ``(N, K)`` ±1 codes of the reference set (the victim's training-set codes).
        ref_labels: ``(N, C)`` multi-hot labels of those codes.
        label_pool: rows the target labels are drawn from; default ``ref_labels``. Its distinct
            non-zero rows form the pool; each step draws ``batch_size`` of them uniformly with
            replacement from a ``torch.Generator`` seeded with ``config.seed``.
        config: loss, schedule and seed (:class:`PrototypeConfig`; default ``PrototypeConfig()``).
        progress: show a tqdm bar over the steps.

    Returns:
        The trained net, on the device of ``ref_codes``, in eval mode, with
        ``net.config = dataclasses.asdict(config)``. Same inputs and seed give identical weights
        (on one device); the global RNG state is left untouched.
    """
    config = PrototypeConfig() if config is None else config
    _check_config(config)
    if not isinstance(ref_codes, torch.Tensor) or not isinstance(ref_labels, torch.Tensor):
        raise ValueError("ref_codes and ref_labels must be torch tensors")
    if ref_codes.dim() != 2:
        raise ValueError(f"ref_codes must be an (N, K) matrix of ±1 codes, got shape {tuple(ref_codes.shape)}")
    if ref_codes.shape[0] == 0 or ref_codes.shape[1] == 0:
        raise ValueError(f"ref_codes is empty (shape {tuple(ref_codes.shape)}); pass the reference set's codes")
    if not bool(((ref_codes == 1) | (ref_codes == -1)).all()):
        raise ValueError("ref_codes must be ±1 sign codes (use model.encode, not the tanh outputs)")
    _check_multi_hot(ref_labels, "ref_labels")
    if ref_codes.shape[0] != ref_labels.shape[0]:
        raise ValueError(
            f"reference set has {ref_codes.shape[0]} codes but {ref_labels.shape[0]} label rows; pass matching rows"
        )

    device = ref_codes.device
    codes = ref_codes.to(torch.float32)
    labels = ref_labels.to(device, torch.float32)
    pool = _label_pool(ref_labels, label_pool).to(device)
    num_classes, bits = labels.shape[1], codes.shape[1]

    with torch.random.fork_rng(devices=[]):  # CPU init under the seed; global RNG state restored
        torch.random.default_generator.manual_seed(int(config.seed))
        net = PrototypeNet(num_classes, bits, hidden=int(config.hidden))
    net.to(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(config.seed))

    total = int(config.epochs) * int(config.steps_per_epoch)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[int(0.5 * total), int(0.75 * total)], gamma=0.1
    )
    steps = range(total)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(steps, desc=f"prototype ({config.loss})", unit="step")
        steps = bar

    net.train()
    for step in steps:
        idx = torch.randint(pool.shape[0], (int(config.batch_size),), generator=gen, device=device)
        targets = pool[idx]
        _, h, label_pred = net(targets)
        if config.loss == "circle":
            loss = circle_prototype_loss(h, targets, codes, labels)
        elif config.loss == "circle-code":
            loss = circle_code_prototype_loss(h, targets, codes, labels)
        else:
            loss = dpsh_prototype_loss(h, label_pred, targets, codes, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if bar is not None and (step % 50 == 0 or step == total - 1):
            bar.set_postfix(loss=f"{loss.item():.4f}")
    if bar is not None:
        bar.close()
    net.eval()
    net.config = dataclasses.asdict(config)
    return net


# ----------------------------------------------------------------------------------- save / load


def save_prototype_net(path: str | Path, net: PrototypeNet) -> Path:
    """Write ``net`` as ``{"format", "config_json", "state_dict"}`` atomically; returns the path.

    The JSON config holds the architecture (num_classes, bits, hidden, feature_dim) and, under
    ``"training"``, the training config (``None`` for an untrained net).
    """
    if not isinstance(net, PrototypeNet):
        raise ValueError(f"save_prototype_net saves a PrototypeNet, got {type(net).__name__}")
    config = {
        "num_classes": net.num_classes,
        "bits": net.bits,
        "hidden": net.hidden,
        "feature_dim": net.feature_dim,
        "training": net.config,
    }
    config_json = json.dumps(config, indent=2, sort_keys=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return atomic_torch_save({"format": FORMAT, "config_json": config_json, "state_dict": state}, Path(path))


def _describe(payload: Any) -> str:
    if isinstance(payload, dict):
        if "format" in payload:
            return f"a file of format {payload['format']!r}"
        keys = sorted(map(str, payload))[:5]
        return f"a dict with keys {keys}" + (" ..." if len(payload) > 5 else "")
    if isinstance(payload, torch.Tensor):
        return f"a tensor of shape {tuple(payload.shape)}"
    return f"a {type(payload).__name__}"


def load_prototype_net(path: str | Path, map_location: str | torch.device = "cpu") -> PrototypeNet:
    """Rebuild a net written by :func:`save_prototype_net` (``torch.load(weights_only=True)``), eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prototype net {str(path)!r} does not exist; write one with save_prototype_net")
    try:
        payload = safe_load(path)
    except Exception as err:  # torch's own text advises weights_only=False: never repeat that here
        raise ValueError(f"{str(path)!r} is not a hashguard prototype net that loads safely: it {load_failure(err, path)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a hashguard prototype net (expected format {FORMAT!r}, found {_describe(payload)}); "
            "write prototype nets with save_prototype_net"
        )
    config = json.loads(payload["config_json"])
    net = PrototypeNet(config["num_classes"], config["bits"], hidden=config["hidden"], feature_dim=config["feature_dim"])
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"weights in {str(path)!r} do not fit the PrototypeNet its config describes: {err}") from err
    net.config = config.get("training")
    net.to(map_location)
    net.eval()
    return net
