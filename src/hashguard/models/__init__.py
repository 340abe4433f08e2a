"""Models: backbones, ``HashModel`` (normalisation inside), ``wrap_model`` for a user's own network, checkpoints."""

from .backbones import Backbone, create_backbone, list_backbones, register_backbone
from .checkpoint import CheckpointError, load_checkpoint, load_weights, read_checkpoint_config, save_checkpoint
from .contract import check_hash_model
from .external import file_sha256, load_external_model, read_state_dict, save_weights, unwrap
from .hash_model import HashModel, create_hash_model, encode_dataset, sign_codes
from .wrapped import WrappedModel, parse_input_norm, wrap_model

__all__ = [
    "WrappedModel",
    "check_hash_model",
    "file_sha256",
    "load_external_model",
    "parse_input_norm",
    "read_state_dict",
    "save_weights",
    "unwrap",
    "wrap_model",
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
