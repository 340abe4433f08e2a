"""Models: backbones, ``HashModel`` (normalisation inside) and checkpoints."""

from .backbones import Backbone, create_backbone, list_backbones, register_backbone
from .checkpoint import CheckpointError, load_checkpoint, load_weights, read_checkpoint_config, save_checkpoint
from .hash_model import HashModel, create_hash_model, encode_dataset, sign_codes

__all__ = [
    "Backbone",
    "CheckpointError",
    "HashModel",
    "create_backbone",
    "create_hash_model",
    "encode_dataset",
    "list_backbones",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint_config",
    "register_backbone",
    "save_checkpoint",
    "sign_codes",
]
