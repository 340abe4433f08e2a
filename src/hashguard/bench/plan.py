"""The runs of a benchmark grid, in order, each with the config its record is stored under.

:func:`plan` turns a :class:`~hashguard.bench.spec.BenchSpec` into a list of :class:`Run`:

    train        one per model (dataset x backbone x objective x bits); writes a checkpoint;
                 for an existing model (``[[models]]``) it loads the model and records its clean
                 mAP, the model file and the SHA-256 of its weights, and trains nothing
    attack       every table attack on every undefended model, on ``spec.queries`` queries
    convergence  the convergence attacks at each iteration count, on ``convergence.queries``
    defense      every defense on every model; writes a defended checkpoint
    reattack     the defense attacks on every defended model, and on the undefended one (the
                 "none" row; the same record as the table run when the settings match)
    transfer     every ordered (surrogate, victim) pair of models on one dataset, plus the
                 white-box diagonal
    surrogate    one per ``[injection]`` surrogate and (dataset, objective, bits) of the victims it
                 serves: a model of another backbone / seed trained like a grid model (the grid's
                 split and ``[train]``, with the surrogate's overrides); a ``train`` config, so a
                 surrogate equal to a grid model shares its record and checkpoint
    injection    every ``[injection]`` method x attacker-image source on every victim (the grid's
                 trained models, or those ``victims`` names): white-box (surrogate = victim) and
                 once per surrogate (black-box); after the victim's and the surrogate's train runs
    perturbation every ``[perturbation]`` method at each value of its swept parameter (SDHA's
                 weight, the others' eps) on ``perturbation.queries`` queries, stopping each query
                 at AP 0 (1 if targeted) unless its params say otherwise; a swept eps is part of
                 the run's config (``"eps"``), the grid's eps otherwise

A record's config holds everything its result depends on (the model's own config key, so records
of a model trained with other settings never match); configs that coincide (a convergence run
at the table's iteration count and query number, a transfer diagonal equal to a table run) share
one record, which the grid runs once. The report is built from the same plan, so it finds every
record by its config.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .spec import AttackSet, BenchSpec
from .store import RecordStore

TRAIN, ATTACK, CONVERGENCE, DEFENSE, REATTACK, TRANSFER = "train", "attack", "convergence", "defense", "reattack", "transfer"
PERTURBATION = "perturbation"
SURROGATE, INJECTION = "surrogate", "injection"


@dataclass
class Run:
    role: str
    config: Dict[str, Any]
    model: Dict[str, Any]  # the (undefended) model's identity: dataset, backbone, hash_method, bits
    defense: str = "none"
    surrogate: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return RecordStore.key_of(self.config)


EXTERNAL = "external"
# what an existing model's records are keyed by (everything its results depend on)
EXTERNAL_IDENTITY = ("dataset", "data_dir", "image_size", "resize", "checkpoint", "def", "kwargs", "weights_sha256", "fingerprint",
                     "input_norm", "output", "select", "hash_method")


def model_identity(dataset: str, backbone: str, objective: str, bits: int) -> Dict[str, Any]:
    return {"dataset": dataset, "backbone": backbone, "hash_method": objective, "bits": int(bits)}


def external_identity(entry: Dict[str, Any]) -> Dict[str, Any]:
    """The identity of an existing model of ``[[models]]``: its name and what its results depend on."""
    return {"name": entry["name"], **{k: entry.get(k) for k in EXTERNAL_IDENTITY}}


def is_external(identity: Dict[str, Any]) -> bool:
    return "name" in identity


def model_id(identity: Dict[str, Any]) -> tuple:
    """A hashable id of a model of the grid (its name for existing models)."""
    if is_external(identity):
        return ("model", identity["name"])
    return (identity["dataset"], identity["backbone"], identity["hash_method"], identity["bits"])


def same_data(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two models were evaluated on the same dataset split (transfer needs that)."""
    return all(a.get(k) == b.get(k) for k in ("dataset", "data_dir", "image_size", "resize"))


def model_label(identity: Dict[str, Any]) -> str:
    """``DPSH-32 (cnn, mnist-mosaic)``, or ``mine (lists)`` for an existing model: how a model is
    named in tables and figures."""
    if is_external(identity):
        return f"{identity['name']} ({identity['dataset']})"
    return f"{identity['hash_method'].upper()}-{identity['bits']} ({identity['backbone']}, {identity['dataset']})"


def train_config(spec: BenchSpec, identity: Dict[str, Any]) -> Dict[str, Any]:
    return {"kind": TRAIN, **identity, "seed": spec.seed, "pretrained": bool(spec.pretrained), "train": dict(spec.train)}


def attack_config(
    spec: BenchSpec,
    identity: Dict[str, Any],
    model_key: str,
    method: str,
    targeted: bool,
    *,
    steps: Optional[int],
    params: Dict[str, Any],
    queries: int,
    defense: str = "none",
    surrogate_key: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "kind": ATTACK,
        **identity,
        "defense": defense,
        "method": method,
        "targeted": bool(targeted),
        "steps": steps,
        "params": dict(params or {}),
        "queries": int(queries),
        "batch_size": int(spec.batch_size),
        "model": model_key,
        "surrogate": surrogate_key,
        # a named protocol is part of the identity (the default adds nothing: old keys stay valid)
        **({} if spec.protocol == "default" else {"protocol": spec.protocol}),
    }


def _attack_runs(spec, role, attacks: AttackSet, identity, model_key, *, defense="none", queries=None) -> List[Run]:
    runs = []
    for method, targeted in attacks.runs():
        config = attack_config(
            spec, identity, model_key, method, targeted, steps=attacks.steps.get(method),
            params=attacks.params.get(method, {}), queries=spec.queries if queries is None else queries, defense=defense,
        )
        runs.append(Run(role, config, identity, defense=defense))
    return runs


def models_of(spec: BenchSpec) -> List[Dict[str, Any]]:
    """The grid's models: the trained ones (datasets x backbones x objectives x bits), then the existing ones."""
    trained = [model_identity(*combo) for combo in itertools.product(spec.datasets, spec.backbones, spec.objectives, spec.bits)]
    return trained + [external_identity(m) for m in spec.models]


def train_run(spec: BenchSpec, identity: Dict[str, Any]) -> Run:
    if is_external(identity):
        return Run(TRAIN, {"kind": EXTERNAL, **identity}, identity)
    return Run(TRAIN, train_config(spec, identity), identity)


def perturbation_runs(spec: BenchSpec, identity: Dict[str, Any], model_key: str) -> List[Run]:
    """The ``[perturbation]`` runs of one model: each method at each value of its swept parameter;
    ``run.extra`` names the parameter and its value (the report's x of the sweep)."""
    from ..attacks.base import parse_eps

    p = spec.perturbation
    runs = []
    for method, targeted in p.runs():
        name, values = p.sweep_of(method)
        for value in values:
            params = {"early_stop": "ap", **p.params.get(method, {})}
            if name != "eps":
                params[name] = value
            config = attack_config(spec, identity, model_key, method, targeted,
                                   steps=p.steps.get(method, spec.attacks.steps.get(method)), params=params,
                                   queries=min(p.queries, spec.queries or p.queries))
            config["role"] = PERTURBATION  # never the same record as a table run of equal settings
            if name == "eps":
                config["eps"] = parse_eps(value)
            runs.append(Run(PERTURBATION, config, identity, extra={"swept": name, "value": value}))
    return runs


def surrogate_label(identity: Dict[str, Any]) -> str:
    """``ResNet18 seed 1 (DPSH-32)``: how a surrogate model is named in the injection tables."""
    from .names import display_name

    return (f"{display_name(identity['backbone'])} seed {identity['seed']} "
            f"({display_name(identity['hash_method'])}-{identity['bits']})")


def injection_victims(spec: BenchSpec) -> List[Dict[str, Any]]:
    """The grid's trained models that ``[injection]`` poisons (all, or those its ``victims`` names)."""
    victims = spec.injection.victims if isinstance(spec.injection.victims, dict) else {}
    axes = {"datasets": "dataset", "backbones": "backbone", "objectives": "hash_method", "bits": "bits"}
    trained = [model_identity(*combo) for combo in itertools.product(spec.datasets, spec.backbones, spec.objectives, spec.bits)]
    return [m for m in trained if all(m[axes[key]] in values for key, values in victims.items())]


def injection_pairs(spec: BenchSpec) -> List[tuple]:
    """``(victim, surrogate, entry index)`` of every injection victim: ``(victim, None, None)`` for
    the white-box runs (when ``white_box``), then one per declared surrogate, where ``surrogate``
    is ``{"identity", "config", "victim_config", "entry"}`` (its train config and the victim's)."""
    inj = spec.injection
    out: List[tuple] = []
    if not inj.methods:
        return out
    for victim in injection_victims(spec):
        if inj.white_box:
            out.append((victim, None, None))
        for i, entry in enumerate(inj.surrogates):
            identity = model_identity(victim["dataset"], entry["backbone"], entry.get("objective", victim["hash_method"]),
                                      victim["bits"])
            config = {"kind": TRAIN, **identity, "seed": int(entry.get("seed", spec.seed)),
                      "pretrained": bool(entry.get("pretrained", spec.pretrained)),
                      "train": {**spec.train, **dict(entry.get("train", {}))}}
            surrogate = {"identity": {**identity, "seed": config["seed"]}, "config": config,
                         "victim_config": train_config(spec, victim), "entry": dict(entry)}
            out.append((victim, surrogate, i))
    return out


def injection_runs(spec: BenchSpec, model_keys: Dict[tuple, str]) -> List[Run]:
    """The surrogate train runs (each distinct one once, before its first use) and the injection
    runs of ``spec`` (:func:`injection_pairs` x methods x sources); ``model_keys``: the train key
    of every grid model by :func:`model_id`."""
    inj = spec.injection
    runs: List[Run] = []
    seen = set()
    for victim, surrogate, _ in injection_pairs(spec):
        surrogate_key = None
        if surrogate is not None:
            train = Run(SURROGATE, surrogate["config"], surrogate["identity"])
            surrogate_key = train.key
            if train.key not in seen and train.key not in model_keys.values():
                seen.add(train.key)
                runs.append(train)
        for method in inj.methods:
            for source in inj.sources:
                config = {
                    "kind": INJECTION, **victim, "method": method, "targeted": True,
                    "steps": inj.steps_of(method, spec.attacks), "params": inj.params_of(method, spec.attacks),
                    "source": source, "targets": int(inj.targets), "per_target": int(inj.per_target),
                    "queries": int(spec.queries if inj.queries is None else inj.queries), "radius": int(inj.radius),
                    "k": int(inj.k), "mine": int(inj.mine), "noise_proxy": float(inj.noise_proxy),
                    "batch_size": int(spec.batch_size), "model": model_keys[model_id(victim)], "surrogate": surrogate_key,
                    **({} if spec.protocol == "default" else {"protocol": spec.protocol}),
                }
                runs.append(Run(INJECTION, config, victim, surrogate=None if surrogate is None else surrogate["identity"],
                                extra={"source": source}))
    return runs


def plan(spec: BenchSpec) -> List[Run]:
    """Every run of ``spec`` in the order the runner executes them (dependencies first)."""
    runs: List[Run] = []
    model_keys: Dict[int, str] = {}
    models = models_of(spec)
    for i, identity in enumerate(models):
        train = train_run(spec, identity)
        model_keys[i] = train.key
        runs.append(train)
        runs += _attack_runs(spec, ATTACK, spec.attacks, identity, train.key)
        conv = spec.convergence
        for method, targeted in [(m, False) for m in conv.methods] + [(m, True) for m in conv.targeted]:
            for steps in conv.steps:
                config = attack_config(spec, identity, train.key, method, targeted, steps=int(steps),
                                       params=spec.attacks.params.get(method, {}), queries=min(conv.queries, spec.queries or conv.queries))
                runs.append(Run(CONVERGENCE, config, identity))
        runs += perturbation_runs(spec, identity, train.key)
        if spec.defenses.methods:  # the "none" row of the defense table, under the re-attack settings
            runs += _attack_runs(spec, REATTACK, spec.defenses.attacks(), identity, train.key)
        for name in spec.defenses.methods:
            defense = Run(DEFENSE, {
                "kind": DEFENSE, **identity, "defense": name, "epochs": spec.defenses.epochs,
                "params": dict(spec.defenses.params.get(name, {})), "seed": spec.seed, "model": train.key,
                "eval_queries": spec.defenses.eval_queries, "eval_steps": spec.defenses.eval_steps,
            }, identity, defense=name)
            runs.append(defense)
            runs += _attack_runs(spec, REATTACK, spec.defenses.attacks(), identity, defense.key, defense=name)
    transfer = spec.transfer
    for (i, victim), (j, surrogate) in itertools.product(enumerate(models), repeat=2):
        if not same_data(victim, surrogate):
            continue
        for method, targeted in [(m, False) for m in transfer.untargeted] + [(m, True) for m in transfer.targeted]:
            config = attack_config(
                spec, victim, model_keys[i], method, targeted, steps=transfer.steps.get(method, spec.attacks.steps.get(method)),
                params=spec.attacks.params.get(method, {}), queries=spec.queries,
                surrogate_key=None if i == j else model_keys[j],
            )
            runs.append(Run(TRANSFER, config, victim, surrogate=surrogate))
    runs += injection_runs(spec, {model_id(m): model_keys[i] for i, m in enumerate(models)})
    return runs


__all__ = ["Run", "plan", "models_of", "model_identity", "model_label", "model_id", "external_identity", "is_external",
           "same_data", "train_config", "attack_config", "EXTERNAL",
           "TRAIN", "ATTACK", "CONVERGENCE", "DEFENSE", "REATTACK", "TRANSFER", "PERTURBATION", "perturbation_runs",
           "SURROGATE", "INJECTION", "injection_pairs", "injection_runs", "injection_victims", "surrogate_label"]
