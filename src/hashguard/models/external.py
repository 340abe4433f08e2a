"""A user's own network from a Python file and a ``state_dict``, without unpickling anything.

``--model-def path/to/file.py:NAME --weights weights.pth`` on the command line (and ``models =
[{def, weights, ...}]`` in a benchmark grid) name

- ``NAME`` in ``file.py``: a class or a function that builds the network, called with
  ``kwargs`` (none by default);
- the weights: a file written by ``torch.save(net.state_dict(), path)`` (or a dict holding it
  under ``"state_dict"`` / ``"model"``), read with ``torch.load(weights_only=True)``. A file that
  holds a pickled object (``torch.save(net)``) is refused and nothing in it is executed.

The model file is the user's own code and is executed as such; the weights file never is. Every
record names the model file and the SHA-256 of the weights (:func:`file_sha256`), so a result can
always be traced to the exact weights it came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from .._atomic import atomic_torch_save
from .checkpoint import load_failure, safe_load
from .wrapped import WrappedModel, wrap_model

STATE_KEYS = ("state_dict", "model_state_dict", "model")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_model_def(model_def: str) -> Tuple[Path, str]:
    """``"path/file.py:Name"`` -> ``(Path("path/file.py"), "Name")``, checked."""
    text = str(model_def)
    path, sep, name = text.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ValueError(
            f"--model-def must be FILE.py:NAME (a class or a function in that file that builds the network), "
            f"got {text!r}"
        )
    file = Path(path).expanduser()
    if file.suffix != ".py":
        raise ValueError(f"--model-def must name a Python file FILE.py:NAME, got {text!r}")
    if not file.is_file():
        raise ValueError(f"model definition file {file} does not exist (from --model-def {text!r})")
    return file, name


def build_from_def(model_def: str, kwargs: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Import the file of ``model_def`` and call its ``NAME(**kwargs)``; returns the network."""
    file, name = split_model_def(model_def)
    module_name = f"hashguard_user_model_{hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # lets dataclasses / pickling inside the file find their module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise ValueError(f"importing the model file {file} raised {type(err).__name__}: {err}") from err
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
                       and getattr(v, "__module__", None) == module_name)
        raise ValueError(
            f"{file} has no class or function {name!r}; the nn.Module classes it defines: {', '.join(found) or 'none'}"
        )
    try:
        net = factory(**dict(kwargs or {}))
    except Exception as err:
        raise ValueError(
            f"building the network with {name}({', '.join(f'{k}={v!r}' for k, v in (kwargs or {}).items())}) from {file} "
            f"raised {type(err).__name__}: {err}; --model-def must name a class or function that builds it from "
            "--model-kwargs JSON (none by default)"
        ) from err
    if not isinstance(net, nn.Module):
        raise ValueError(f"{name}() in {file} returned a {type(net).__name__}, not a torch.nn.Module")
    return net


def read_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` in ``path``, read with ``weights_only=True`` (nothing is unpickled)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        payload = safe_load(path)
    except Exception as err:  # torch's own text advises weights_only=False: never repeat that here
        raise ValueError(
            f"{path} {load_failure(err, path)}, not a state_dict: hashguard reads weights only with torch.load(weights_only=True) "
            "and never runs pickled code. Save the weights in your code with torch.save(net.state_dict(), path) "
            "(not torch.save(net))"
        ) from None
    if isinstance(payload, dict) and payload.get("format") == "hashguard-checkpoint-v1":
        raise ValueError(f"{path} is a hashguard checkpoint: pass it as --model {path} (without --model-def)")
    if isinstance(payload, dict):
        for key in STATE_KEYS:
            if isinstance(payload.get(key), dict) and not isinstance(payload.get(key), torch.Tensor):
                inner = payload[key]
                if inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                    payload = inner
                    break
    if not isinstance(payload, dict) or not payload or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise ValueError(
            f"{path} does not hold a state_dict (a dict of parameter names to tensors); save it with "
            "torch.save(net.state_dict(), path)"
        )
    return payload


def load_state_into(net: nn.Module, state: Dict[str, torch.Tensor], *, source: str) -> None:
    """``net.load_state_dict(state)`` (strict) with an error naming what does not fit.

    A ``module.`` prefix on every key (``nn.DataParallel``) is removed first."""
    if state and all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in net.state_dict()):
        state = {k[len("module."):]: v for k, v in state.items()}
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the class"
              for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} mis-shaped (e.g. {shapes[:2]})")
        raise ValueError(
            f"the weights in {source} do not match {type(net).__name__}: " + "; ".join(parts)
            + ". Check that --model-def names the class these weights were saved from (and --model-kwargs its settings)"
        )
    net.load_state_dict(state)


def load_external_model(
    model_def: str,
    weights: Optional[str | Path] = None,
    *,
    input_norm: Any,
    output: str = "logits",
    select: Any = None,
    kwargs: Optional[Dict[str, Any]] = None,
    example: Optional[torch.Tensor] = None,
    device: str | torch.device = "cpu",
) -> Tuple[WrappedModel, Dict[str, Any]]:
    """Build ``model_def``, load ``weights`` into it, wrap it (:func:`wrap_model`, probed on
    ``example`` images when given) and return ``(model, info)``; ``info`` is what records say
    about the model (definition, weights file and SHA-256, normalisation, output, bits)."""
    net = build_from_def(model_def, kwargs)
    info: Dict[str, Any] = {"model_def": str(model_def), "model_kwargs": dict(kwargs or {})}
    if weights is not None:
        load_state_into(net, read_state_dict(weights), source=str(weights))
        info.update({"weights": str(weights), "weights_sha256": file_sha256(weights)})
    else:
        info.update({"weights": None, "weights_sha256": None})
    net.to(device).eval()
    model = wrap_model(net, input_norm=input_norm, output=output, select=select,
                       example=None if example is None else example.to(device))
    info.update({"input_norm": model.input_norm, "output": output, "select": select, "bits": model.bits})
    return model, info


def unwrap(model: nn.Module) -> nn.Module:
    """The user's network inside a :class:`WrappedModel` (the model itself otherwise)."""
    return model.module if isinstance(model, WrappedModel) else model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the user's network's ``state_dict`` atomically (CPU tensors), loadable with
    ``net.load_state_dict(torch.load(path, weights_only=True))`` in the user's own code."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    atomic_torch_save(state, Path(path))
    return Path(path)


__all__ = ["build_from_def", "file_sha256", "load_external_model", "load_state_into", "read_state_dict",
           "save_weights", "split_model_def", "unwrap"]
