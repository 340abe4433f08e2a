"""The state of one attack run: what the engine hands to an attack's hooks, explicitly.

The engine builds one :class:`AttackContext` per batch of queries, lets the attack fill in its
codes (``prepare``), then passes the context and the iteration ``t`` to every loss evaluation.
Nothing of a call lives on the attack object, so an attack can be called again (or from two
threads) without state from an earlier call.

Two kinds of entries:

- **per query** (first dimension = the queries of the batch still running): the clean images
  ``x``, ``labels``, ``target_labels``, the query ``ids``, ``given_codes`` (the caller's
  ``codes=``), the codes the attack builds (``reference``, ``target``, ``goal``) and
  method-specific tensors in ``per_query`` (HAG's clean outputs, SDHA's positives). When queries
  stop early the engine continues with :meth:`AttackContext.subset`, which keeps their rows only.
- **shared** by the whole batch, never subset: the attacker's ``knowledge`` (reference codes and
  labels) and the victim's ``database`` (for the AP early stop). What an attack learns in
  ``fit`` (prototype nets, generators) is state of the attack object, not of a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence

import torch

from .knowledge import Database, Knowledge

PER_QUERY_FIELDS = ("x", "labels", "ids", "target_labels", "given_codes", "reference", "target", "goal")


@dataclass
class AttackContext:
    """What one batch of an attack works with (tensors on the attacked model's device).

    Per query (one row per running query):
        x: the clean images (B, C, H, W) in [0, 1].
        labels: the query labels (B, C), float.
        ids: the query ids (B,), long: per-query randomness is drawn from ``(seed, id)``.
        target_labels: (B, C) target labels of a targeted attack, else None.
        given_codes: (B, K) ±1 codes the caller passed with ``codes=`` (adversarial training),
            used instead of building reference / target codes; else None.
        reference: (B, K) ±1 code an untargeted attack pushes away from (set by ``prepare``).
        target: (B, K) ±1 code a targeted attack pulls toward (set by ``prepare``).
        goal: (B, K) ±1 code the linear losses agree with: ``target``, or ``-reference``.
        per_query: method-specific per-query tensors (first dimension B), subset like the rest.

    Shared (never subset):
        knowledge: the attacker's reference set, or None.
        database: the victim's database for the AP early stop, or None.
    """

    x: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    target_labels: Optional[torch.Tensor] = None
    given_codes: Optional[torch.Tensor] = None
    reference: Optional[torch.Tensor] = None
    target: Optional[torch.Tensor] = None
    goal: Optional[torch.Tensor] = None
    per_query: Dict[str, torch.Tensor] = field(default_factory=dict)
    knowledge: Optional[Knowledge] = None
    database: Optional[Database] = None

    @classmethod
    def of_batch(
        cls,
        x: torch.Tensor,
        labels: torch.Tensor,
        ids: Sequence[int],
        *,
        device: torch.device | str,
        target_labels: Optional[torch.Tensor] = None,
        given_codes: Optional[torch.Tensor] = None,
        knowledge: Optional[Knowledge] = None,
        database: Optional[Database] = None,
    ) -> AttackContext:
        """The context of one batch with every per-query tensor on ``device`` (the engine subsets
        them with masks on that device): a detached copy of the images, float labels and codes."""
        return cls(
            x=x.to(device).detach().clone(),
            labels=labels.to(device).float(),
            ids=torch.as_tensor(list(ids), dtype=torch.long, device=device),
            target_labels=None if target_labels is None else target_labels.to(device).float(),
            given_codes=None if given_codes is None else given_codes.to(device).float(),
            knowledge=knowledge,
            database=database,
        )

    def required(self, name: str) -> torch.Tensor:
        """The per-query tensor ``name`` (e.g. ``"goal"``, ``"target_labels"``), which the engine or
        ``prepare`` has set for this attack; an error naming it if it is missing."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"the attack context has no {name!r}: set it in prepare() (or pass it to the call)")
        return value

    @property
    def reference_set(self) -> Knowledge:
        """The attacker's knowledge; an error saying how to pass it if the call had none."""
        if self.knowledge is None:
            raise ValueError("this attack needs the attacker's reference set: "
                             "pass knowledge=Knowledge.from_model(model, splits.train)")
        return self.knowledge

    @property
    def id_list(self) -> List[int]:
        """The query ids as Python ints (what the per-query random generators take)."""
        return [int(i) for i in self.ids.tolist()]

    def subset(self, keep: torch.Tensor) -> AttackContext:
        """The context of the rows selected by ``keep`` (a boolean mask or index on the device
        of the per-query tensors); shared entries are kept as they are."""
        rows: Dict[str, Any] = {name: None if getattr(self, name) is None else getattr(self, name)[keep]
                                for name in PER_QUERY_FIELDS}
        return replace(self, **rows, per_query={k: v[keep] for k, v in self.per_query.items()})


__all__ = ["AttackContext", "PER_QUERY_FIELDS"]
