"""Name -> factory registries (timm style): variants, search spaces and metrics register
themselves by name so that the CLI, the tests and the docs all read the same list."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories. ``register`` is a decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            first = (doc or getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._docs[name] = first[0] if first else ""
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def describe(self) -> dict[str, str]:
        return dict(self._docs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
