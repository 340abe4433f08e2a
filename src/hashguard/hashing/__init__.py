"""Hashing objectives (DPH, DPSH, HashNet, CSQ, DCH, DSDH) and the trainer."""

from . import csq, dch, dph, dpsh, dsdh, hashnet  # noqa: F401  (register the objectives)
from .base import HashingObjective, create_hashing, list_hashing, register_hashing, similarity
from .train_checkpoint import train_checkpoint
from .trainer import TrainConfig, TrainHistory, calibrate_hash_layer, train_hash_model

__all__ = [
    "HashingObjective",
    "TrainConfig",
    "TrainHistory",
    "calibrate_hash_layer",
    "create_hashing",
    "list_hashing",
    "register_hashing",
    "similarity",
    "train_checkpoint",
    "train_hash_model",
]
