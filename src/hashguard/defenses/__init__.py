"""Defenses: adversarial training for deep hashing, one shared loop (``base``), one file per method.

    atrdh    THA's adversarial training: targeted PGD toward co-trained prototype codes
    saat     SAAT Eq. 20: mainstay-guided minimax training
    cgat     CgAT: centre-code-guided training
    pga-at   PgA Appendix A.3 Eq. 16: pharos-guided training

``create_defense(name, model, objective, **params).fit(splits.train)`` returns a defended copy of
the model; ``defend_checkpoint`` does the whole job for a checkpoint file (used by ``hashguard
defend``). Database codes must be recomputed from the defended model.
"""

from . import atrdh, cgat, pga_at, saat  # noqa: F401  (register)
from .base import Defense, DefenseConfig, frozen_batchnorm_statistics
from .registry import create_defense, list_defenses, register_defense
from .run import defend_checkpoint, defend_external, defend_model, objective_from_config

__all__ = [
    "Defense",
    "DefenseConfig",
    "create_defense",
    "defend_checkpoint",
    "defend_external",
    "defend_model",
    "frozen_batchnorm_statistics",
    "list_defenses",
    "objective_from_config",
    "register_defense",
]
