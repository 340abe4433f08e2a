"""Database injection: the threat model of NAG (Xiao & Wang, CVPR 2021, Sec. 1 and Sec. 4).

The attacker does not control the queries. It perturbs images of *its own* (in-distribution ones,
e.g. images of the training split, or out-of-distribution ones: synthetic noise, another
dataset's images) toward the code of a target category on a surrogate model, and gets them into
the victim's database (crawled, indexed, cached). Success: *benign* queries of the target
category retrieve a poisoned image (spam, inappropriate content, product-search hijacking). The
victim is a black box when the surrogate is another model (another seed, backbone or objective);
white-box when the surrogate is the victim itself.

Protocol of :func:`evaluate_injection`, per target category c:

1. ``per_target`` attacker images that do not carry c (``source="train"``: the training split;
   ``"noise"``: seeded smooth-noise images; or a tensor of images of your own).
2. Options of the paper: *vulnerable-pair mining* (Sec. 3, "vulnerable pairs ... explicitly mined
   based on the hamming distance from the white-box model"): draw ``mine`` times more candidates
   and keep those whose surrogate code is nearest to their target code; *the random-noise proxy*
   (Sec. 3, "additive Gaussian random noise as a proxy to estimate the adversarial region"): craft
   twice as many, and keep the poisoned images whose surrogate code stays within the radius of the
   target code most often under added Gaussian noise of std ``noise_proxy``.
3. The attack (any targeted attack: ``nag``, ``ifgsm`` / ``pga`` / ``dhta`` ... as the PGD-style
   baseline) perturbs them on the surrogate toward target label c (its own target-code rule;
   NAG: the code of one reference image of c), inside the L-inf ball of eps and [0, 1].
4. The victim encodes them; their codes are appended *in memory* to a copy of the database codes
   (the poisoned ids are ``len(database) + j``; the dataset, its files and the original code
   tensor are never modified).
5. Metrics over the benign queries carrying c, on the victim (ranking ties in database index order,
   so an appended item ranks after benign items at equal distance):
   ``topk_success`` share of queries with a poisoned image of c among their first ``k`` results;
   ``radius_success`` share with one within Hamming radius ``radius`` (NAG's public code counts
   success within radius 5 at 48 bits); ``t_map`` mAP@topk where the relevant items are the
   poisoned images of c (a t-MAP-style figure). The same three for the unperturbed attacker
   images (``clean_*``: the baseline), and ``surrogate_radius_hit``, the share of poisoned images
   whose surrogate code is within the radius of its target code (the white-box success).
   Aggregates are means over the target categories.

Example::

    record = hashguard.evaluate_injection(victim, splits, "nag", surrogate=other_model, per_target=10)
    record["radius_success"], record["clean_radius_success"]
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .errors import InputError

THREATS = ("query", "injection")
SOURCES = ("train", "noise")
DEFAULT_RADIUS = 5  # NAG's public code: success = within Hamming radius 5 (48 bits)
DEFAULT_K = 10  # the protocol's success cut-off (P@10)
PROXY_POOL = 2  # with the noise proxy, craft this many times per_target and keep the most robust
PROXY_DRAWS = 8  # noise draws per poisoned image


def check_threat(threat: str) -> str:
    """``threat`` when it is one of :data:`THREATS`; ``InputError`` otherwise."""
    if threat not in THREATS:
        raise InputError(f"unknown threat {threat!r}; valid threats: {', '.join(THREATS)} "
                         "(query: perturb the queries; injection: poison the database)")
    return threat


def _check_int(name: str, value: Any, low: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise InputError(f"{name} must be an int >= {low}, got {value!r}; {hint}")
    return int(value)


def noise_images(n: int, shape: Sequence[int], seed: int) -> torch.Tensor:
    """``n`` out-of-distribution images in [0, 1]: smooth random colour fields (uniform noise on a
    4x4 grid, bilinearly upsampled, plus fine uniform noise), drawn from ``seed``."""
    gen = torch.Generator().manual_seed(int(seed) * 104729 + 17)
    c, h, w = (int(s) for s in shape)
    coarse = torch.rand(n, c, 4, 4, generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    fine = torch.rand(n, c, h, w, generator=gen)
    return (0.8 * smooth + 0.2 * fine).clamp(0, 1)


def _target_list(targets: Any, query_labels: torch.Tensor, seed: int) -> List[int]:
    """Target categories: None -> every category some query carries; an int n -> n of them drawn
    by the seed; a sequence -> those (each checked)."""
    n_classes = int(query_labels.shape[1])
    present = [c for c in range(n_classes) if bool(query_labels[:, c].any())]
    if targets is None:
        return present
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        n = _check_int("targets", targets, 1, "give a number of target categories or a list of them")
        gen = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(len(present), generator=gen).tolist()
        return sorted(present[i] for i in order[:n])
    chosen = [int(t) for t in targets]
    if not chosen:
        raise InputError("targets is empty; give at least one target category (or None for all)")
    for c in chosen:
        if not 0 <= c < n_classes:
            raise InputError(f"target category {c} is out of range: the dataset has {n_classes} categories (0-{n_classes - 1})")
        if c not in present:
            raise InputError(f"no query carries target category {c}: nothing could retrieve its poisoned images; "
                             "choose another category")
    return sorted(dict.fromkeys(chosen))


def _attacker_pool(source: Any, splits, seed: int) -> Tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """``(images, labels or None, description)`` of the attacker's own images."""
    from .data.batching import load_images

    if isinstance(source, torch.Tensor):
        if source.dim() != 4 or source.shape[0] == 0:
            raise InputError(f"no attacker images: source must be a non-empty (N, C, H, W) tensor, got shape {tuple(source.shape)}")
        if bool(((source < 0) | (source > 1)).any()):
            raise InputError("attacker images must be in [0, 1]; divide 8-bit images by 255")
        return source.detach().float().cpu(), None, "images"
    if source == "train":
        n = len(splits.train)
        if n == 0:
            raise InputError("no attacker images: the training split is empty; use source='noise' or pass images")
        return load_images(splits.train, torch.arange(n)), torch.as_tensor(splits.train.labels).float(), "train"
    if source == "noise":
        shape = load_images(splits.query, torch.arange(1)).shape[1:]
        return noise_images(4096, shape, seed), None, "noise"
    raise InputError(f"unknown attacker image source {source!r}; valid: {', '.join(SOURCES)} or an (N, C, H, W) tensor")


def _candidates(pool_labels: Optional[torch.Tensor], n_pool: int, c: int, n: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` attacker images for target ``c`` (those not carrying c), drawn by the seed."""
    allowed = torch.arange(n_pool) if pool_labels is None else torch.nonzero(pool_labels[:, c] == 0).flatten()
    if allowed.numel() == 0:
        raise InputError(f"no attacker images for target category {c}: every image of the source carries it; "
                         "use source='noise' or other images")
    gen = torch.Generator().manual_seed(int(seed) * 1009 + c)
    return allowed[torch.randperm(allowed.numel(), generator=gen)[: min(n, allowed.numel())]]


def _retrieval(query_codes: torch.Tensor, db_codes: torch.Tensor, relevant: torch.Tensor, item_codes: torch.Tensor,
               *, k: int, topk: Optional[int], radius: int) -> Dict[str, float]:
    """Top-k success, radius success and AP mean of ``query_codes`` on ``db_codes`` where the
    items flagged in ``relevant`` (their codes ``item_codes``) are the relevant ones."""
    from .retrieval import hamming_distances, per_query_scores

    if query_codes.shape[0] == 0:
        return {"topk_success": 0.0, "radius_success": 0.0, "t_map": 0.0}
    ones = torch.ones(query_codes.shape[0], 1)
    ap, p = per_query_scores(query_codes, db_codes, ones, relevant.float().unsqueeze(1), topk=topk, n=k)
    if item_codes.shape[0]:
        within = torch.from_numpy(hamming_distances(query_codes, item_codes).min(1) <= radius).float()
    else:
        within = torch.zeros(query_codes.shape[0])
    return {"topk_success": float((p > 0).mean()), "radius_success": float(within.mean()), "t_map": float(ap.mean())}


def _noise_retention(model, x: torch.Tensor, goal: torch.Tensor, sigma: float, radius: int, seed: int,
                     ids: Sequence[int]) -> torch.Tensor:
    """Per image, the share of ``PROXY_DRAWS`` Gaussian-noise draws (std ``sigma``) under which
    the model's code stays within ``radius`` of ``goal`` (the paper's random-noise proxy)."""
    hits = torch.zeros(x.shape[0])
    for d in range(PROXY_DRAWS):
        noise = torch.stack([
            torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(int(seed) * 7907 + int(i) * 31 + d))
            for i in ids])
        codes = model.encode((x + sigma * noise).clamp(0, 1).to(model.device)).cpu()
        hits += ((codes != goal).sum(1) <= radius).float()
    return hits / PROXY_DRAWS


def evaluate_injection(
    victim,
    splits,
    method: str = "nag",
    *,
    surrogate=None,
    targets: Union[None, int, Sequence[int]] = None,
    per_target: int = 10,
    source: Any = "train",
    params: Optional[Dict[str, Any]] = None,
    radius: int = DEFAULT_RADIUS,
    k: int = DEFAULT_K,
    topk: Any = "default",
    queries: Optional[int] = None,
    mine: int = 0,
    noise_proxy: float = 0.0,
    seed: int = 0,
    batch_size: int = 128,
    progress: bool = False,
    return_details: bool = False,
):
    """Inject ``method``'s poisoned images into the victim's database (in memory) and measure how
    often benign queries of each target category retrieve them (module docstring; NAG Sec. 1, 4).

    Args:
        victim: the hashing model whose database is poisoned and whose queries are benign.
        splits: its dataset (``DatasetSplits``); the database is encoded by the victim.
        method: a registered targeted attack (``nag``; ``ifgsm``, ``pga``, ``dhta`` ... as baselines).
        surrogate: the model the attacker optimises on (None: the victim, white-box). It needs the
            victim's label space; its split seed, backbone, objective and bit length may differ.
        targets: target categories: None (every category a query carries), a count drawn by the
            seed, or a list of category indices.
        per_target: poisoned images per target category.
        source: the attacker's images: ``"train"`` (in-distribution: training images not carrying
            the target), ``"noise"`` (out-of-distribution: seeded smooth noise), or an
            ``(N, C, H, W)`` tensor in [0, 1] (e.g. another dataset's images).
        params: the attack's parameters (``eps``, ``steps``, ``step`` ...), checked by its schema.
        radius: Hamming radius of ``radius_success`` (>= 0; NAG's code: 5).
        k: cut-off of ``topk_success`` (>= 1).
        topk: cut-off of ``t_map``: ``"default"`` (the dataset's), an int, or 0/None (all).
        queries: benign queries drawn from the query split by the seed (None: all of them).
        mine: vulnerable-pair mining: 0 off; m >= 1 draws m * per_target candidates and keeps the
            per_target whose surrogate code is nearest (Hamming) to their target code.
        noise_proxy: std of the Gaussian noise of the proxy; 0 off; > 0 crafts 2 * per_target and
            keeps the per_target whose surrogate code most often stays within ``radius`` of the
            target code under that noise.
        seed: seeds the queries, the targets, the attacker images and the attack.
        return_details: also return ``{"x_source", "x_poison", "database_codes", "poison_codes",
            "target_of", "result"}`` (what the record summarises).

    Returns:
        The record (a JSON-ready dict; see the module docstring for its figures), or
        ``(record, details)`` with ``return_details``.
    """
    from . import __version__
    from .attacks.base import CodeAttack
    from .attacks.knowledge import Knowledge
    from .attacks.registry import check_attack_params, create_attack
    from .bench.protocol import select_queries
    from .data.batching import load_images
    from .models.contract import check_hash_model
    from .models.hash_model import encode_dataset
    from .retrieval import perceptibility

    check_hash_model(victim, where="evaluate_injection")
    attacker = victim if surrogate is None else surrogate
    if surrogate is not None:
        check_hash_model(surrogate, where="evaluate_injection (surrogate)")
    radius = _check_int("radius", radius, 0, "the Hamming radius of a retrieval (NAG: 5)")
    k = _check_int("k", k, 1, "the top-k cut-off of the success rate (e.g. 10)")
    per_target = _check_int("per_target", per_target, 1, "the number of poisoned images per target category")
    mine = _check_int("mine", mine, 0, "0 (off) or the candidate factor of vulnerable-pair mining (e.g. 4)")
    if not (isinstance(noise_proxy, (int, float)) and not isinstance(noise_proxy, bool) and noise_proxy >= 0):
        raise InputError(f"noise_proxy must be a number >= 0 (the Gaussian std in pixel units; 0 = off), got {noise_proxy!r}")
    if topk == "default":
        topk = splits.default_topk
    topk = None if not topk else _check_int("topk", topk, 1, "an int >= 1, or 0 for the whole database")
    params = check_attack_params(method, {**dict(params or {}), "targeted": True}, syntax="python")
    params.pop("targeted")
    params.setdefault("seed", seed)
    params.setdefault("batch_size", batch_size)
    attack = create_attack(method, attacker, targeted=True, **params)

    q_idx = select_queries(len(splits.query), queries, seed)
    q_labels = torch.as_tensor(splits.query.labels).float()[torch.as_tensor(q_idx)]
    if q_labels.shape[1] != (attacker_classes := torch.as_tensor(splits.train.labels).shape[1]):
        raise InputError(f"the query labels have {q_labels.shape[1]} categories but the training split {attacker_classes}")
    target_list = _target_list(targets, q_labels, seed)
    pool_x, pool_labels, source_name = _attacker_pool(source, splits, seed)
    if pool_x.shape[1:] != (shape := load_images(splits.query, torch.arange(1)).shape[1:]):
        raise InputError(f"attacker images have shape {tuple(pool_x.shape[1:])}, the victim's {tuple(shape)}; resize them")

    knowledge = Knowledge.from_model(attacker, splits.train, progress=progress)
    crafted_per_target = per_target * (PROXY_POOL if noise_proxy > 0 else 1)
    drawn_per_target = crafted_per_target * max(mine, 1)
    n_classes = int(q_labels.shape[1])
    start = time.perf_counter()

    # 1-2: candidates per target (with mining: the nearest to their target code on the surrogate)
    chosen: List[torch.Tensor] = []
    for c in target_list:
        cand = _candidates(pool_labels, pool_x.shape[0], c, drawn_per_target, seed)
        if mine and cand.numel() > crafted_per_target:
            ids = [c * pool_x.shape[0] + int(j) for j in cand]
            t_lab = torch.zeros(len(ids), n_classes)
            t_lab[:, c] = 1
            goal = _goal_codes(attack, CodeAttack, t_lab, knowledge, ids)
            codes = attacker.encode(pool_x[cand].to(attacker.device)).cpu()
            dist = (codes != goal).sum(1)
            order = torch.sort(dist, stable=True).indices[:crafted_per_target]
            cand = cand[order]
        chosen.append(cand[:crafted_per_target])

    # 3: the attack on the surrogate, all targets in one call
    src_index = torch.cat(chosen)
    target_of = torch.cat([torch.full((len(ch),), c, dtype=torch.long) for c, ch in zip(target_list, chosen, strict=True)])
    ids = [int(c) * pool_x.shape[0] + int(j) for c, j in zip(target_of, src_index, strict=True)]
    x_src = pool_x[src_index]
    t_labels = torch.nn.functional.one_hot(target_of, n_classes).float()
    labels = pool_labels[src_index] if pool_labels is not None else torch.zeros(len(ids), n_classes)
    attack.fit(knowledge, splits.train, progress=progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*all-zero.*")  # out-of-distribution images carry no label
        result = attack(x_src, labels, target_labels=t_labels, knowledge=knowledge, ids=ids)
    x_adv = result.x_adv.detach().cpu()
    goal = (result.target_codes if result.target_codes is not None
            else _goal_codes(attack, CodeAttack, t_labels, knowledge, ids)).cpu()
    surrogate_codes = result.codes_adv.cpu()

    # the noise proxy: keep the per_target poisoned images most robust to Gaussian noise
    keep = torch.ones(len(ids), dtype=torch.bool)
    retention = None
    if noise_proxy > 0:
        retention = _noise_retention(attacker, x_adv, goal, float(noise_proxy), radius, seed, ids)
        keep[:] = False
        for c in target_list:
            rows = torch.nonzero(target_of == c).flatten()
            best = rows[torch.sort(-retention[rows], stable=True).indices[:per_target]]
            keep[best] = True
    rows_kept = torch.nonzero(keep).flatten()
    x_src, x_adv, target_of = x_src[rows_kept], x_adv[rows_kept], target_of[rows_kept]
    src_index, goal, surrogate_codes = src_index[rows_kept], goal[rows_kept], surrogate_codes[rows_kept]
    ids = [ids[int(i)] for i in rows_kept]
    attack_seconds = time.perf_counter() - start

    # 4: the victim's database, appended in memory (a new tensor; the dataset is never touched)
    db_codes = encode_dataset(victim, splits.database, batch_size=batch_size, progress=progress,
                              desc="encoding database").cpu()
    n_db = int(db_codes.shape[0])
    poison_codes = victim.encode(x_adv.to(victim.device)).cpu()
    clean_codes = victim.encode(x_src.to(victim.device)).cpu()
    poisoned_db = torch.cat([db_codes, poison_codes])
    clean_db = torch.cat([db_codes, clean_codes])
    query_codes = encode_dataset(victim, splits.query, batch_size=batch_size, progress=False).cpu()[torch.as_tensor(q_idx)]

    # 5: per target category
    per: List[Dict[str, Any]] = []
    for c in target_list:
        mine_rows = target_of == c
        relevant = torch.cat([torch.zeros(n_db, dtype=torch.bool), mine_rows])
        benign = q_labels[:, c] > 0
        qc = query_codes[benign]
        adv = _retrieval(qc, poisoned_db, relevant, poison_codes[mine_rows], k=k, topk=topk, radius=radius)
        base = _retrieval(qc, clean_db, relevant, clean_codes[mine_rows], k=k, topk=topk, radius=radius)
        per.append({
            "target": int(c),
            "n_queries": int(benign.sum()),
            "poisoned_ids": [n_db + int(j) for j in torch.nonzero(mine_rows).flatten()],
            "source_indices": [int(j) for j in src_index[mine_rows]],
            **adv,
            **{f"clean_{key}": value for key, value in base.items()},
            "surrogate_radius_hit": float(((surrogate_codes[mine_rows] != goal[mine_rows]).sum(1) <= radius).float().mean()),
        })
    figures = ("topk_success", "radius_success", "t_map", "clean_topk_success", "clean_radius_success", "clean_t_map",
               "surrogate_radius_hit")
    record: Dict[str, Any] = {
        "threat": "injection",
        "method": method,
        "targeted": True,
        "transfer": surrogate is not None,
        "eps": attack.eps,
        "steps": attack.steps,
        "params": {key: v for key, v in params.items() if key not in ("seed", "batch_size")},
        "seed": int(seed),
        "source": source_name,
        "per_target": per_target,
        "mine": mine,
        "noise_proxy": float(noise_proxy),
        "radius": radius,
        "k": k,
        "topk": topk,
        "n_queries": int(len(q_idx)),
        "database_size": n_db,
        "targets": [int(c) for c in target_list],
        "poisoned_ids": [n_db + j for j in range(len(ids))],
        **{key: float(np.mean([p[key] for p in per])) for key in figures},
        "per_target_metrics": per,
        "perceptibility": perceptibility(x_src, x_adv),
        "seconds": attack_seconds,
        "success_definition": (f"benign queries of the target category with a poisoned image in their top {k} "
                               f"(topk_success) / within Hamming radius {radius} (radius_success)"),
        "data_dir": splits.info.get("root"),
        "version": __version__,
    }
    if not return_details:
        return record
    details = {"x_source": x_src, "x_poison": x_adv, "database_codes": db_codes, "poison_codes": poison_codes,
               "target_of": target_of, "result": result, "noise_retention": retention}
    return record, details


def _goal_codes(attack, code_attack_cls, target_labels: torch.Tensor, knowledge, ids: List[int]) -> torch.Tensor:
    """The attack's own target codes (code-guided attacks), else the sign of the mean reference
    code of the target labels (the target-category centre)."""
    if isinstance(attack, code_attack_cls):
        return attack.target_codes(target_labels.to(knowledge.codes.device), knowledge, ids).cpu()
    codes, labels = knowledge.codes.cpu(), knowledge.labels.cpu()
    share = (target_labels @ labels.T > 0).float()
    centre = torch.sign(share @ codes)
    centre[centre == 0] = 1
    return centre


def table(record: Dict[str, Any]) -> str:
    """A small plain-text summary of an injection record, in %."""
    pct = lambda v: f"{100 * v:6.2f}"  # noqa: E731
    p = record["perceptibility"]
    lines = [f"{record['method']} injection ({'black-box transfer' if record['transfer'] else 'white-box'}), "
             f"{len(record['targets'])} target categories x {record['per_target']} poisoned images "
             f"({record['source']}), eps {record['eps'] * 255:.3g}/255, {record['steps']} steps",
             f"  {'':24s} {'poisoned':>8s} {'clean':>8s}",
             f"  {'top-' + str(record['k']) + ' success':24s} {pct(record['topk_success'])}   {pct(record['clean_topk_success'])}",
             f"  {'radius-' + str(record['radius']) + ' success':24s} {pct(record['radius_success'])}   "
             f"{pct(record['clean_radius_success'])}",
             f"  {'t-MAP (poisoned relevant)':24s} {pct(record['t_map'])}   {pct(record['clean_t_map'])}",
             f"  {'surrogate hit (r<=' + str(record['radius']) + ')':24s} {pct(record['surrogate_radius_hit'])}",
             f"  {'perturbation':24s} L-inf {p['linf'] * 255:.2f}/255, RMSE {p['rmse']:.4f}"]
    return "\n".join(lines)


__all__ = ["DEFAULT_RADIUS", "SOURCES", "THREATS", "check_threat", "evaluate_injection", "noise_images", "table"]
