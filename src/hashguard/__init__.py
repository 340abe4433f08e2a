"""hashguard: adversarial robustness of deep-hashing image retrieval.

The two entry points most users need are importable from the package itself (loaded lazily, so
``import hashguard`` stays cheap): :func:`wrap_model` (give your own network the hashing-model
contract) and :func:`evaluate_robustness` (clean, attacked and worst-case mAP in one call);
:func:`evaluate_injection` measures database injection (NAG's threat model, :mod:`hashguard.injection`).
"""

__version__ = "0.1.0"

_LAZY = {
    "wrap_model": ("hashguard.models.wrapped", "wrap_model"),
    "evaluate_robustness": ("hashguard.robustness", "evaluate_robustness"),
    "evaluate_injection": ("hashguard.injection", "evaluate_injection"),
}


_SUBPACKAGES = ("attacks", "bench", "codes", "data", "defenses", "hashing", "models", "retrieval")


def __getattr__(name):
    if name in _SUBPACKAGES:  # ``hashguard.data.from_lists(...)`` after a bare ``import hashguard``
        import importlib

        return importlib.import_module(f"hashguard.{name}")
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'hashguard' has no attribute {name!r}")


__all__ = ["__version__", "evaluate_injection", "evaluate_robustness", "wrap_model"]
