"""The attack protocol: fixed queries and targets per seed, one attack run, one metrics record.

Used by ``hashguard attack`` and by the benchmark runner. What it fixes (docs/design.md#queries-and-the-protocol-file):

- the queries: ``n_queries`` indices of the query split drawn once from the seed (sorted), and
  one target label per query (``targets.draw_target_labels``), saved in a protocol file that
  every later run with the same dataset, seed and count reads back instead of drawing again (with
  the data folder and a fingerprint of the query images and labels: other data is refused);
- the attacker's knowledge: the training split encoded by the attacking model (the surrogate for
  transfer runs), the victim's database codes encoded by the victim;
- the metrics of a run: clean and adversarial mAP with the query labels, t-MAP with the target
  labels, theory rows (the ideal code itself as the query), perceptibility, time per query,
  success rate.

Success: an untargeted attack succeeds on a query when fewer than half of its top-10 retrieved
items share a label with the query (P@10 < 0.5); a targeted attack when at least half share a
label with the target (t-P@10 >= 0.5). The record states the definition it used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from .. import __version__
from .._atomic import atomic_write_json
from ..attacks.base import AttackResult
from ..attacks.knowledge import Database, Knowledge
from ..attacks.registry import create_attack
from ..attacks.targets import draw_target_labels
from ..data.batching import load_images
from ..data.fingerprint import split_fingerprint
from ..models.hash_model import HashModel, encode_dataset
from ..precision import current_precision
from ..retrieval import mean_average_precision, per_query_scores, perceptibility, pr_curve, precision_at_n

SUCCESS_N = 10
SUCCESS_DEFINITION = {
    "untargeted": f"P@{SUCCESS_N} with the query label < 0.5",
    "targeted": f"P@{SUCCESS_N} with the target label >= 0.5",
}
PROTOCOL_FORMAT = "hashguard-attack-protocol-v1"
# result.extra entries copied into the record (ProS-GAN: its bound and the perceptibility of its images)
PERCEPTIBILITY_KEYS = ("bound", "rmse", "l2", "linf", "linf_max")
CURVE_NS = (1, 10, 50, 100, 250, 500, 1000)  # the P@N points of the curves in a record


def select_queries(n_total: int, n: Optional[int], seed: int) -> np.ndarray:
    """``n`` sorted indices out of ``n_total`` drawn from ``seed`` (all of them for None)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    if int(n) < 1:
        raise ValueError(f"the number of queries must be >= 1, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    return np.sort(torch.randperm(n_total, generator=gen)[: int(n)].numpy())


def protocol_path(directory: str | Path, dataset: str, seed: int, n_queries: int, protocol: str = "default") -> Path:
    """Where the protocol file of (dataset, seed, number of queries) lives inside ``directory``; a
    named protocol other than ``default`` adds its name, so its targets never mix with another's."""
    suffix = "" if protocol == "default" else f"-{protocol}"
    return Path(directory) / f"protocol-{dataset}-seed{seed}-q{n_queries}{suffix}.json"


def data_fingerprint(splits) -> str:
    """SHA-256 of the query and database label matrices: tells two datasets of one name apart (two
    folders read as ``lists``), so a protocol file is never reused for other data."""
    import hashlib

    digest = hashlib.sha256()
    for split in (splits.query, splits.database):
        labels = np.ascontiguousarray(torch.as_tensor(split.labels).to(torch.uint8).numpy())
        digest.update(str(labels.shape).encode())
        digest.update(labels.tobytes())
    return digest.hexdigest()


def load_or_draw_protocol(path: str | Path, splits, *, n_queries: Optional[int], seed: int,
                          target_rule: str = "zero-overlap") -> Tuple[np.ndarray, torch.Tensor]:
    """The query indices and target labels of ``path``; drawn and saved (atomically) if absent.

    Raises ``ValueError`` when an existing file was drawn for another dataset (name or labels),
    seed, count or target rule (a file without one was drawn with ``zero-overlap``).
    """
    path = Path(path)
    n_total = len(splits.query)
    want = n_total if n_queries is None else min(int(n_queries), n_total)
    fingerprint = data_fingerprint(splits)
    data_dir = splits.info.get("root")
    if path.exists():
        record = json.loads(path.read_text())
        found = (record.get("format"), record.get("dataset"), record.get("seed"), record.get("n_queries"))
        if found != (PROTOCOL_FORMAT, splits.name, int(seed), want):
            raise ValueError(
                f"{path} holds queries for (format, dataset, seed, n) = {found}, not "
                f"{(PROTOCOL_FORMAT, splits.name, int(seed), want)}; use another output directory or delete the file"
            )
        if record.get("target_rule", "zero-overlap") != target_rule:
            raise ValueError(
                f"{path} holds targets drawn with the {record.get('target_rule', 'zero-overlap')!r} rule, not "
                f"{target_rule!r}; use another output directory or protocol file for this protocol"
            )
        if record.get("data_fingerprint", fingerprint) != fingerprint:
            raise ValueError(
                f"{path} holds queries drawn for another {splits.name!r} dataset (its query/database labels differ); "
                "use another output directory (or --protocol FILE) for this data, or delete the file"
            )
        queries = split_fingerprint(splits.query, record["query_indices"])
        if record.get("query_fingerprint", queries) != queries:
            raise ValueError(
                f"{path} holds queries drawn from the {splits.name!r} data in {record.get('data_dir')}, but the query "
                f"images now read{f' from {data_dir}' if data_dir else ''} differ (other files or contents): its query "
                "indices would pick other images. Use another output directory (or --protocol FILE) for this data, "
                "or delete the file to draw again"
            )
        return np.asarray(record["query_indices"], dtype=np.int64), torch.tensor(record["target_labels"], dtype=torch.float32)
    idx = select_queries(n_total, want, seed)
    labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    targets = draw_target_labels(labels, splits.database.labels, seed=seed, ids=idx.tolist(), rule=target_rule)
    extra = {} if target_rule == "zero-overlap" else {"target_rule": target_rule}  # old files stay byte-equal
    atomic_write_json(path, {
        "format": PROTOCOL_FORMAT,
        "dataset": splits.name,
        "seed": int(seed),
        "n_queries": int(want),
        "data_fingerprint": fingerprint,
        "query_fingerprint": split_fingerprint(splits.query, idx),
        "data_dir": data_dir,
        "query_indices": idx.tolist(),
        "target_labels": targets.int().tolist(),
        "version": __version__,
        **extra,
    })
    return idx, targets


def _map(codes, db: Database, labels) -> float:
    return mean_average_precision(codes, db.codes, labels, db.labels, topk=db.topk)


def _rounded(values) -> list:
    return [round(float(v), 6) for v in np.asarray(values).ravel()]


def retrieval_curves(codes, database: Database, labels) -> Dict[str, Any]:
    """The PR curve by Hamming radius and the P@N curve of ``codes`` (``labels``: the query labels,
    or the target labels for t-curves), as plain lists for a JSON record."""
    precision, recall = pr_curve(codes, database.codes, labels, database.labels, by="radius")
    ns = [n for n in CURVE_NS if n <= len(database.codes)] or [len(database.codes)]
    p_at_n = precision_at_n(codes, database.codes, labels, database.labels, n=ns)
    return {
        "pr": {"precision": _rounded(precision), "recall": _rounded(recall)},
        "p_at_n": {"n": ns, "precision": _rounded(p_at_n)},
    }


def evaluate_attack(
    result: AttackResult,
    x: torch.Tensor,
    labels: torch.Tensor,
    clean_codes: torch.Tensor,
    database: Database,
    *,
    target_labels: Optional[torch.Tensor] = None,
    theory: bool = True,
    curves: bool = True,
) -> Dict[str, Any]:
    """The metrics of one attack run (see the module docstring); ``theory=False`` for transfer
    runs, where the surrogate's reference codes live in another model's code space.

    Besides the scalar metrics the record holds ``per_query`` (each query's AP, or t-AP when
    targeted, and success, in query order; the clean codes' AP, and t-AP when targeted, for the
    report's confidence intervals; with a theory row also the ideal code's AP) and, with ``curves``, the PR-by-radius and P@N curves
    of the clean and the adversarial codes (``retrieval_curves``; target labels when targeted).
    """
    targeted = target_labels is not None
    n = int(x.shape[0])
    codes_adv = result.codes_adv.cpu()
    out: Dict[str, Any] = {
        "n_queries": n,
        "clean_map": _map(clean_codes, database, labels),
        "map": _map(codes_adv, database, labels),
        "theory_map": None,
        "perceptibility": perceptibility(x.cpu(), result.x_adv.cpu()),
        "seconds": result.seconds,
        "seconds_per_query": result.seconds / max(n, 1),
        "iterations_mean": float(result.iterations.float().mean()) if n else 0.0,
        "bits_changed": float((codes_adv != clean_codes.cpu()).float().sum(1).mean()) if n else 0.0,
    }
    ideal = result.ideal_codes
    if theory and ideal is not None:
        out["theory_map"] = _map(ideal.cpu(), database, labels)
    success_labels = target_labels if targeted else labels
    ap_adv, p_adv = per_query_scores(codes_adv, database.codes, success_labels, database.labels, topk=database.topk, n=SUCCESS_N)
    ok = p_adv >= 0.5 if targeted else p_adv < 0.5
    out["success_rate"] = float(ok.mean()) if n else 0.0
    out["success_definition"] = SUCCESS_DEFINITION["targeted" if targeted else "untargeted"]
    # per query, in query order: AP (t-AP when targeted) and success, for worst-case (robust) mAP
    out["per_query"] = {"ap": _rounded(ap_adv), "success": [bool(v) for v in ok]}
    # the clean codes' APs too, so every clean cell of the report gets its bootstrap interval
    out["per_query"]["clean_ap"] = _rounded(per_query_scores(clean_codes.cpu(), database.codes, labels, database.labels,
                                                             topk=database.topk)[0])
    if targeted:
        out["per_query"]["clean_t_ap"] = _rounded(per_query_scores(clean_codes.cpu(), database.codes, target_labels,
                                                                   database.labels, topk=database.topk)[0])
    if theory and ideal is not None:  # how far each query's AP is from the ideal code's
        out["per_query"]["theory_ap"] = _rounded(per_query_scores(ideal.cpu(), database.codes, success_labels,
                                                                  database.labels, topk=database.topk)[0])
        out["bits_from_ideal"] = float((codes_adv != ideal.cpu()).float().sum(1).mean()) if n else 0.0
    if curves and n:
        out["curves"] = {"clean": retrieval_curves(clean_codes, database, success_labels),
                         "adversarial": retrieval_curves(codes_adv, database, success_labels)}
    if targeted:
        out["clean_t_map"] = _map(clean_codes, database, target_labels)
        out["t_map"] = _map(codes_adv, database, target_labels)
        out["theory_t_map"] = (
            _map(result.target_codes.cpu(), database, target_labels) if theory and result.target_codes is not None else None
        )
    for key in PERCEPTIBILITY_KEYS:  # generative attacks without a hard budget report what they used
        if key in result.extra:
            out[key] = result.extra[key]
    if "fit_seconds" in result.extra:
        out["fit_seconds"] = result.extra["fit_seconds"]
        out["seconds_per_query_with_training"] = (result.seconds + result.extra["fit_seconds"]) / max(n, 1)
    return out


SPLIT_FIELDS = ("data_dir", "image_size", "resize")  # compared when both descriptions give them


def check_surrogate_data(victim: Mapping[str, Any], surrogate: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless a transfer surrogate was trained on the victim's dataset split.

    ``victim`` and ``surrogate`` describe the data each model was trained on: a checkpoint's
    config, a benchmark model's identity, or any mapping with ``dataset``. The datasets must be
    equal; the split ``seed`` when the victim's description has one (a surrogate without one
    counts as seed 0); ``data_dir``, ``image_size`` and ``resize`` when both give them. A
    surrogate of another split would encode a reference set whose labels and images differ from
    the victim's queries and database.
    """
    differs = victim.get("dataset") != surrogate.get("dataset")
    if "seed" in victim:
        differs = differs or int(surrogate.get("seed", 0)) != int(victim["seed"])
    details = [f"{key} {surrogate[key]!r} vs {victim[key]!r}" for key in SPLIT_FIELDS
               if key in victim and key in surrogate and surrogate[key] != victim[key]]
    if differs or details:
        raise ValueError(
            f"surrogate was trained on {surrogate.get('dataset')} (seed {surrogate.get('seed', 0)}) but the victim on "
            f"{victim.get('dataset')} (seed {victim.get('seed', 0)})" + (f" ({'; '.join(details)})" if details else "")
            + "; use models of the same dataset split"
        )


def run_attack(
    model: HashModel,
    splits,
    method: str,
    *,
    targeted: bool = False,
    n_queries: Optional[int] = 500,
    seed: int = 0,
    topk: Optional[int] = None,
    surrogate: Optional[HashModel] = None,
    params: Optional[Dict[str, Any]] = None,
    protocol_file: Optional[str | Path] = None,
    batch_size: int = 128,
    progress: bool = False,
    cache: Optional[Dict[Any, Any]] = None,
    return_details: bool = False,
    victim_data: Optional[Mapping[str, Any]] = None,
    surrogate_data: Optional[Mapping[str, Any]] = None,
    protocol: Optional[Mapping[str, Any]] = None,
):
    """Run ``method`` on ``model`` (the victim) under the protocol; return the metrics record.

    Args:
        model: victim hashing model; its database codes and the adversarial codes are its own.
        splits: the dataset (``DatasetSplits``) the model was trained on.
        method: registered attack name; ``params`` are passed to ``create_attack``.
        targeted: run the targeted variant with the protocol's target labels.
        n_queries: queries drawn from the seed (None: the whole query split).
        topk: mAP cut-off (None: whole database).
        surrogate: optimise on this model instead (transfer); the victim only evaluates.
        protocol_file: where the queries and targets are kept (drawn and saved if absent).
        cache: a dict reused across calls on the same models to keep database, reference and
            clean query codes (keys ``"database"``, ``"knowledge"``, ``("clean_codes", ids)``).
        return_details: also return a dict with what the record summarises (``x``, ``labels``,
            ``target_labels``, ``query_indices``, ``clean_codes``, ``database`` and the
            ``AttackResult``), e.g. to draw retrieval examples: ``record, details = run_attack(...)``.
        victim_data, surrogate_data: what data the victim and the surrogate were trained on
            (checkpoint configs, benchmark identities); with a surrogate and both given, a
            surrogate of another dataset split is refused before any work
            (:func:`check_surrogate_data`).
        protocol: the resolved values of a named protocol (``protocols.resolve``); its
            ``target_rule`` draws the targets and its ``anchor_source`` picks where P2P / DHTA
            sample anchors (``database``: the database images encoded by the attacking model).
            The record states them under ``protocol`` and ``protocol_values``. None: the default
            protocol (``topk``, ``n_queries`` and the params as given).
    """
    if surrogate is not None and victim_data is not None and surrogate_data is not None:
        check_surrogate_data(victim_data, surrogate_data)
    from .protocols import ANCHOR_METHODS, ANCHOR_SOURCES, DEFAULT, TARGET_RULES, get_protocol

    protocol = dict(protocol or {})
    target_rule = protocol.get("target_rule", "zero-overlap")
    anchor_source = protocol.get("anchor_source", "train")
    if target_rule not in TARGET_RULES or anchor_source not in ANCHOR_SOURCES:
        raise ValueError(f"target_rule must be one of {TARGET_RULES} and anchor_source one of {ANCHOR_SOURCES}, "
                         f"got {target_rule!r} and {anchor_source!r}")
    cache = {} if cache is None else cache
    attacker = surrogate if surrogate is not None else model
    params = dict(params or {})
    for key, value in get_protocol(protocol.get("protocol", DEFAULT)).params_for(method).items():
        params.setdefault(key, value)  # e.g. ProS-GAN's bound: "tanh" in the eps-ball protocols (recorded)
    params.setdefault("seed", seed)
    params.setdefault("batch_size", batch_size)
    attack = create_attack(method, attacker, targeted=targeted, **params)

    if protocol_file is not None:
        idx, all_targets = load_or_draw_protocol(protocol_file, splits, n_queries=n_queries, seed=seed,
                                                 target_rule=target_rule)
    else:
        idx = select_queries(len(splits.query), n_queries, seed)
        labels_all = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
        all_targets = draw_target_labels(labels_all, splits.database.labels, seed=seed, ids=idx.tolist(),
                                         rule=target_rule)
    x = load_images(splits.query, torch.as_tensor(idx))
    labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(idx)]
    target_labels = all_targets if targeted else None

    if "database" not in cache:
        codes = encode_dataset(model, splits.database, progress=progress, desc="encoding database")
        cache["database"] = Database(codes, splits.database.labels, topk)
    database = Database(cache["database"].codes, cache["database"].labels, topk)
    anchors_from_database = anchor_source == "database" and method in ANCHOR_METHODS
    key = "knowledge_surrogate" if surrogate is not None else "knowledge"
    if anchors_from_database:  # the anchors are sampled from the database codes (DHTA-master, SAAT)
        key += "_database"
        if key not in cache and surrogate is None:
            cache[key] = Knowledge(cache["database"].codes, splits.database.labels)
    if key not in cache:
        reference = splits.database if anchors_from_database else splits.train
        cache[key] = Knowledge.from_model(attacker, reference, progress=progress)
    knowledge = cache[key]

    start = time.perf_counter()
    attack.fit(knowledge, splits.train, progress=progress)
    fit_seconds = time.perf_counter() - start
    result = attack(x, labels, target_labels=target_labels, knowledge=knowledge, database=database, ids=idx.tolist())
    if surrogate is not None:  # the victim re-encodes the transferred images
        result.codes_adv = model.encode(result.x_adv.to(model.device)).cpu()
    clean_key = ("clean_codes", tuple(int(i) for i in idx))  # the victim's codes of these queries
    if clean_key not in cache:
        cache[clean_key] = model.encode(x.to(model.device)).cpu()
    clean_codes = cache[clean_key]
    metrics = evaluate_attack(result, x, labels, clean_codes, database, target_labels=target_labels,
                              theory=surrogate is None)
    if fit_seconds > 0.01 and "fit_seconds" not in metrics:
        metrics["fit_seconds"] = fit_seconds
        metrics["seconds_per_query_with_training"] = (result.seconds + fit_seconds) / max(len(idx), 1)
    record = {
        "method": method,
        "targeted": bool(targeted),
        "eps": attack.eps,
        "steps": attack.steps,
        "topk": topk,
        "seed": int(seed),
        "params": {k: v for k, v in params.items() if k not in ("seed", "batch_size")},
        "transfer": surrogate is not None,
        **metrics,
        "query_indices": [int(i) for i in idx],
        "data_dir": splits.info.get("root"),
        "query_fingerprint": split_fingerprint(splits.query, idx),
        "version": __version__,
    }
    if current_precision() != "fp32":  # model forwards under autocast (hashguard.precision)
        record["precision"] = current_precision()
    if protocol:  # every value the protocol fixed, and where each comes from
        record["protocol"] = protocol.get("protocol", "default")
        record["protocol_values"] = {**protocol, "anchors_from": "database" if anchors_from_database else "train"}
    if not return_details:
        return record
    details = {"x": x, "labels": labels, "target_labels": target_labels, "query_indices": idx,
               "clean_codes": clean_codes, "database": database, "result": result}
    return record, details
