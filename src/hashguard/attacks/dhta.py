"""DHTA, deep hashing targeted attack (Bai et al., ECCV 2020), Eq. 4-5.

Threat model: white-box, L-inf, targeted only. The anchor code is the component-wise majority of
n_t = 9 distinct reference codes carrying exactly the target label (Eq. 4, sampled per query from
the seed, without replacement); the loss -(1/K) <a, h> (Eq. 5) is minimised by sign-PGD with
T = 2000, step 1/255, eps 8/255, no random start, relative alpha schedule (SAAT's version of the
original; the original's L2-normalised steps and normalised-space eps are not reproduced).

Example:
    >>> result = create_attack("dhta", model, targeted=True)(x, y, target_labels=y_t, knowledge=knowledge)
"""

from __future__ import annotations

from .p2p import PointToPointAttack
from .registry import register_attack


@register_attack("dhta")
class DeepHashingTargetedAttack(PointToPointAttack):
    """DHTA: PGD toward the majority code of n_t = 9 samples of the target label."""

    def __init__(self, model, *, n_anchors: int = 9, **kwargs):
        super().__init__(model, **kwargs)
        if int(n_anchors) < 1:
            raise ValueError(f"n_anchors must be a positive integer, got {n_anchors}")
        self.n_anchors = int(n_anchors)
