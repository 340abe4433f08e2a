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
from .hash_model import HashModel, create_hash_model

FORMAT = "hashguard-checkpoint-v1"
REQUIRED_KEYS = ("backbone", "bits")


class CheckpointError(ValueError):
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
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a hashguard checkpoint that loads safely ({type(err).__name__}: {err}); "
            "hashguard reads only state_dict checkpoints written by save_checkpoint"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a hashguard checkpoint (expected format {FORMAT!r}); "
            "to wrap other weights, build a HashModel, load_state_dict them and call save_checkpoint"
        )
    return json.loads(payload["config_json"]), payload["state_dict"]


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
