"""A small name -> factory registry shared by datasets, backbones, hashing objectives and attacks.

Follows the timm convention: ``register_x("name")`` decorates a factory, ``list_x()`` returns the
sorted names and ``create_x("name", **kwargs)`` builds one. Unknown names raise a ``ValueError``
that lists every valid choice, so a typo on the command line tells the user what to type instead.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Maps names to factories (functions or classes) for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator that registers ``factory`` under ``name`` (lower case, unique)."""
        key = name.lower()

        def decorator(factory: F) -> F:
            if key in self._entries and self._entries[key] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[key] = factory
            return factory

        return decorator

    def register_class(self, name: str) -> Callable[[F], F]:
        """Like :meth:`register`, for classes: also sets ``cls.name = name`` (attacks, defenses)."""

        def decorator(cls: F) -> F:
            cls.name = name  # type: ignore[attr-defined]
            return self.register(name)(cls)

        return decorator

    def names(self) -> List[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:  # a factory function or class (callers read class attributes)
        key = str(name).lower()
        if key not in self._entries:
            choices = ", ".join(self.names())
            raise ValueError(f"unknown {self.kind} {name!r}; valid choices: {choices}")
        return self._entries[key]

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries
