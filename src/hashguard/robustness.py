"""``evaluate_robustness``: one call from a model and its data to clean, attacked and robust mAP.

In the spirit of AutoAttack's ``run_standard_evaluation``: a fixed, documented set of the strongest
attacks at their paper budgets, run on the same queries and target labels, and the worst case over
the untargeted ones per query (robust mAP; see :mod:`hashguard.bench.robust`).

Attack sets (``attacks=``):

    "standard"  untargeted PgA (T = 100), mainstay (T = 100) and SDHA (T = 1500, Adam);
                targeted PgA (T = 100) and mainstay (T = 100). The strongest attacks of the
                benchmark table (README, "Measured"): SDHA, PgA and mainstay reach the lowest
                mAP, PgA and mainstay the highest t-MAP, each at its paper budget.
    "fast"      untargeted PgA and mainstay, targeted mainstay (T = 100 each): about a tenth of
                the standard set's time; the robust mAP it gives is an upper bound of the
                standard one.
    a dict      ``{"untargeted": [...], "targeted": [...]}`` of registered attack names.

It runs through the benchmark runner (``hashguard.bench``), so with ``out`` the records, the
report (``report.md``, ``report.html``) and the resume behaviour are those of ``hashguard bench``:
a killed call repeated with the same arguments skips every finished attack. The model is given in
memory; its records are keyed by a SHA-256 fingerprint of its ``state_dict``, so other weights
never reuse a result.

Example::

    model = hashguard.wrap_model(net, input_norm="imagenet")
    splits = hashguard.data.from_lists("data/mine")            # or from_tensors(...)
    result = hashguard.evaluate_robustness(model, splits, queries=200, out="runs/mine")
    print(result)                                                # clean / attacked / robust mAP
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch

ATTACK_SETS: Dict[str, Dict[str, List[str]]] = {
    "standard": {"untargeted": ["pga", "mainstay", "sdha"], "targeted": ["pga", "mainstay"]},
    "fast": {"untargeted": ["pga", "mainstay"], "targeted": ["mainstay"]},
}


@dataclass
class RobustnessResult:
    """What :func:`evaluate_robustness` measured (mAP values in [0, 1]).

    Attributes:
        clean_map: mAP of the benign codes of the attacked queries.
        clean_t_map: t-MAP of the benign codes with the target labels (None without targeted attacks).
        robust_map: per query the lowest AP over every untargeted attack, averaged (None without
            untargeted attacks).
        unbroken: fraction of queries no untargeted attack broke (P@10 stayed >= 0.5).
        attacks: per attack (``"pga"``, ``"mainstay (targeted)"``, ...) its record's figures:
            ``map``, ``t_map`` (targeted), ``theory_map`` / ``theory_t_map``, ``success_rate``,
            ``seconds_per_query``, ``steps``, ``perceptibility``.
        n_queries, eps, topk: the protocol.
        out, report: the results folder and the report's paths (None without ``out``).
    """

    clean_map: float
    clean_t_map: Optional[float]
    robust_map: Optional[float]
    unbroken: Optional[float]
    attacks: Dict[str, Dict[str, Any]]
    n_queries: int
    eps: float
    topk: Optional[int]
    out: Optional[str] = None
    report: Optional[Dict[str, str]] = None
    records: List[Dict[str, Any]] = field(default_factory=list, repr=False)

    def table(self) -> str:
        """A small plain-text table of the figures, in %."""
        pct = lambda v: "-" if v is None else f"{100 * v:6.2f}"  # noqa: E731
        lines = [f"{self.n_queries} queries, L-inf eps {self.eps * 255:.3g}/255, mAP@{self.topk or 'all'} (%)",
                 f"  {'clean mAP':28s} {pct(self.clean_map)}"]
        for name, a in self.attacks.items():
            if "t_map" not in a:
                lines.append(f"  {name + ' (T=' + str(a['steps']) + ')':28s} {pct(a['map'])}  mAP")
        if self.robust_map is not None and self.unbroken is not None:
            lines.append(f"  {'robust (worst case)':28s} {pct(self.robust_map)}  ({100 * self.unbroken:.1f} % of queries unbroken)")
        if self.clean_t_map is not None:
            lines.append(f"  {'clean t-MAP':28s} {pct(self.clean_t_map)}")
            for name, a in self.attacks.items():
                if "t_map" in a:
                    lines.append(f"  {name + ' (T=' + str(a['steps']) + ')':28s} {pct(a['t_map'])}  t-MAP")
        if self.report:
            lines.append(f"report: {self.report['html']}")
        return "\n".join(lines)

    __str__ = table


def state_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of ``model``'s state_dict."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _attack_lists(attacks: Union[str, Dict[str, List[str]]]) -> Dict[str, List[str]]:
    if isinstance(attacks, str):
        if attacks not in ATTACK_SETS:
            raise ValueError(f"unknown attack set {attacks!r}; valid: {', '.join(ATTACK_SETS)}, or a dict "
                             "{'untargeted': [...], 'targeted': [...]}")
        return {k: list(v) for k, v in ATTACK_SETS[attacks].items()}
    if not isinstance(attacks, dict) or set(attacks) - {"untargeted", "targeted"}:
        raise ValueError(f"attacks must be {', '.join(map(repr, ATTACK_SETS))} or a dict with keys "
                         f"'untargeted' and/or 'targeted', got {attacks!r}")
    return {"untargeted": list(attacks.get("untargeted", [])), "targeted": list(attacks.get("targeted", []))}


def evaluate_robustness(
    model: torch.nn.Module,
    splits,
    *,
    attacks: Union[str, Dict[str, List[str]]] = "standard",
    eps: Any = 8 / 255,
    queries: Optional[int] = 500,
    seed: int = 0,
    topk: Any = "default",
    steps: Optional[Dict[str, int]] = None,
    out: Optional[str | Path] = None,
    name: str = "model",
    batch_size: int = 128,
    progress: bool = True,
) -> RobustnessResult:
    """Attack ``model`` on ``splits`` with a standard set of attacks; return clean, attacked and
    robust (worst-case) mAP.

    Args:
        model: a hashing model: ``wrap_model(your_net, ...)``, a ``HashModel`` or anything with
            the contract of :mod:`hashguard.models.contract`.
        splits: its dataset (``DatasetSplits``: ``data.from_tensors``, ``data.from_lists``,
            ``data.load_splits``); the training split is the attacker's reference set.
        attacks: ``"standard"``, ``"fast"`` or ``{"untargeted": [...], "targeted": [...]}``.
        eps: L-inf budget in pixel units (``8/255`` or ``"8/255"``).
        queries: queries drawn with ``seed`` (None or 0: the whole query split); the same queries
            and target labels for every attack.
        topk: mAP cut-off: ``"default"`` (the dataset's convention), an int, or 0 = all.
        steps: iteration overrides per attack, e.g. ``{"sdha": 300}`` (default: paper budgets).
        out: results folder (records, checkpoints of nothing, ``report.md`` / ``report.html``);
            None keeps nothing on disk.
        name: the model's name in the report.
    """
    from .bench.runner import run_bench
    from .bench.spec import AttackSet, BenchSpec
    from .models.contract import check_hash_model

    check_hash_model(model, where="evaluate_robustness")
    lists = _attack_lists(attacks)
    entry = {"name": name, "dataset": splits.name, "in_memory": True, "fingerprint": state_fingerprint(model),
             "output": getattr(model, "output", "logits"), "input_norm": getattr(model, "input_norm", None)}
    spec = BenchSpec(
        name=f"robustness of {name}", datasets=[], models=[entry], queries=int(queries or 0), eps=eps, seed=int(seed),
        topk=topk, batch_size=int(batch_size),
        attacks=AttackSet(untargeted=lists["untargeted"], targeted=lists["targeted"], steps=dict(steps or {})),
        examples=["pga", "mainstay"] if out is not None else [],  # retrieval-example figures only for a report
    )
    spec.validate()  # every name and value checked before any work
    with tempfile.TemporaryDirectory(prefix="hashguard-robustness-") as tmp:
        folder = Path(out) if out is not None else Path(tmp)
        result = run_bench(spec, folder, device=str(model.device), progress=progress, report=out is not None,
                           objects={name: (model, splits)})
    return _summarise(result, spec, out)


def _summarise(result: Dict[str, Any], spec, out) -> RobustnessResult:
    from .bench.robust import worst_case

    records = [r for r in result["records"] if r["config"]["kind"] == "attack"]
    untargeted = [r["metrics"] for r in records if not r["config"]["targeted"]]
    targeted = [r["metrics"] for r in records if r["config"]["targeted"]]
    figures: Dict[str, Dict[str, Any]] = {}
    keep = ("map", "t_map", "theory_map", "theory_t_map", "success_rate", "seconds_per_query", "steps",
            "perceptibility", "bits_changed")
    for r in records:
        m = r["metrics"]
        label = m["method"] + (" (targeted)" if m["targeted"] else "")
        figures[label] = {k: m[k] for k in keep if k in m}
    first = (untargeted or targeted)[0] if records else None
    robust = worst_case(untargeted) if untargeted else None
    return RobustnessResult(
        clean_map=first["clean_map"] if first else float("nan"),
        clean_t_map=targeted[0]["clean_t_map"] if targeted else None,
        robust_map=robust["map"] if robust else None,
        unbroken=robust["unbroken"] if robust else None,
        attacks=figures,
        n_queries=first["n_queries"] if first else 0,
        eps=float(spec.eps),
        topk=first["topk"] if first else None,
        out=None if out is None else str(out),
        report=result["report"],
        records=result["records"],
    )


__all__ = ["ATTACK_SETS", "RobustnessResult", "evaluate_robustness", "state_fingerprint"]
