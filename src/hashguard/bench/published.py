"""The seed papers' reported numbers, as data with provenance, for the report's "published" column.

Each entry is one cell of a paper's table: which paper and table, the dataset, backbone, hashing
objective, code length, defense, attack, mode, metric, the evaluation protocol (L-inf budget, mAP
cut-off, iterations) and the value in percent. Values are copied from the tables of the papers
(PgA: ICLR 2024 submission "Pharos-guided attack"; SAAT: "Semantic-aware adversarial training",
mainstay codes; ProS-GAN: CVPR 2021); only cells that could be read unambiguously are kept (SAAT
Table III's MS-COCO block is garbled in the available text and left out). The targeted attacks'
rows of PgA's tables report MAP of the true labels, a cell hashguard does not match (its targeted
cells are t-MAP), so those tables keep their clean and untargeted rows only.

The report never mixes these into its measured columns: :func:`matching` returns a paper's cell
for a measured one only when the dataset, backbone (where the paper states it), objective, bits,
defense, attack, mode, metric, budget and cut-off are all the same. Query sets differ (the papers
draw their own), so a match compares protocols, not identical experiments.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

EPS = 8 / 255

# (paper, table, objective, backbone or None when the table does not state it, topk (None = all),
#  steps, defense, metric, {dataset: bits}, rows: [(attack or "clean", mode, values per dataset x bits)])
_TABLES: List[Dict[str, Any]] = [
    {
        "paper": "PgA", "table": "Table 1: MAP (%) of different attack methods on deep hashing models without defense",
        "objective": "dph", "backbone": "alexnet", "topk": 5000, "steps": 100, "defense": "none", "metric": "map",
        "columns": [("flickr25k", 16), ("flickr25k", 32), ("flickr25k", 64), ("nus-wide", 16), ("nus-wide", 32),
                    ("nus-wide", 64), ("ms-coco", 16), ("ms-coco", 32), ("ms-coco", 64)],
        "rows": [
            ("clean", [80.39, 81.35, 91.91, 74.99, 76.72, 77.84, 56.53, 57.93, 57.92]),
            ("hag", [24.75, 24.37, 23.44, 14.55, 14.32, 14.07, 13.91, 13.59, 14.62]),
            ("sdha", [20.50, 19.63, 18.98, 17.09, 15.36, 14.87, 12.07, 12.36, 12.94]),
            ("pga-dagger", [16.03, 15.49, 15.32, 12.30, 11.93, 12.07, 11.36, 10.56, 11.10]),
            ("pga", [15.70, 15.18, 15.02, 11.81, 11.53, 11.69, 9.91, 9.41, 10.26]),
        ],
    },
    {
        "paper": "PgA", "table": "Table 2: MAP (%) of multiple attack methods after adversarial training by ATRDH",
        "objective": "dph", "backbone": "alexnet", "topk": 5000, "steps": 100, "defense": "atrdh", "metric": "map",
        "columns": [("flickr25k", 16), ("flickr25k", 32), ("flickr25k", 64), ("nus-wide", 16), ("nus-wide", 32),
                    ("nus-wide", 64), ("ms-coco", 16), ("ms-coco", 32), ("ms-coco", 64)],
        "rows": [
            ("clean", [72.75, 73.34, 73.10, 66.42, 65.90, 68.69, 49.23, 50.87, 49.93]),
            ("hag", [41.99, 45.58, 45.81, 42.15, 47.46, 45.19, 26.50, 27.49, 28.73]),
            ("sdha", [37.65, 40.68, 44.61, 42.39, 47.16, 45.86, 28.00, 27.75, 27.72]),
            ("pga-dagger", [32.78, 34.67, 35.53, 37.86, 42.84, 39.82, 21.89, 21.74, 22.21]),
            ("pga", [31.52, 33.80, 34.52, 37.48, 42.22, 39.54, 21.52, 21.42, 22.45]),
        ],
    },
    {
        "paper": "SAAT", "table": "Table II: results of different attack methods on three datasets (MAP rows)",
        "objective": "dph", "backbone": None, "topk": 5000, "steps": 100, "defense": "none", "metric": "map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide", "ms-coco") for b in (16, 32, 48, 64)],
        "rows": [
            ("clean", [81.33, 82.28, 82.47, 81.85, 76.70, 77.47, 77.74, 78.11, 56.26, 57.41, 56.70, 56.64]),
            ("hag", [22.53, 21.68, 21.96, 22.56, 13.62, 13.32, 13.67, 13.55, 12.57, 13.97, 13.90, 13.88]),
            ("sdha", [21.82, 19.37, 19.39, 19.20, 13.85, 12.98, 14.49, 14.56, 11.61, 12.38, 12.63, 13.08]),
            ("mainstay", [14.92, 14.53, 14.59, 14.82, 11.93, 11.89, 11.85, 12.02, 9.96, 11.21, 10.96, 10.87]),
        ],
    },
    {
        "paper": "SAAT", "table": "Table II: results of different attack methods on three datasets (t-MAP rows)",
        "objective": "dph", "backbone": None, "topk": 5000, "steps": 100, "defense": "none", "metric": "t_map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide", "ms-coco") for b in (16, 32, 48, 64)],
        "rows": [
            ("p2p", [81.45, 81.83, 82.49, 82.98, 66.94, 69.19, 69.20, 69.12, 51.96, 52.74, 52.62, 51.73]),
            ("dhta", [82.98, 83.51, 83.67, 83.94, 69.10, 70.92, 71.03, 70.93, 52.57, 53.38, 53.23, 52.34]),
            ("prosgan", [73.06, 66.44, 62.34, 87.15, 72.33, 74.29, 73.96, 72.30, 33.02, 33.30, 31.63, 31.28]),
            ("tha", [86.80, 87.84, 86.94, 86.73, 69.78, 72.98, 73.90, 70.29, 53.18, 52.88, 47.80, 37.63]),
            ("mainstay", [88.62, 88.90, 89.07, 89.00, 70.68, 73.99, 74.00, 74.33, 55.75, 58.00, 56.97, 56.58]),
        ],
    },
    {
        "paper": "SAAT", "table": "Table III: MAP (%) of non-targeted attack methods after adversarial training by ATRDH",
        "objective": "dph", "backbone": None, "topk": 5000, "steps": 100, "defense": "atrdh", "metric": "map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide") for b in (16, 32, 48, 64)],
        "rows": [
            ("clean", [71.35, 72.16, 72.29, 72.08, 64.58, 64.57, 67.20, 67.90]),
            ("hag", [41.92, 42.36, 43.80, 44.08, 41.59, 41.93, 42.31, 42.29]),
            ("sdha", [39.09, 37.77, 38.39, 38.60, 41.61, 40.36, 40.78, 40.59]),
            ("mainstay", [32.68, 32.40, 33.39, 33.32, 38.53, 38.16, 38.95, 38.99]),
        ],
    },
    {
        "paper": "SAAT", "table": "Table III: MAP (%) of non-targeted attack methods after adversarial training by SAAT",
        "objective": "dph", "backbone": None, "topk": 5000, "steps": 100, "defense": "saat", "metric": "map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide") for b in (16, 32, 48, 64)],
        "rows": [
            ("clean", [74.19, 73.49, 73.41, 70.07, 61.05, 60.51, 61.06, 60.57]),
            ("hag", [38.05, 43.76, 48.22, 60.89, 53.07, 52.72, 52.56, 52.90]),
            ("sdha", [35.26, 40.52, 45.78, 59.62, 53.22, 52.15, 52.57, 52.83]),
            ("mainstay", [30.55, 34.77, 39.35, 53.76, 50.35, 50.33, 50.20, 50.16]),
        ],
    },
    {
        "paper": "ProS-GAN", "table": "Table 1: t-MAP (%) of targeted attack methods and MAP (%) of benign samples (t-MAP rows)",
        "objective": "dpsh", "backbone": "vgg11", "topk": None, "steps": None, "defense": "none", "metric": "t_map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide", "ms-coco") for b in (12, 24, 32, 48)],
        "rows": [
            ("clean", [63.58, 63.49, 63.49, 63.59, 55.51, 55.57, 55.67, 55.86, 42.33, 42.60, 42.67, 42.90]),
            ("p2p", [82.55, 83.79, 84.65, 84.44, 70.33, 71.44, 71.98, 73.26, 56.77, 59.11, 59.87, 59.72]),
            ("dhta", [86.27, 87.74, 88.35, 88.48, 74.04, 75.52, 75.65, 75.93, 59.85, 61.90, 63.22, 63.20]),
            ("prosgan", [89.05, 89.85, 91.10, 91.09, 77.73, 78.21, 78.25, 78.75, 66.22, 71.28, 71.65, 68.92]),
        ],
    },
    {
        "paper": "ProS-GAN", "table": "Table 1: t-MAP (%) of targeted attack methods and MAP (%) of benign samples (MAP row)",
        "objective": "dpsh", "backbone": "vgg11", "topk": None, "steps": None, "defense": "none", "metric": "map",
        "columns": [(d, b) for d in ("flickr25k", "nus-wide", "ms-coco") for b in (12, 24, 32, 48)],
        "rows": [("clean", [78.88, 80.12, 80.75, 80.87, 69.54, 70.80, 71.33, 71.21, 57.64, 61.02, 62.63, 62.98])],
    },
]

# PgA Table 6 (NUS-WIDE, VGG11, 32 bits; MAP@5000): one column per hashing objective, without defense
# and after ATRDH; rows clean, HAG, SDHA, PgA (the targeted rows are MAP, not t-MAP, and not kept)
_PGA_TABLE6 = {  # objective: {defense: [clean, hag, sdha, pga]}
    "dpsh": {"none": [82.20, 17.18, 15.38, 10.57], "atrdh": [70.38, 47.17, 42.78, 37.37]},
    "hashnet": {"none": [79.57, 14.56, 13.31, 11.94], "atrdh": [68.48, 48.25, 46.75, 42.31]},
    "dsdh": {"none": [81.90, 16.92, 16.69, 11.30], "atrdh": [68.77, 50.96, 47.94, 41.01]},
    "dch": {"none": [77.43, 25.28, 22.35, 15.04], "atrdh": [70.50, 29.47, 46.28, 21.65]},
    "csq": {"none": [80.08, 19.91, 11.78, 6.86], "atrdh": [75.52, 18.34, 18.77, 14.83]},
}
_TABLES += [
    {
        "paper": "PgA", "table": "Table 6: MAP (%) for different hashing models on NUS-WIDE",
        "objective": objective, "backbone": "vgg11", "topk": 5000, "steps": 100, "defense": defense, "metric": "map",
        "columns": [("nus-wide", 32)],
        "rows": [(attack, [value]) for attack, value in zip(("clean", "hag", "sdha", "pga"), values, strict=True)],
    }
    for objective, by_defense in _PGA_TABLE6.items() for defense, values in by_defense.items()
]
# PgA Table 7 (appendix A.2, CIFAR-10, DPH; the backbone of this table is not stated): without and after ATRDH
_TABLES += [
    {
        "paper": "PgA", "table": "Table 7: MAP (%) of attack methods on CIFAR-10",
        "objective": "dph", "backbone": None, "topk": 5000, "steps": 100, "defense": defense, "metric": "map",
        "columns": [("cifar10", 16), ("cifar10", 32), ("cifar10", 64)],
        "rows": rows,
    }
    for defense, rows in (
        ("none", [("clean", [67.72, 78.00, 79.64]), ("hag", [0.95, 1.16, 1.60]), ("sdha", [0.32, 0.52, 0.55]),
                  ("pga", [0.31, 0.49, 0.48])]),
        ("atrdh", [("clean", [60.98, 62.74, 63.08]), ("hag", [16.41, 16.51, 18.30]), ("sdha", [18.90, 20.75, 24.54]),
                   ("pga", [14.18, 13.48, 14.25])]),
    )
]

_TARGETED_METRIC = "t_map"


def published() -> List[Dict[str, Any]]:
    """Every published cell, one dict each (values in percent, as printed)."""
    out = []
    for t in _TABLES:
        for attack, values in t["rows"]:
            if len(values) != len(t["columns"]):  # pragma: no cover - guarded by a test
                raise AssertionError(f"{t['paper']} {t['table']}: row {attack} has {len(values)} values")
            mode = "clean" if attack == "clean" else ("targeted" if t["metric"] == _TARGETED_METRIC else "untargeted")
            for (dataset, bits), value in zip(t["columns"], values, strict=True):
                out.append({
                    "paper": t["paper"], "table": t["table"], "dataset": dataset, "backbone": t["backbone"],
                    "objective": t["objective"], "bits": bits, "defense": t["defense"], "attack": attack, "mode": mode,
                    "metric": t["metric"], "eps": EPS, "topk": t["topk"], "steps": t["steps"], "value": value,
                })
    return out


def matching(
    *, dataset: str, backbone: Optional[str], objective: str, bits: int, defense: str, attack: str, mode: str,
    metric: str, eps: float, topk: Optional[int], table: Optional[Sequence[Dict[str, Any]]] = None,
) -> List[Dict[str, Any]]:
    """The published cells measured under the same protocol as a measured cell.

    ``attack`` is a registry name, or ``"clean"`` (then ``mode`` is ``"clean"`` and ``metric``
    ``"map"``, or ``"t_map"`` for the benign queries' t-MAP). ``topk`` None means the whole
    database. A paper entry without a backbone matches any backbone (the paper does not say).
    """
    found = []
    for p in published() if table is None else table:
        if (p["dataset"], p["objective"], p["bits"], p["defense"], p["attack"], p["mode"], p["metric"]) != (
                dataset, objective, int(bits), defense, attack, mode, metric):
            continue
        if p["backbone"] is not None and p["backbone"] != backbone:
            continue
        if not math.isclose(p["eps"], eps, rel_tol=0, abs_tol=1e-9) or p["topk"] != topk:
            continue
        found.append(p)
    return found


def citation(entry: Dict[str, Any]) -> str:
    """``PgA Table 1`` plus what the paper left unstated."""
    text = f"{entry['paper']} {entry['table'].split(':')[0]}"
    if entry["backbone"] is None:
        text += " (backbone not stated)"
    return text


def datasets() -> Tuple[str, ...]:
    return tuple(dict.fromkeys(p["dataset"] for p in published()))


__all__ = ["published", "matching", "citation", "datasets", "EPS"]
