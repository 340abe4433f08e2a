"""Attacks on deep-hashing retrieval: one engine (``base``), one file per method, a registry.

    untargeted   hag, sdha, pga, pga-dagger, mainstay, fgsm, ifgsm
    targeted     p2p, dhta, tha, sdha, pga, mainstay, prosgan, nag, fgsm, ifgsm

``create_attack(name, model, targeted=..., **params)`` builds one; calling it as
``attack(x, labels, target_labels=..., knowledge=Knowledge(...))`` returns an ``AttackResult``.
"""

from . import dhta, fgsm, hag, ifgsm, mainstay, nag, p2p, pga, pga_dagger, prosgan, sdha, tha  # noqa: F401  (register)
from .base import Attack, AttackResult, CodeAttack, linear_code_loss, parse_eps, relative_alpha
from .context import AttackContext
from .knowledge import Database, Knowledge
from .registry import create_attack, list_attacks, register_attack
from .targets import draw_target_labels, unique_labels

__all__ = [
    "Attack",
    "AttackContext",
    "AttackResult",
    "CodeAttack",
    "Database",
    "Knowledge",
    "create_attack",
    "draw_target_labels",
    "linear_code_loss",
    "list_attacks",
    "parse_eps",
    "register_attack",
    "relative_alpha",
    "unique_labels",
]
