"""Which code a baseline attack (FGSM, I-FGSM) is guided by: any code builder, chosen by name.

- ``"clean"``: the query's own clean sign code (untargeted only; the classic "push away from
  yourself" of HAG's baseline).
- ``"anchor"``: the DHTA anchor code (n_t = 9) of the label.
- ``"center"``, ``"mainstay"``, ``"pharos"``: the closed-form codes of CgAT, SAAT and PgA.

For an untargeted attack the code of the query label is pushed away from; for a targeted one the
code of the target label is pulled toward.
"""

from __future__ import annotations

from typing import List, cast

import torch

from ..codes import CLOSED_FORM, anchor_codes
from ..models.hash_model import sign_codes
from .base import CodeAttack
from .knowledge import Knowledge

CODES = ("clean", "anchor") + tuple(sorted(CLOSED_FORM))


class ChosenCodeAttack(CodeAttack):
    """A :class:`CodeAttack` whose reference / target code is picked by ``code=``."""

    def __init__(self, model, *, code=None, **engine):
        super().__init__(model, **engine)
        code = code or ("anchor" if self.targeted else "clean")
        if code not in CODES:
            raise ValueError(f"unknown code {code!r}; valid choices: {', '.join(CODES)}")
        if code == "clean" and self.targeted:
            raise ValueError("code='clean' is untargeted only; a targeted attack needs a label code: "
                             + ", ".join(c for c in CODES if c != "clean"))
        self.code = code
        self.needs_knowledge = code != "clean"

    def _codes(self, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        if self.code == "anchor":
            return cast(torch.Tensor, anchor_codes(labels, knowledge.codes, knowledge.labels, n_anchors=9, seed=self.seed, ids=ids))
        return CLOSED_FORM[self.code](labels, knowledge.codes, knowledge.labels)

    def reference_codes(self, x: torch.Tensor, labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        if self.code == "clean":
            return sign_codes(self.model(x))
        return self._codes(labels, knowledge, ids)

    def target_codes(self, target_labels: torch.Tensor, knowledge: Knowledge, ids: List[int]) -> torch.Tensor:
        return self._codes(target_labels, knowledge, ids)
