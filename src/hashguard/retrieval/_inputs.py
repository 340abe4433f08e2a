"""Input conversion and validation shared by every retrieval function.

Everything in :mod:`hashguard.retrieval` accepts torch tensors (on any device) and numpy arrays.
This module turns them into CPU numpy arrays and checks the conventions of docs/design.md#retrieval-conventions:

* codes are 2-D ``(N, K)`` arrays holding only -1 and +1 (int8 or float of any dtype);
* labels are 2-D ``(N, C)`` multi-hot arrays holding only 0 and 1 (any numeric dtype or bool);
* query and database agree on the code width ``K`` and on the number of classes ``C``;
* every label matrix has one row per code.

Each check raises a ``ValueError`` that names the argument, says what was expected and how to fix
it. The option checks (``topk``, ``empty``, ...) list the valid choices.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, Iterable, Sequence

import numpy as np

MAX_BITS = 65535  # distances are kept as uint16 in the kernels


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a numpy array on the CPU (a torch tensor is detached and moved first)."""
    # torch is looked up, not imported: if the caller never imported torch, x is no tensor
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16:  # no numpy equivalent; float32 holds every bfloat16 exactly
            t = t.to(torch.float32)
        return t.numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}") from exc


def _first_bad(a: np.ndarray, ok: np.ndarray) -> Any:
    """The first value of ``a`` where ``ok`` is False, as a Python scalar (for error messages)."""
    return a.reshape(-1)[int(np.argmin(ok.reshape(-1)))].item()


def as_codes(x: Any, name: str) -> np.ndarray:
    """Validate a ±1 code matrix and return it as a CPU numpy array (no copy when possible)."""
    a = to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (N, K) matrix of ±1 codes, got shape {tuple(a.shape)}; "
            "add a batch dimension with codes[None] for a single code"
        )
    if a.shape[1] == 0:
        raise ValueError(f"{name} has zero bits (shape {tuple(a.shape)}); codes need at least one bit")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(
            f"{name} must be ±1 codes with an integer or float dtype, got dtype {a.dtype}; "
            "codes must be ±1: map 0/1 bits with 2 * bits - 1"
        )
    if a.size:
        ok = (a == 1) | (a == -1)
        if not ok.all():
            bad = _first_bad(a, ok)
            if np.issubdtype(a.dtype, np.unsignedinteger) or bool(np.isin(a, (0, 1)).all()):
                raise ValueError(
                    f"codes must be ±1, but {name} holds 0/1 bits (dtype {a.dtype}, found {bad!r}); "
                    "map 0/1 bits with 2 * bits - 1 in a signed or float dtype (an unsigned one cannot hold -1)"
                )
            finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
            span = f"[{finite.min().item()!r}, {finite.max().item()!r}]" if finite.size else "no finite values"
            raise ValueError(
                f"codes must be ±1, but {name} contains the value {bad!r} "
                f"(values in {span}); "
                "continuous outputs (e.g. tanh) must be binarised first: apply torch.sign "
                "(and map 0 to +1) or use model.encode, which returns ±1 codes"
            )
    return a


def as_labels(x: Any, name: str) -> np.ndarray:
    """Validate an (N, C) multi-hot 0/1 label matrix and return it as a CPU numpy array."""
    a = to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be an (N, C) multi-hot 0/1 matrix, got shape {tuple(a.shape)}; "
            "one-hot encode class indices with torch.nn.functional.one_hot(labels, num_classes)"
        )
    if a.dtype != np.bool_ and not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must have a numeric or bool dtype, got {a.dtype}")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has zero classes (shape {tuple(a.shape)}); labels need at least one column")
    if a.size and a.dtype != np.bool_:
        ok = (a == 0) | (a == 1)
        if not ok.all():
            bad = _first_bad(a, ok)
            raise ValueError(
                f"{name} must be multi-hot with only 0/1 entries, but it contains {bad!r}; "
                "convert ±1 labels with (labels > 0), and class indices with torch.nn.functional.one_hot"
            )
    return a


def check_pair_codes(query: np.ndarray, db: np.ndarray, qname: str = "query_codes", dname: str = "db_codes") -> None:
    """Raise unless query and database codes have the same number of bits and are non-empty."""
    if query.shape[1] != db.shape[1]:
        raise ValueError(
            f"{qname} has {query.shape[1]} bits (shape {tuple(query.shape)}) but {dname} has "
            f"{db.shape[1]} bits (shape {tuple(db.shape)}); both must come from the same hash model"
        )
    if query.shape[1] > MAX_BITS:
        raise ValueError(f"codes of {query.shape[1]} bits are not supported; the limit is {MAX_BITS} bits")
    if query.shape[0] == 0:
        raise ValueError(f"{qname} is empty (shape {tuple(query.shape)}); pass at least one query")
    if db.shape[0] == 0:
        raise ValueError(f"{dname} is empty (shape {tuple(db.shape)}); the database needs at least one item")


def check_pair_labels(
    query_labels: np.ndarray, db_labels: np.ndarray, n_query: int, n_db: int
) -> None:
    """Raise unless the label widths agree and each label matrix has one row per code."""
    if query_labels.shape[1] != db_labels.shape[1]:
        raise ValueError(
            f"query_labels has shape {tuple(query_labels.shape)} but db_labels has shape "
            f"{tuple(db_labels.shape)}: both must have the same number of classes (columns)"
        )
    if query_labels.shape[0] != n_query:
        raise ValueError(
            f"query_labels has {query_labels.shape[0]} rows (shape {tuple(query_labels.shape)}) "
            f"but query_codes has {n_query}: one label row per query code"
        )
    if db_labels.shape[0] != n_db:
        raise ValueError(
            f"db_labels has {db_labels.shape[0]} rows (shape {tuple(db_labels.shape)}) "
            f"but db_codes has {n_db}: one label row per database code"
        )


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise listing the valid ones."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_topk(topk: Any) -> int | None:
    """Return ``topk`` as an int (or None); raise unless it is a positive integer or None."""
    if topk is None:
        return None
    if not _is_int(topk) or int(topk) < 1:
        raise ValueError(f"topk must be a positive int or None (the whole database); got {topk!r}")
    return int(topk)


def check_positive_ints(values: Iterable[Any], name: str) -> list[int]:
    """Return the values as ints; raise unless every one is a positive integer."""
    out = []
    for v in values:
        if not _is_int(v) or int(v) < 1:
            raise ValueError(f"{name} must be a positive int or a sequence of positive ints; got {v!r}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def check_nonnegative_int(value: Any, name: str) -> int:
    """Return ``value`` as an int; raise unless it is an integer >= 0."""
    if not _is_int(value) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    return int(value)
