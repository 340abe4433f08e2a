"""Checkpoints: a ``state_dict`` plus a JSON config, never a pickled model (docs/design.md#checkpoints).

The file is a ``torch.save`` of ``{"format", "config_json", "state_dict"}`` loaded back with
``torch.load(weights_only=True)``; a copy of the config is written beside it as ``<path>.json`` for
people and scripts. The config names the dataset, backbone, hashing objective, bit length, seed and
package version, so ``load_checkpoint`` rebuilds the right architecture without being told.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from .. import __version__
from .._atomic import atomic_torch_save, atomic_write_text
from ..errors import InputError
from .hash_model import HashModel, create_hash_model

FORMAT = "hashguard-checkpoint-v1"
REQUIRED_KEYS = ("backbone", "bits")


class CheckpointError(InputError):
    """A checkpoint that cannot be used as asked (wrong file, architecture or bit length)."""


def save_checkpoint(path: str | Path, model: HashModel, config: Dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``config`` (JSON-serialisable) atomically; returns the path."""
    path = Path(path)
    config = dict(config)
    config.setdefault("bits", model.bits)
    config.setdefault("version", __version__)
    if getattr(model, "backbone_name", None) is not None:
        config.setdefault("backbone", model.backbone_name)
        config.setdefault("backbone_kwargs", model.backbone_kwargs)
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"checkpoint config needs the keys {missing}")
    if int(config["bits"]) != model.bits:
        raise CheckpointError(f"config says {config['bits']} bits but the model has {model.bits}")
    config_json = json.dumps(config, indent=2, sort_keys=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "config_json": config_json, "state_dict": state}, path)
    atomic_write_text(path.with_name(path.name + ".json"), config_json + "\n")
    return path


def read_checkpoint_config(path: str | Path) -> Dict[str, Any]:
    """The config stored in a checkpoint, without building the model."""
    return _read(Path(path))[0]


def _read(path: Path) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist; train one with "
            "'hashguard train --out PATH' or pass the path of an existing .pt file"
        )
    try:
        payload = safe_load(path)
    except Exception as err:  # torch's own text advises weights_only=False: never repeat that here
        raise CheckpointError(
            f"{str(path)!r} is not a hashguard checkpoint that loads safely: it {load_failure(err, path)}; "
            "hashguard reads only state_dict checkpoints written by save_checkpoint (hashguard train) and "
            "never unpickles code: train or save the model again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a hashguard checkpoint (expected format {FORMAT!r}); "
            "to wrap other weights, build a HashModel, load_state_dict them and call save_checkpoint"
        )
    try:
        config = json.loads(payload["config_json"])
    except (KeyError, TypeError, ValueError):
        config = None
    if not isinstance(config, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(
            f"{str(path)!r} has a damaged config or state_dict (format {FORMAT!r} but no JSON config object and "
            "weights dict); save the model again with save_checkpoint (hashguard train)"
        )
    check_config(config, str(path))
    return config, payload["state_dict"]


def safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, without torch's note on pickle protocols."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True)


def load_failure(err: BaseException, path: Optional[Path] = None) -> str:
    """What ``torch.load(weights_only=True)`` found in ``path`` instead of weights, in words; never
    torch's own text, which advises retrying with the unsafe setting."""
    import re

    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if found:
        return f"holds a pickled {found.group(1)} object, not only tensors (loading it would run code)"
    head = b""
    if path is not None:
        try:
            with open(path, "rb") as handle:
                head = handle.read(4)
        except OSError:
            pass
    if head.startswith(b"PK\x03\x04"):
        if "zip archive" in str(err) or "central directory" in str(err):
            return "is a truncated or damaged torch file (its zip archive is incomplete)"
        return "is a torch file holding pickled Python objects, not only tensors (loading them could run code)"
    if head[:1] == b"\x80":
        return "is a raw pickle of Python objects, not only tensors (loading it could run code)"
    return "is not a torch file (random bytes, truncated, or another format)"


# config keys and their JSON types; None is allowed for every key but the required ones
CONFIG_TYPES: Dict[str, Tuple[type, str]] = {
    "backbone": (str, "a backbone name (string)"),
    "bits": (int, "a positive integer"),
    "backbone_kwargs": (dict, "a JSON object of backbone keyword arguments"),
    "dataset": (str, "a dataset name (string)"),
    "hash_method": (str, "a hashing objective name (string)"),
    "seed": (int, "an integer"),
    "data_dir": (str, "a folder path (string)"),
    "image_size": (int, "a positive integer"),
    "resize": (int, "a positive integer"),
}


def check_config(config: Dict[str, Any], source: str, required: Tuple[str, ...] = REQUIRED_KEYS) -> None:
    """Raise :class:`CheckpointError` naming the key and its expected type for a missing required key
    or a value of the wrong type (a config edited by hand or written by other code)."""
    for key in required:
        if config.get(key) is None:
            _, what = CONFIG_TYPES[key]
            raise CheckpointError(
                f"checkpoint {source!r}: its config lacks the key {key!r} ({what}); the file was not written by "
                "save_checkpoint (hashguard train) or was edited: save the model again"
            )
    for key, (kind, what) in CONFIG_TYPES.items():
        value = config.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if not wrong and kind is int and key != "seed" and value < 1:
            wrong = True
        if wrong:
            raise CheckpointError(
                f"checkpoint {source!r}: config key {key!r} must be {what}, got {value!r} "
                f"({type(value).__name__}); the file was edited or written by other code: save the model again "
                "with save_checkpoint (hashguard train)"
            )


def load_checkpoint(
    path: str | Path,
    *,
    map_location: Optional[str | torch.device] = None,
    backbone: Optional[str] = None,
    bits: Optional[int] = None,
) -> Tuple[HashModel, Dict[str, Any]]:
    """Rebuild the model described by a checkpoint and load its weights.

    ``backbone`` and ``bits``, when given, are what the caller expects; a checkpoint for another
    architecture or bit length raises :class:`CheckpointError` naming both.
    """
    path = Path(path)
    config, state = _read(path)
    for key, expected in (("backbone", backbone), ("bits", bits)):
        if expected is not None and str(config.get(key)).lower() != str(expected).lower():
            raise CheckpointError(
                f"checkpoint {str(path)!r} is for {key} {config.get(key)!r}, not {expected!r}; "
                f"use a checkpoint trained with {key} {expected!r} or drop that option"
            )
    model = create_hash_model(config["backbone"], int(config["bits"]), backbone_kwargs=config.get("backbone_kwargs"))
    load_weights(model, state, source=str(path))
    if map_location is not None:
        model.to(map_location)
    model.eval()
    return model, config


def load_weights(model: HashModel, state: Dict[str, torch.Tensor], *, source: str = "state_dict") -> None:
    """``load_state_dict`` with an error that says which architecture or bit length differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        hints = []
        if "hash_layer.weight" in shapes:
            hints.append(f"bit length {state['hash_layer.weight'].shape[0]} in the file vs {model.bits} in the model")
        if missing or unexpected or [k for k in shapes if not k.startswith("hash_layer")]:
            hints.append(
                f"different architecture ({len(missing)} missing, {len(unexpected)} unexpected, "
                f"{len(shapes)} mis-shaped tensors, e.g. {(missing + unexpected + shapes)[:3]})"
            )
        raise CheckpointError(f"weights in {source} do not fit this model: " + "; ".join(hints))
    model.load_state_dict(state)
