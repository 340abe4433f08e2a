"""Clean retrieval quality of a trained hashing model: encode, rank, score.

Used by the trainer's validation hook and by ``hashguard train`` / ``hashguard evaluate``. The
query codes come from ``model.encode`` (eval mode, sign codes) and the database is always encoded
by the model being evaluated, never reused from another one.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..data.base import DatasetSplits, ImageDataset
from ..models.hash_model import HashModel, encode_dataset
from ..retrieval import mean_average_precision


def retrieval_map(
    model: HashModel,
    query: ImageDataset,
    database: ImageDataset,
    *,
    topk: Optional[int] = None,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> float:
    """mAP@topk of ``query`` against ``database`` under ``model`` (relevance: a shared label)."""
    loading: Dict[str, Any] = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    q = encode_dataset(model, query, desc="encoding queries", **loading)
    d = encode_dataset(model, database, desc="encoding database", **loading)
    return mean_average_precision(q, d, query.labels, database.labels, topk=topk)


def validation_map(model: HashModel, splits: DatasetSplits, topk: Optional[int] = None) -> Dict[str, float]:
    """``{"val_map": ...}``: the validation split ranked against the training split (never the query set)."""
    if splits.validation is None:
        return {}
    return {"val_map": retrieval_map(model, splits.validation, splits.train, topk=topk)}
