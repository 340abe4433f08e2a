"""Target and reference codes: closed-form (anchor, centre, mainstay, pharos) and learned (prototype).

Pure tensor math on the attacker's reference set (codes and labels), no images. Every builder
takes a batch of labels and returns ``(B, K)`` float ±1 codes computed with matrix products.
For a query label these are *reference* codes an untargeted attack pushes away from; for a
target label they are *target* codes a targeted attack pulls toward.

    anchor_codes    P2P (n_t = 1) / DHTA (n_t = 9) component-wise vote        (DHTA Sec. 3.2)
    center_codes    CgAT centre: mean of positives minus mean of negatives    (CgAT)
    mainstay_codes  SAAT mainstay, cosine-weighted                            (SAAT Eq. 10-11)
    pharos_codes    PgA pharos, Dice-weighted                                 (PgA Eq. 7-8)
    PrototypeNet    THA (circle loss) / ProS-GAN (DPSH likelihood) label -> code network
"""

from .anchor import anchor_codes
from .center import center_codes
from .mainstay import mainstay_codes
from .pharos import pharos_codes
from .weighted import hamming_objective, weighted_sign

CLOSED_FORM = {
    "center": center_codes,
    "mainstay": mainstay_codes,
    "pharos": pharos_codes,
}

__all__ = [
    "CLOSED_FORM",
    "anchor_codes",
    "center_codes",
    "hamming_objective",
    "mainstay_codes",
    "pharos_codes",
    "weighted_sign",
]
