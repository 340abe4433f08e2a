"""What a benchmark run covers: the grid of models, attacks and defenses, checked before any work.

A :class:`BenchSpec` is built from a preset (``bench.presets``) or read from a small TOML or YAML
file (:func:`load_spec_file`) with this shape (every key optional; the values shown are the
defaults, except the example lists)::

    name = "my-grid"
    datasets = ["mnist-mosaic"]      # hashguard datasets; the real benchmarks need --data-dir
    backbones = ["cnn"]
    objectives = ["dpsh"]            # hashing objectives (dph, dpsh, hashnet, csq, dch, dsdh)
    bits = [32]
    seed = 0                         # queries, targets, random starts, training
    queries = 500                    # query images attacked (0 = the whole query split)
    eps = "8/255"
    topk = "default"                 # mAP cut-off: the dataset's paper convention, an int, or 0 = all
    protocol = "default"             # or a seed paper's: pga, saat, sdha, prosgan, dhta (bench/protocols.py)
    batch_size = 128                 # queries attacked together

    [train]                          # TrainConfig of models trained by the run (epochs, lr, ...)
    epochs = 6

    [attacks]                        # run on every model of the grid; "all" = every registered one
    untargeted = ["pga", "mainstay"]
    targeted = ["mainstay", "dhta"]
    steps = { dhta = 200 }           # iterations per method (default: the paper's)
    params = { tha = { prototype = { epochs = 5 } } }

    [defenses]                       # adversarially train each model, then re-attack it
    methods = ["saat", "atrdh"]
    epochs = 5                       # (default: each paper's)
    untargeted = ["pga", "mainstay"]
    targeted = ["mainstay"]
    steps = { pga = 100 }
    params = { saat = { lam = 1.0 } }

    [convergence]                    # mAP against PGD iterations, on the first `queries` queries
    methods = ["pga", "mainstay"]    # untargeted; add targeted ones under `targeted`
    targeted = ["dhta"]
    steps = [10, 20, 50, 100]
    queries = 100

    [perturbation]                   # SDHA Tables 2-4: L2 size of the perturbation against mAP
    methods = ["sdha", "hag", "pga", "ifgsm"]   # untargeted; add targeted ones under `targeted`
    queries = 100
    map_goal = 0.1                   # Table 2: the smallest mean L2 bringing mAP to <= this
    t_map_goal = 0.7                 # Table 3: ... bringing t-MAP to >= this
    budgets = [0.5, 1.0, 1.5]        # Table 4: the best mAP with a mean L2 <= each budget
    sweep = { sdha = { weight = [5, 25, 100] }, hag = { eps = ["2/255", "4/255", "8/255"] } }
    steps = { sdha = 100 }           # iterations per method (default: [attacks] steps, else the paper's)
    params = { pga = { step = "1/255" } }   # fixed per method; every run stops at AP 0 / 1 unless set

    [transfer]                       # every ordered pair of grid models on the same dataset
    untargeted = ["pga"]
    targeted = ["nag", "mainstay"]

    [injection]                      # NAG's database injection (hashguard.injection), per trained model
    methods = ["nag", "ifgsm"]       # targeted attacks (any; ifgsm / pga / dhta as the PGD-style baseline)
    steps = { nag = 8 }              # iterations per method (default: [attacks] steps, else the paper's)
    params = { nag = { step = "2/255" } }   # per method (default: its [attacks] params)
    white_box = true                 # also craft on the victim itself
    surrogates = [{ backbone = "resnet18", seed = 1 }]   # black-box: extra models trained once per
                                     # dataset x objective x bits of the victims (the grid's [train]; keys:
                                     # backbone, seed, objective (default the victim's), pretrained, train = {...})
    victims = { objectives = ["dpsh"], bits = [48] }      # which grid models are poisoned (default: all)
    sources = ["train", "noise"]     # the attacker's images: in-distribution (training split) / out-of-distribution
    targets = 0                      # target categories drawn by the seed (0 = every category a query carries)
    per_target = 10                  # poisoned images per target category
    queries = 500                    # benign queries (default: the grid's queries; 0 = all)
    radius = 5                       # Hamming radius of the radius success (NAG's code: 5)
    k = 10                           # cut-off of the top-k success
    mine = 0                         # vulnerable-pair mining: candidate factor (0 = off)
    noise_proxy = 0.0                # std of the Gaussian-noise proxy (0 = off)

    [[models]]                       # existing models: attacked, defended, re-attacked, never trained
    name = "mine"                    # how tables name it (unique)
    def = "nets/mine.py:MyHashNet"   # FILE.py:NAME, relative to the grid file (or absolute)
    weights = "nets/mine.pth"        # torch.save(net.state_dict(), ...): read with weights_only=True
    dataset = "lists"                # any dataset; `lists` = your own list files in data_dir
    data_dir = "data/mine"           # (default: --data-dir)
    input_norm = "imagenet"          # or "none", or "0.5,0.5,0.5/0.25,0.25,0.25"
    output = "tanh"                  # "logits" (default) or "tanh"
    hash_method = "dpsh"             # the objective it was trained with: L_ori of the defenses (default dpsh)

``[injection]`` poisons the database of the grid's trained models (not of ``[[models]]``, which
have no backbone or bit length to train a surrogate with): each victim x method x source runs
white-box (surrogate = victim) and once per surrogate; a surrogate is trained once per dataset,
objective and bit length it serves, on the grid's split, and recorded and resumed like the grid's
models.

A grid with ``[[models]]`` and none of datasets / backbones / objectives / bits trains nothing: it
only evaluates the listed models; give the axes too to mix trained and existing models.

Unknown keys, names that are not registered (datasets, backbones, objectives, attacks,
defenses), an attack asked for in a mode it does not support, or a step override for a method
that is not in the lists raise ``ValueError`` naming the problem and the valid choices. So does a
value of the wrong type or out of range, anywhere: every ``[train]`` field, every attack's and
defense's ``params`` (their schemas: ``attacks.schema``, ``defenses.schema``), bits (1 to 4096),
eps, and booleans such as ``pretrained``, which must be ``true`` / ``false``, never text. All of
it is checked when the grid is read, before any run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from .._params import Param
from ..errors import InputError

ALL = "all"


def _fields(cls) -> List[str]:
    return [f.name for f in dataclasses.fields(cls)]


@dataclass
class AttackSet:
    """Attacks run on a group of models: names per mode, iteration and parameter overrides."""

    untargeted: List[str] = field(default_factory=list)
    targeted: List[str] = field(default_factory=list)
    steps: Dict[str, int] = field(default_factory=dict)
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def runs(self) -> List[tuple]:
        """``(method, targeted)`` in run order: untargeted first, then targeted."""
        return [(m, False) for m in self.untargeted] + [(m, True) for m in self.targeted]


@dataclass
class DefenseSet:
    methods: List[str] = field(default_factory=list)
    epochs: Optional[int] = None
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    untargeted: List[str] = field(default_factory=list)
    targeted: List[str] = field(default_factory=list)
    steps: Dict[str, int] = field(default_factory=dict)
    attack_params: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    eval_queries: int = 200  # validation images of the per-epoch log
    eval_steps: int = 10

    def attacks(self) -> AttackSet:
        return AttackSet(self.untargeted, self.targeted, self.steps, self.attack_params)


@dataclass
class ConvergenceSet:
    methods: List[str] = field(default_factory=list)  # untargeted
    targeted: List[str] = field(default_factory=list)
    steps: List[int] = field(default_factory=lambda: [10, 20, 50, 100])
    queries: int = 100


DEFAULT_EPS_SWEEP = ["1/255", "2/255", "4/255", "6/255", "8/255", "10/255"]
DEFAULT_WEIGHT_SWEEP = [5, 10, 25, 50, 100]  # SDHA Sec. 5.1: alpha from 5/K to 100/K


@dataclass
class PerturbationSet:
    """SDHA's experiments (Tables 2-4): each method run at several strengths (one swept parameter
    per method: SDHA's ``weight`` = alpha K of Eq. 1, the L-inf ``eps`` of the others), each run
    recording its mean L2 perturbation and its mAP; the report reads off the smallest L2 that
    reaches ``map_goal`` / ``t_map_goal`` and the best mAP within each L2 budget
    (:mod:`hashguard.bench.perturbation`)."""

    methods: List[str] = field(default_factory=list)  # untargeted
    targeted: List[str] = field(default_factory=list)
    queries: int = 100
    map_goal: float = 0.1
    t_map_goal: float = 0.7
    budgets: List[float] = field(default_factory=lambda: [0.5, 1.0, 1.5])
    sweep: Dict[str, Dict[str, List[Any]]] = field(default_factory=dict)
    steps: Dict[str, int] = field(default_factory=dict)
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def sweep_of(self, method: str) -> tuple:
        """``(parameter, values)`` swept for ``method``: its ``sweep`` entry, else SDHA's weight
        over 5..100 (alpha = 5/K..100/K), else eps over 1/255..10/255."""
        if method in self.sweep:
            (name, values), = self.sweep[method].items()
            return name, list(values)
        if method == "sdha":
            return "weight", list(DEFAULT_WEIGHT_SWEEP)
        return "eps", list(DEFAULT_EPS_SWEEP)

    def runs(self) -> List[tuple]:
        return [(m, False) for m in self.methods] + [(m, True) for m in self.targeted]


@dataclass
class TransferSet:
    untargeted: List[str] = field(default_factory=list)
    targeted: List[str] = field(default_factory=list)
    steps: Dict[str, int] = field(default_factory=dict)


@dataclass
class InjectionSet:
    """NAG's database-injection experiment (:func:`hashguard.injection.evaluate_injection`) on the
    grid's trained models: white-box and against each declared surrogate (black-box)."""

    methods: List[str] = field(default_factory=list)  # targeted attacks
    steps: Dict[str, int] = field(default_factory=dict)
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    white_box: bool = True
    surrogates: List[Dict[str, Any]] = field(default_factory=list)
    victims: Dict[str, List[Any]] = field(default_factory=dict)
    sources: List[str] = field(default_factory=lambda: ["train"])
    targets: int = 0
    per_target: int = 10
    queries: Optional[int] = None
    radius: int = 5
    k: int = 10
    mine: int = 0
    noise_proxy: float = 0.0

    def params_of(self, method: str, attacks: AttackSet) -> Dict[str, Any]:
        """The method's parameters: its own ``params`` entry, else those of ``[attacks]``."""
        return dict(self.params[method]) if method in self.params else dict(attacks.params.get(method, {}))

    def steps_of(self, method: str, attacks: AttackSet) -> Optional[int]:
        return self.steps.get(method, attacks.steps.get(method))


SURROGATE_KEYS = ("backbone", "seed", "objective", "pretrained", "train")
VICTIM_KEYS = ("datasets", "backbones", "objectives", "bits")


@dataclass
class BenchSpec:
    """A benchmark grid: datasets x backbones x objectives x bits, each model attacked, defended
    and re-attacked, plus convergence and transfer runs. See the module docstring for the file
    format; :meth:`validate` checks every name against the registries."""

    name: str = "custom"
    datasets: List[str] = field(default_factory=lambda: ["mnist-mosaic"])
    backbones: List[str] = field(default_factory=lambda: ["cnn"])
    objectives: List[str] = field(default_factory=lambda: ["dpsh"])
    bits: List[int] = field(default_factory=lambda: [32])
    seed: int = 0
    queries: int = 500
    eps: Any = "8/255"
    topk: Any = "default"
    protocol: str = "default"
    batch_size: int = 128
    pretrained: bool = False
    train: Dict[str, Any] = field(default_factory=dict)
    attacks: AttackSet = field(default_factory=AttackSet)
    defenses: DefenseSet = field(default_factory=DefenseSet)
    convergence: ConvergenceSet = field(default_factory=ConvergenceSet)
    transfer: TransferSet = field(default_factory=TransferSet)
    perturbation: PerturbationSet = field(default_factory=PerturbationSet)
    injection: InjectionSet = field(default_factory=InjectionSet)
    examples: List[str] = field(default_factory=lambda: ["pga", "mainstay"])  # retrieval-grid attacks
    example_rows: int = 4
    models: List[Dict[str, Any]] = field(default_factory=list)  # existing models (see the module docstring)

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Dict[str, Any], *, source: str = "the grid", base_dir: Optional[Path] = None,
                  check_files: bool = True) -> BenchSpec:
        """Build from the nested dict of a TOML / YAML file; unknown keys raise ``ValueError``.

        ``base_dir``: the folder relative ``def`` / ``weights`` / ``data_dir`` paths of
        ``[[models]]`` start from (the grid file's folder); ``check_files=False`` skips checking
        that those files exist (a report of finished records needs none of them)."""
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a table of settings, got {type(data).__name__}")
        data = copy.deepcopy(data)
        if data.get("models") and not any(k in data for k in ("datasets", "backbones", "objectives", "bits")):
            data["datasets"] = []  # existing models only: nothing to train
        if isinstance(data.get("models"), list) and base_dir is not None:
            data["models"] = [_rebase(m, base_dir) for m in data["models"]]
        sections = {"attacks": AttackSet, "defenses": DefenseSet, "convergence": ConvergenceSet, "transfer": TransferSet,
                    "perturbation": PerturbationSet, "injection": InjectionSet}
        _check_keys(data, _fields(cls), source)
        kwargs: Dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                if not isinstance(value, dict):
                    raise ValueError(f"[{key}] in {source} must be a table, got {type(value).__name__}")
                _check_keys(value, _fields(sections[key]), f"[{key}] of {source}")
                kwargs[key] = sections[key](**value)
            else:
                kwargs[key] = value
        for key in ("datasets", "backbones", "objectives", "bits"):
            if key in kwargs and not isinstance(kwargs[key], list):
                kwargs[key] = [kwargs[key]]
        spec = cls(**kwargs)
        # whether the grid asked for trained models (a model added on the command line then joins them);
        # an attribute, not a field, so never written to spec.json
        spec.trains_models = any(k in data for k in ("datasets", "backbones", "objectives", "bits")) and bool(spec.datasets)  # type: ignore[attr-defined]
        spec.validate(check_files=check_files)
        return spec

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    # -- checks -------------------------------------------------------------------------------

    def validate(self, *, check_files: bool = True) -> BenchSpec:
        """Check every setting and name; expand ``"all"``; raise ``ValueError`` on the first problem."""
        from .._params import EPS, check_bits, check_value
        from ..attacks import list_attacks
        from ..data import list_datasets
        from ..defenses import list_defenses
        from ..hashing import TrainConfig, list_hashing
        from ..models import list_backbones

        _names(self.datasets, list_datasets(), "dataset", "datasets")
        if isinstance(self.models, list):
            self.models = [_external_model(m, i, check_files) for i, m in enumerate(self.models)]
        if not isinstance(self.models, list):
            raise ValueError(f"models must be a list of tables ([[models]] in TOML), got {self.models!r}")
        names = [m["name"] for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"[[models]] names must be unique, got {names}")
        if not self.datasets and not self.models:
            raise ValueError("the grid has no model: list datasets (with backbones, objectives, bits) to train, "
                             "or existing models under [[models]]")
        _names(self.backbones, list_backbones(), "backbone", "backbones")
        _names(self.objectives, list_hashing(), "hashing objective", "objectives")
        if not isinstance(self.bits, list):
            raise ValueError(f"bits must be a list of code lengths such as [16, 32, 64], got {self.bits!r}")
        for b in self.bits:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise ValueError(f"bits must be positive integers, got {b!r} in bits = {self.bits}")
            check_bits(b, syntax="toml")
        for key in ("datasets", "backbones", "objectives", "bits"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ValueError(f"{key} lists a value twice: {values}; each model of the grid must be distinct")
            if not values and self.datasets:
                raise ValueError(f"{key} is empty: the grid trains datasets x backbones x objectives x bits models")
        _int(self.seed, "seed", 0)
        _int(self.queries, "queries (0 = the whole query split)", 0)
        _int(self.batch_size, "batch_size", 1)
        _int(self.example_rows, "example_rows", 0)
        self.eps = float(check_value("eps", EPS, self.eps, syntax="toml"))
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be text (how the report calls the grid), got {self.name!r}")
        check_value("pretrained", PRETRAINED, self.pretrained, syntax="toml")
        if self.topk != "default":
            _int(self.topk, 'topk ("default", or an int; 0 = the whole database)', 0)
        from .protocols import apply_to_spec

        apply_to_spec(self)
        _check_keys(self.train, [f for f in _fields(TrainConfig) if f not in ("seed", "num_workers")], "[train]")
        TrainConfig(**self.train).validate(syntax="toml")  # type and range of every field

        untargeted, targeted = list_attacks(targeted=False), list_attacks(targeted=True)
        for section, obj in (("attacks", self.attacks), ("defenses", self.defenses), ("transfer", self.transfer)):
            obj.untargeted = _attack_names(obj.untargeted, untargeted, f"[{section}] untargeted", "untargeted")
            obj.targeted = _attack_names(obj.targeted, targeted, f"[{section}] targeted", "targeted")
            _overrides(obj.steps, obj.untargeted + obj.targeted, f"[{section}] steps", positive=True)
        _overrides(self.attacks.params, self.attacks.untargeted + self.attacks.targeted, "[attacks] params")
        _overrides(self.defenses.attack_params, self.defenses.untargeted + self.defenses.targeted, "[defenses] attack_params")
        for section, obj, params in (("attacks", self.attacks, self.attacks.params),
                                     ("defenses", self.defenses.attacks(), self.defenses.attack_params),
                                     ("transfer", self.transfer, self.attacks.params)):
            _attack_settings(obj, params, section)
        _names(self.defenses.methods, list_defenses(), "defense", "[defenses] methods")
        _overrides(self.defenses.params, self.defenses.methods, "[defenses] params")
        _defense_settings(self.defenses.params)
        if self.defenses.methods and not (self.defenses.untargeted or self.defenses.targeted):
            raise ValueError("[defenses] trains defenses but re-attacks them with nothing; add untargeted = [...] "
                             "and/or targeted = [...] under [defenses]")
        if self.defenses.epochs is not None:
            _int(self.defenses.epochs, "[defenses] epochs", 1)
        _int(self.defenses.eval_queries, "[defenses] eval_queries", 1)
        _int(self.defenses.eval_steps, "[defenses] eval_steps", 1)
        if self.defenses.methods:  # an existing model's L_ori term: the objective it was trained with
            for m in self.models:
                if m.get("hash_method") is None:
                    m["hash_method"] = DEFAULT_OBJECTIVE
        if (self.defenses.untargeted or self.defenses.targeted) and not self.defenses.methods:
            raise ValueError("[defenses] lists attacks but no methods; add methods = [\"saat\", ...] or drop the attacks")
        c = self.convergence
        c.methods = _attack_names(c.methods, untargeted, "[convergence] methods", "untargeted")
        c.targeted = _attack_names(c.targeted, targeted, "[convergence] targeted", "targeted")
        _no_fixed_steps(c.methods + c.targeted, "[convergence]")
        if c.methods or c.targeted:
            if not c.steps or not isinstance(c.steps, list):
                raise ValueError(f"[convergence] steps must be a non-empty list of iteration counts, got {c.steps!r}")
            for s in c.steps:
                _int(s, "[convergence] steps", 1)
            _int(c.queries, "[convergence] queries", 1)
        _perturbation_settings(self.perturbation, untargeted, targeted)
        _injection_settings(self, targeted, TrainConfig)
        self.examples = _attack_names(self.examples, sorted(set(untargeted) | set(targeted)), "examples", "")
        if self.transfer.untargeted or self.transfer.targeted:
            from .plan import models_of, same_data

            models = models_of(self)
            if not any(same_data(a, b) for i, a in enumerate(models) for b in models[i + 1:]):
                raise ValueError("[transfer] needs at least two models on one dataset (a surrogate and a victim); "
                                 "add an objective, backbone or bit length, or drop [transfer]")
        return self

    def check_data(self, data_dir: Optional[str]) -> None:
        """Raise ``ValueError`` if a dataset needs ``--data-dir`` and none was given (loads nothing)."""
        from ..data import check_dataset

        for name in self.datasets:
            check_dataset(name, data_dir)
        for m in self.models:
            if not m.get("in_memory"):
                check_dataset(m["dataset"], m.get("data_dir") or data_dir)

    def resolve_models(self) -> None:
        """Record the SHA-256 of every existing model's weights file (records are keyed by it, so
        other weights never reuse a result)."""
        from ..models.external import file_sha256

        for m in self.models:
            if m.get("weights"):
                m["weights_sha256"] = file_sha256(m["weights"])

    @property
    def n_models(self) -> int:
        return len(self.datasets) * len(self.backbones) * len(self.objectives) * len(self.bits) + len(self.models)


# ------------------------------------------------------------------------------------------------
# checks


def _check_keys(data: Dict[str, Any], valid: List[str], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table, got {type(data).__name__}")
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))} in {where}; valid: {', '.join(valid)}")


def _int(value: Any, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _names(values: Any, valid: List[str], what: str, where: str) -> None:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where} must be a list of names, got {values!r}")
    for v in values:
        if v not in valid:
            raise ValueError(f"unknown {what} {v!r} in {where}; valid choices: {', '.join(valid)}")


def _attack_names(values: Any, valid: List[str], where: str, mode: str) -> List[str]:
    if values == ALL:
        return list(valid)
    from ..attacks import list_attacks

    _names(values, list_attacks(), "attack", where)
    for v in values:
        if v not in valid:
            raise ValueError(f"attack {v!r} in {where} has no {mode} mode; {mode} attacks: {', '.join(valid)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{where} names an attack twice: {values}")
    return list(values)


PRETRAINED = Param("bool", example=True, note="start the backbones from ImageNet weights")

# set by the grid itself (eps, seed, batch_size, steps tables, the attack lists), never per method
RESERVED_ATTACK_PARAMS = ("targeted", "eps", "seed", "batch_size", "steps")
RESERVED_DEFENSE_PARAMS = ("seed", "epochs")


def _no_fixed_steps(methods: List[str], where: str) -> None:
    from ..attacks.registry import ATTACKS

    for m in methods:
        if ATTACKS.get(m).fixed_steps:
            raise ValueError(f"{where} sets iterations for {m!r}, whose iteration count is fixed by the method; drop it")


def _attack_settings(attacks: Any, params: Dict[str, Any], section: str) -> None:
    """Every attack of a section accepts its params (checked against its constructor) in its modes."""
    from ..attacks.registry import check_attack_params

    _no_fixed_steps(list(attacks.steps), f"[{section}] steps")
    for method, targeted in [(m, False) for m in attacks.untargeted] + [(m, True) for m in attacks.targeted]:
        extra = dict(params.get(method, {}))
        reserved = [k for k in extra if k in RESERVED_ATTACK_PARAMS]
        if reserved:
            raise ValueError(f"params of {method!r} in [{section}] set {', '.join(map(repr, reserved))}, which the grid "
                             "sets itself (eps, seed, batch_size at the top level; iterations in steps = {...})")
        try:
            check_attack_params(method, {**extra, "targeted": targeted}, syntax="toml")
        except ValueError as err:
            raise InputError(f"[{section}]: {err}") from None


def _perturbation_settings(p: PerturbationSet, untargeted: List[str], targeted: List[str]) -> None:
    """``[perturbation]``: names, goals, budgets, one swept parameter per method with values its
    schema accepts (eps by the eps rule), step and parameter overrides."""
    from .._params import EPS, check_value
    from ..attacks.registry import check_attack_params

    where = "[perturbation]"
    p.methods = _attack_names(p.methods, untargeted, f"{where} methods", "untargeted")
    p.targeted = _attack_names(p.targeted, targeted, f"{where} targeted", "targeted")
    names = p.methods + p.targeted
    if not names:
        return
    _int(p.queries, f"{where} queries", 1)
    for key in ("map_goal", "t_map_goal"):
        value = getattr(p, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{where} {key} must be a mAP in [0, 1] (a fraction, not percent), got {value!r}")
    if (not isinstance(p.budgets, list) or not p.budgets
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) or b <= 0 for b in p.budgets)):
        raise ValueError(f"{where} budgets must be a non-empty list of positive L2 sizes (pixel units, e.g. "
                         f"[0.5, 1.0, 1.5]), got {p.budgets!r}")
    _overrides(p.steps, names, f"{where} steps", positive=True)
    _no_fixed_steps(list(p.steps), f"{where} steps")
    _overrides(p.params, names, f"{where} params")
    _overrides(p.sweep, names, f"{where} sweep")
    for method, targeted_mode in p.runs():
        if method in p.sweep and len(p.sweep[method]) != 1:
            raise ValueError(f"{where} sweep.{method} must name exactly one parameter, e.g. {{ eps = [\"2/255\", "
                             f"\"8/255\"] }}, got {p.sweep[method]!r}")
        name, values = p.sweep_of(method)
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where} sweep.{method}.{name} must be a non-empty list of values, got {values!r}")
        extra = dict(p.params.get(method, {}))
        reserved = [k for k in extra if k in RESERVED_ATTACK_PARAMS]
        if reserved or name in ("targeted", "seed", "batch_size", "steps"):
            raise ValueError(f"{where} params / sweep of {method!r} set {', '.join(map(repr, reserved or [name]))}, "
                             "which the grid sets itself; sweep eps or a method parameter")
        for value in values:
            try:
                if name == "eps":
                    check_value(f"{where} sweep.{method}.eps", EPS, value, syntax="toml")
                    check_attack_params(method, {**extra, "targeted": targeted_mode}, syntax="toml")
                else:
                    check_attack_params(method, {**extra, name: value, "targeted": targeted_mode}, syntax="toml")
            except ValueError as err:
                raise InputError(f"{where}: {err}") from None


def _injection_settings(spec: BenchSpec, targeted: List[str], train_config_cls) -> None:
    """``[injection]``: targeted methods, their steps / params, the surrogates (each trainable and
    never one of the victims), the victim filter, the attacker images and the protocol numbers."""
    from ..hashing import list_hashing
    from ..injection import SOURCES
    from ..models import list_backbones

    where = "[injection]"
    inj = spec.injection
    inj.methods = _attack_names(inj.methods, targeted, f"{where} methods", "targeted")
    if not inj.methods:
        if inj.surrogates or inj.steps or inj.params or inj.victims:
            raise ValueError(f"{where} declares surrogates, steps, params or victims but no methods; add "
                             "methods = [\"nag\", \"ifgsm\"] or drop [injection]")
        return
    if not isinstance(inj.white_box, bool):
        raise ValueError(f"{where} white_box must be true or false, got {inj.white_box!r}")
    if not isinstance(inj.surrogates, list):
        raise ValueError(f"{where} surrogates must be a list of tables, e.g. [{{ backbone = \"resnet18\", seed = 1 }}], "
                         f"got {inj.surrogates!r}")
    if not inj.white_box and not inj.surrogates:
        raise ValueError(f"{where} has white_box = false and no surrogates: nothing to run; add surrogates = "
                         "[{ backbone = \"resnet18\", seed = 1 }] or set white_box = true")
    if not spec.datasets:
        raise ValueError(f"{where} poisons the grid's trained models, and this grid trains none; list datasets, "
                         "backbones, objectives and bits (existing [[models]] cannot be injection victims)")
    _overrides(inj.steps, inj.methods, f"{where} steps", positive=True)
    _no_fixed_steps(list(inj.steps), f"{where} steps")
    _overrides(inj.params, inj.methods, f"{where} params")
    _attack_settings(AttackSet(targeted=inj.methods, steps=inj.steps),
                     {m: inj.params_of(m, spec.attacks) for m in inj.methods}, "injection")
    for i, entry in enumerate(inj.surrogates):
        what = f"{where} surrogates #{i + 1}"
        _check_keys(entry, list(SURROGATE_KEYS), what)
        if not isinstance(entry.get("backbone"), str):
            raise ValueError(f"{what} needs backbone = \"...\" (one of {', '.join(list_backbones())})")
        _names([entry["backbone"]], list_backbones(), "backbone", f"{what} backbone")
        if "objective" in entry:
            _names([entry["objective"]], list_hashing(), "objective", f"{what} objective")
        if "seed" in entry:
            _int(entry["seed"], f"{what} seed", 0)
        if "pretrained" in entry and not isinstance(entry["pretrained"], bool):
            raise ValueError(f"{what} pretrained must be true or false, got {entry['pretrained']!r}")
        overrides = entry.get("train", {})
        if not isinstance(overrides, dict):
            raise ValueError(f"{what} train must be a table of [train] settings, got {overrides!r}")
        _check_keys(overrides, [f for f in _fields(train_config_cls) if f not in ("seed", "num_workers")], f"{what} train")
        try:
            train_config_cls(**overrides).validate(syntax="toml")
        except ValueError as err:
            raise InputError(f"{what} train: {err}") from None
    if not isinstance(inj.victims, dict):
        raise ValueError(f"{where} victims must be a table such as {{ objectives = [\"dpsh\"], bits = [48] }}, got {inj.victims!r}")
    _check_keys(inj.victims, list(VICTIM_KEYS), f"{where} victims")
    for key, values in inj.victims.items():
        if not isinstance(values, list) or not values or any(v not in getattr(spec, key) for v in values):
            raise ValueError(f"{where} victims.{key} must be a non-empty list of the grid's {key} "
                             f"({', '.join(map(str, getattr(spec, key)))}), got {values!r}")
    if not isinstance(inj.sources, list) or not inj.sources or len(set(map(str, inj.sources))) != len(inj.sources):
        raise ValueError(f"{where} sources must be a non-empty list of distinct sources ({', '.join(SOURCES)}), "
                         f"got {inj.sources!r}")
    for source in inj.sources:
        if source not in SOURCES:
            raise ValueError(f"unknown attacker image source {source!r} in {where} sources; valid: {', '.join(SOURCES)} "
                             "(train: in-distribution, noise: out-of-distribution)")
    _int(inj.targets, f"{where} targets", 0)
    _int(inj.per_target, f"{where} per_target", 1)
    if inj.queries is not None:
        _int(inj.queries, f"{where} queries", 0)
    _int(inj.radius, f"{where} radius", 0)
    _int(inj.k, f"{where} k", 1)
    _int(inj.mine, f"{where} mine", 0)
    if isinstance(inj.noise_proxy, bool) or not isinstance(inj.noise_proxy, (int, float)) or inj.noise_proxy < 0:
        raise ValueError(f"{where} noise_proxy must be a number >= 0 (the Gaussian std in pixel units; 0 = off), "
                         f"got {inj.noise_proxy!r}")
    from .plan import injection_pairs

    for victim, surrogate, _ in injection_pairs(spec):
        if surrogate is not None and surrogate["config"] == surrogate["victim_config"]:
            raise ValueError(f"{where} surrogate {surrogate['entry']} is the victim "
                             f"{victim['hash_method']}-{victim['bits']} ({victim['backbone']}) itself (same backbone, "
                             "objective, seed and training): white-box runs are planned anyway; give it another seed "
                             "or backbone")


def _defense_settings(params: Dict[str, Dict[str, Any]]) -> None:
    from ..defenses.registry import check_defense_params

    for method, extra in params.items():
        reserved = [k for k in extra if k in RESERVED_DEFENSE_PARAMS]
        if reserved:
            raise ValueError(f"params of defense {method!r} set {', '.join(map(repr, reserved))}, which the grid sets "
                             "itself (seed at the top level, epochs under [defenses])")
        try:
            check_defense_params(method, extra, syntax="toml")
        except ValueError as err:
            raise InputError(f"[defenses]: {err}") from None


def _overrides(mapping: Any, allowed: List[str], where: str, *, positive: bool = False) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a table of method = value, got {mapping!r}")
    for key, value in mapping.items():
        if key not in allowed:
            raise ValueError(f"{where} sets {key!r}, which is not in the lists it applies to ({', '.join(allowed) or 'none'})")
        if positive:
            _int(value, f"{where}.{key}", 1)
        elif not isinstance(value, dict):
            raise ValueError(f"{where}.{key} must be a table of parameters, got {value!r}")


DEFAULT_OBJECTIVE = "dpsh"  # L_ori of the defenses of an existing model that does not name its objective
MODEL_KEYS = ("name", "checkpoint", "def", "weights", "kwargs", "dataset", "data_dir", "image_size", "resize", "input_norm",
              "output", "select", "hash_method", "weights_sha256", "in_memory", "fingerprint")


def _rebase(entry: Any, base_dir: Path) -> Any:
    """Relative ``checkpoint`` / ``def`` / ``weights`` / ``data_dir`` of a grid file's model, made relative to its folder."""
    if not isinstance(entry, dict):
        return entry
    entry = dict(entry)
    for key in ("checkpoint", "def", "weights", "data_dir"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            path_text, sep, name = value.rpartition(":") if key == "def" else (value, "", "")
            if key == "def" and not sep:
                continue
            path = Path(path_text).expanduser()
            if not path.is_absolute():
                path = base_dir / path
            entry[key] = str(path) + (sep + name if key == "def" else "")
    return entry


def _external_model(entry: Any, i: int, check_files: bool = True) -> Dict[str, Any]:
    """One ``[[models]]`` table, checked (files exist, names registered), with its defaults."""
    from ..data import list_datasets
    from ..hashing import list_hashing
    from ..models.external import split_model_def
    from ..models.wrapped import OUTPUTS, parse_input_norm

    where = f"[[models]] #{i + 1}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table (name, def, weights, dataset, input_norm, ...), got {entry!r}")
    _check_keys(entry, list(MODEL_KEYS), where)
    m = {"output": "logits", "hash_method": None, "kwargs": {}, "select": None, **entry}
    if not isinstance(m.get("name"), str) or not m["name"].strip():
        raise ValueError(f"{where} needs name = \"...\" (how the tables call it)")
    where = f"[[models]] {m['name']!r}"
    if m.get("checkpoint") is not None:  # a checkpoint of `hashguard train`: it knows its dataset
        if m.get("def") is not None:
            raise ValueError(f"{where}: give checkpoint = ... (hashguard's) or def = ... + weights = ... (yours), not both")
        if check_files:
            from ..models import read_checkpoint_config

            if not Path(str(m["checkpoint"])).is_file():
                raise ValueError(f"{where}: checkpoint {m['checkpoint']} does not exist")
            config = read_checkpoint_config(m["checkpoint"])
            for key in ("dataset", "data_dir", "image_size", "resize", "hash_method"):
                if entry.get(key) is None and config.get(key) is not None:
                    m[key] = config[key]
        m["weights"] = m["checkpoint"]
        return m
    if not isinstance(m.get("dataset"), str):
        raise ValueError(f"{where} needs dataset = \"...\" (lists, for your own list files in data_dir, or a registered one)")
    if not m.get("in_memory"):
        if m["dataset"] not in list_datasets():
            raise ValueError(f"{where}: unknown dataset {m['dataset']!r}; valid choices: {', '.join(list_datasets())}")
        if not isinstance(m.get("def"), str):
            raise ValueError(f"{where} needs def = \"FILE.py:NAME\" (the class or function that builds the network)")
        if check_files:
            split_model_def(m["def"])
        if check_files and m.get("weights") is not None and not Path(str(m["weights"])).is_file():
            raise ValueError(f"{where}: weights file {m['weights']} does not exist")
        if "input_norm" not in m:
            raise ValueError(f"{where} needs input_norm = \"imagenet\", \"none\" or \"MEAN/STD\" "
                             "(the normalisation the network was trained with)")
        m["input_norm"] = parse_input_norm(m["input_norm"])[2]
    if m["output"] not in OUTPUTS:
        raise ValueError(f"{where}: output must be one of {', '.join(OUTPUTS)}, got {m['output']!r}")
    if m["hash_method"] is not None and m["hash_method"] not in list_hashing():
        raise ValueError(f"{where}: unknown hash_method {m['hash_method']!r}; valid choices: {', '.join(list_hashing())}")
    if not isinstance(m["kwargs"], dict):
        raise ValueError(f"{where}: kwargs must be a table of keyword arguments, got {m['kwargs']!r}")
    for key in ("image_size", "resize"):
        if m.get(key) is not None:
            _int(m[key], f"{where} {key}", 1)
    return m


# ------------------------------------------------------------------------------------------------
# files


def load_spec_file(path: str | Path) -> BenchSpec:
    """Read a grid from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grid file {path} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10: the backport (a dependency there)
            import tomli as tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"grid file {path} is not valid TOML: {err}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"reading {path} needs PyYAML: pip install pyyaml (or write the grid as TOML)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"grid file {path} is not valid YAML: {err}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"grid file {path} is not valid JSON: {err}") from None
    else:
        raise ValueError(f"grid file {path} must end in .toml, .yaml, .yml or .json")
    spec = BenchSpec.from_dict(data or {}, source=str(path), base_dir=path.resolve().parent)
    if "name" not in (data or {}):
        spec.name = path.stem
    return spec


__all__ = ["AttackSet", "BenchSpec", "ConvergenceSet", "DefenseSet", "InjectionSet", "PerturbationSet", "TransferSet", "load_spec_file"]
