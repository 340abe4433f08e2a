"""Named evaluation protocols: each seed paper's top-k, queries, target rule, anchor source and budget.

``--protocol NAME`` on ``hashguard attack`` / ``hashguard bench`` (grid key ``protocol``) picks one
row of :data:`PROTOCOLS`. ``default`` is the project's documented protocol
(docs/design.md#evaluation-protocol) and keeps every old file name and record identity; the others
follow one paper each. Every value carries its provenance (paper and section, or the public code);
a value the paper does not state is marked ``not stated`` and keeps hashguard's own, which the user
may then override (``--queries``, ``--topk``, ``--eps``). A value the paper states cannot be
overridden: that run would not be the paper's protocol any more.

What a protocol fixes:

- ``topk``: the mAP cut-off; ``"dataset"`` (each dataset's own, ``hashguard list datasets``), an
  int, or None (the whole database). A cut-off larger than the database is refused.
- ``queries``: how many query images are attacked, drawn uniformly from the query split by the seed.
- ``target_rule``: ``zero-overlap`` (a database label row sharing no label with the query's) or
  ``any`` (any distinct non-zero database label row), see ``attacks.targets``.
- ``anchor_source``: where P2P / DHTA sample their anchor codes: ``train`` (the attacker's
  training-split codes) or ``database`` (the database images, encoded by the attacking model).
- ``eps``: the L-inf budget in pixel units, passed to every attack; ``step``: the PGD step the
  paper states (the attacks' own defaults already use it; recorded, not passed).
- ``attack_params``: per-attack parameters the protocol sets unless the user sets them, with the
  reason in ``attack_params_why``. Every protocol but ``prosgan`` requires each attack's images to
  stay inside the eps-ball, so ProS-GAN runs its tanh-bounded variant (``bound = "tanh"``) there;
  ``prosgan`` (ProS-GAN Sec. 4, no budget, perceptibility reported) runs the paper's ``bound = "none"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from ..errors import InputError

DEFAULT = "default"
TARGET_RULES = ("zero-overlap", "any")
ANCHOR_SOURCES = ("train", "database")
ANCHOR_METHODS = ("p2p", "dhta")  # the attacks whose target code is sampled from reference codes
NOT_STATED = "not stated"
FIELDS = ("topk", "queries", "target_rule", "anchor_source", "eps", "step")
# ProS-GAN's generator has no budget in its paper; the eps-ball protocols run its tanh-bounded variant
EPS_BALL_ATTACK_PARAMS: Dict[str, Dict[str, Any]] = {"prosgan": {"bound": "tanh"}}
EPS_BALL_WHY = ("every attack's images must lie inside the eps-ball (docs/design.md#evaluation-protocol): ProS-GAN "
                "runs x + eps * tanh(G), trained with that bound (attacks.prosgan)")


def _eps_ball_params() -> Dict[str, Dict[str, Any]]:
    return {m: dict(v) for m, v in EPS_BALL_ATTACK_PARAMS.items()}


@dataclass(frozen=True)
class Protocol:
    """One named protocol: its values and, per value, where it comes from."""

    name: str
    paper: str
    description: str
    topk: Union[str, int, None]
    queries: int
    target_rule: str
    anchor_source: str
    eps: float
    step: float
    query_choice: str = "uniform without replacement from the query split, drawn from the seed (sorted)"
    provenance: Dict[str, str] = field(default_factory=dict)
    attack_params: Dict[str, Dict[str, Any]] = field(default_factory=_eps_ball_params)
    attack_params_why: str = EPS_BALL_WHY

    def params_for(self, method: str) -> Dict[str, Any]:
        """The parameters this protocol sets for attack ``method`` unless the user sets them."""
        return dict(self.attack_params.get(method, {}))

    def stated(self, key: str) -> bool:
        """Whether the paper (or its code) fixes ``key``; otherwise hashguard's value stands in."""
        return not self.provenance.get(key, NOT_STATED).startswith(NOT_STATED)

    def describe(self) -> Dict[str, Any]:
        """The protocol as plain JSON values (``hashguard list protocols``, records)."""
        return {"name": self.name, "paper": self.paper, "description": self.description,
                "topk": "all" if self.topk is None else self.topk, "queries": self.queries,
                "query_choice": self.query_choice, "target_rule": self.target_rule,
                "anchor_source": self.anchor_source, "eps": self.eps, "step": self.step,
                "attack_params": {m: dict(v) for m, v in self.attack_params.items()},
                "attack_params_why": self.attack_params_why, "provenance": dict(self.provenance)}


_OURS = "hashguard's default (docs/design.md#evaluation-protocol)"

PROTOCOLS: Dict[str, Protocol] = {p.name: p for p in (
    Protocol(
        DEFAULT, "hashguard", "the project's documented protocol (docs/design.md#evaluation-protocol)",
        topk="dataset", queries=500, target_rule="zero-overlap", anchor_source="train", eps=8 / 255, step=1 / 255,
        provenance={k: _OURS for k in FIELDS} | {"topk": "each dataset's cut-off (hashguard list datasets)"},
    ),
    Protocol(
        "pga", "PgA (Pharos-guided attack)", "PgA's evaluation: MAP@5000 on FLICKR-25K, NUS-WIDE and MS-COCO",
        topk=5000, queries=500, target_rule="zero-overlap", anchor_source="train", eps=8 / 255, step=1 / 255,
        provenance={
            "topk": "PgA Sec. 4.1 (metrics): MAP on the top 5,000 results, following Bai et al. 2020",
            "queries": f"{NOT_STATED} (PgA Sec. 4.1 gives the query split, not how many are attacked): hashguard's 500",
            "target_rule": f"{NOT_STATED} (PgA is untargeted): hashguard's zero-overlap",
            "anchor_source": f"{NOT_STATED}: hashguard's training split",
            "eps": "PgA Sec. 4.1 (implementation details): perturbation budget 8/255",
            "step": "PgA Sec. 4.1 (implementation details): step size 1/255, T = 100",
        },
    ),
    Protocol(
        "saat", "SAAT (semantic-aware adversarial training)", "SAAT's evaluation: MAP@5000, database anchors",
        topk=5000, queries=500, target_rule="zero-overlap", anchor_source="database", eps=8 / 255, step=1 / 255,
        provenance={
            "topk": "SAAT Sec. IV-A 4) Protocols: MAP on the top 5000 results from the database",
            "queries": f"{NOT_STATED} (SAAT Sec. IV-A 1) gives the query split only): hashguard's 500",
            "target_rule": "SAAT public code (select_target_label): a database label with zero overlap",
            "anchor_source": "SAAT public code samples P2P / DHTA anchors from the database codes (issue 14 item 3)",
            "eps": "SAAT Sec. IV-A 3) Implementation details: perturbation budget 8/255",
            "step": "SAAT Sec. IV-A 3) Implementation details: step size 1/255, T = 100",
        },
    ),
    Protocol(
        "sdha", "SDHA (smart deep hashing attack)", "SDHA's evaluation: MAP@1000, 100 queries, eps 0.039",
        topk=1000, queries=100, target_rule="zero-overlap", anchor_source="train", eps=0.039, step=1 / 255,
        provenance={
            "topk": "SDHA Sec. 5.1 (measurements): MAP on the top-1000 retrieved images, as HAG",
            "queries": "SDHA Sec. 5.1 (datasets): 100 queries reserved at random from each testing set",
            "target_rule": f"{NOT_STATED} (SDHA Sec. 5.1 follows DHTA, whose rule is not in the papers here): "
                           "hashguard's zero-overlap",
            "anchor_source": f"{NOT_STATED}: hashguard's training split",
            "eps": "SDHA Sec. 5.1 (measurements): pixel values in [0, 1], L-inf threshold 0.039",
            "step": f"{NOT_STATED} (SDHA optimises with Adam, lr 0.01): hashguard's 1/255 for PGD attacks",
        },
    ),
    Protocol(
        "prosgan", "ProS-GAN", "ProS-GAN's evaluation: t-MAP on the whole database, any-label targets",
        topk=None, queries=500, target_rule="any", anchor_source="train", eps=8 / 255, step=1 / 255,
        provenance={
            "topk": "ProS-GAN Sec. 4.1: t-MAP calculated on all retrieved images from the database",
            "queries": f"{NOT_STATED} (Sec. 4.1 gives the query split only): hashguard's 500",
            "target_rule": "ProS-GAN Sec. 4.1 ('we randomly select a label as target label') and its public code: "
                           "any distinct database label, no overlap constraint (issue 14 item 2)",
            "anchor_source": f"{NOT_STATED}: hashguard's training split",
            "eps": "ProS-GAN Sec. 4.1: P2P and DHTA as in Bai et al. 2020 with eps 8/255",
            "step": "ProS-GAN Sec. 4.2: I-FGSM step size 1/255",
        },
        attack_params={"prosgan": {"bound": "none"}},
        attack_params_why="ProS-GAN Sec. 3-4: the generator has no L-inf budget (imperceptibility from the "
                          "reconstruction loss; Table 2 reports the RMSE, as the records do)",
    ),
    Protocol(
        "dhta", "DHTA (deep hashing targeted attack)", "DHTA's evaluation: t-MAP@1000, 100 queries, database anchors",
        topk=1000, queries=100, target_rule="zero-overlap", anchor_source="database", eps=8 / 255, step=1 / 255,
        provenance={
            "topk": "DHTA: top 1,000 on ImageNet; DHTA-master's evaluation uses k = 1000 on every dataset "
                    "(docs/methods.md#map-conventions)",
            "queries": "DHTA-master's reproduce/attack_query_index.txt: 100 query images",
            "target_rule": "DHTA-master attack_imagenet.py: a database label row different from the query's "
                           "(on single-label ImageNet the same as zero-overlap, which hashguard applies to every "
                           "dataset) held by more than n_anchor database images",
            "anchor_source": "DHTA-master samples the anchor codes from the database codes (issue 14 item 3)",
            "eps": "ProS-GAN Sec. 4.1 reports Bai et al.'s P2P / DHTA setting as eps 8/255 in pixels (DHTA-master's "
                   "0.032 is in normalised units, docs/methods.md#p2p-and-dhta)",
            "step": "SAAT's re-implementation of DHTA: sign-PGD with step 1/255 (docs/methods.md#p2p-and-dhta)",
        },
    ),
)}


def list_protocols() -> List[str]:
    return list(PROTOCOLS)


def get_protocol(name: Any) -> Protocol:
    """The protocol ``name``; ``InputError`` naming the choices for anything else."""
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)} (hashguard list protocols)")
    return PROTOCOLS[name]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return bool(a == b)


def resolve(
    name: Any,
    *,
    dataset: str,
    database_size: int,
    query_size: int,
    dataset_topk: Optional[int],
    topk: Any = None,
    queries: Optional[int] = None,
    eps: Optional[float] = None,
) -> Dict[str, Any]:
    """The values one run uses under protocol ``name`` on a dataset, checked before any work.

    ``topk`` / ``queries`` / ``eps`` are the user's overrides (None: not given; ``topk`` 0 means the
    whole database). Under a named protocol, an override of a value the paper states, or a cut-off
    the database cannot satisfy (top-5000 of 3,000 items), raises ``InputError``. Returns the plain values a record
    states: ``protocol``, ``topk`` (None = whole database), ``queries`` (at most the query split),
    ``query_choice``, ``target_rule``, ``anchor_source``, ``eps``, ``step`` and ``provenance``.
    """
    p = get_protocol(name)
    given = {"topk": None if topk is None else (int(topk) or None), "queries": queries, "eps": eps}
    fixed_topk = dataset_topk if p.topk == "dataset" else p.topk
    fixed = {"topk": fixed_topk, "queries": p.queries, "eps": p.eps}
    values: Dict[str, Any] = {}
    for key, mine in fixed.items():
        user = given[key]
        if (key == "topk" and topk is None) or (key != "topk" and user is None):
            values[key] = mine
            continue
        if p.name != DEFAULT and p.stated(key) and not _same(user, mine):
            raise InputError(
                f"protocol {p.name} fixes {key} = {'all' if mine is None else mine} ({p.provenance[key]}); "
                f"drop the {key} override ({'all' if user is None else user}) or use --protocol default"
            )
        values[key] = user
    k = values["topk"]
    if p.name != DEFAULT and k is not None and int(k) > int(database_size):  # the default stays as lenient as before
        raise InputError(
            f"protocol {p.name} needs mAP@{k} but the {dataset} database holds {database_size} items; "
            "use a dataset with a larger database or another protocol (hashguard list protocols)"
        )
    return {
        "protocol": p.name,
        "topk": k,
        "queries": min(int(values["queries"]), int(query_size)) if values["queries"] else int(query_size),
        "query_choice": p.query_choice,
        "target_rule": p.target_rule,
        "anchor_source": p.anchor_source,
        "eps": float(values["eps"]),
        "step": p.step,
        "provenance": dict(p.provenance),
    }


def apply_to_spec(spec: Any) -> None:
    """Set a grid's ``eps``, ``topk`` and ``queries`` from its named ``protocol`` (grid key
    ``protocol = "pga"``); ``InputError`` for an unknown name or a grid value that contradicts a
    value the paper states. A grid value left at the grid default (eps 8/255, topk "default",
    queries 500) takes the protocol's; idempotent, so a re-read ``spec.json`` validates again."""
    p = get_protocol(spec.protocol)
    if p.name == DEFAULT:
        return
    pairs = (("eps", spec.eps, 8 / 255, p.eps), ("queries", spec.queries, 500, p.queries),
             ("topk", spec.topk, "default", 0 if p.topk is None else p.topk))
    for key, value, grid_default, mine in pairs:
        if _same(value, grid_default) or _same(value, mine) or not p.stated(key):
            new = mine if _same(value, grid_default) else value
            setattr(spec, key, float(new) if key == "eps" else new)
            continue
        raise InputError(f"protocol {p.name} fixes {key} = {'all' if mine == 0 and key == 'topk' else mine} "
                         f"({p.provenance[key]}), but the grid sets {key} = {value}; drop it or use protocol = \"default\"")


def resolve_for(name: Any, splits, **overrides: Any) -> Dict[str, Any]:
    """:func:`resolve` for a loaded dataset (``DatasetSplits``)."""
    return resolve(name, dataset=splits.name, database_size=len(splits.database), query_size=len(splits.query),
                   dataset_topk=splits.default_topk, **overrides)


__all__ = ["ANCHOR_METHODS", "ANCHOR_SOURCES", "DEFAULT", "PROTOCOLS", "TARGET_RULES", "Protocol", "apply_to_spec",
           "get_protocol",
           "list_protocols", "resolve", "resolve_for"]
