"""What every search space and architecture provides: the plug-in contract.

A search space is one module in ``rankbench/spaces/`` that registers a class with
:func:`rankbench.spaces.register_space` (and, if it has settings, a frozen
:class:`SpaceSettings` subclass naming them); its supernet cell is one module in
``rankbench/supernet/`` that registers a cell with ``rankbench.supernet.register_cell``.
Nothing else in rankbench branches on the space: it reads :class:`SearchSpace` and
:class:`Arch` only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from rankbench.nb101.spec import ModelSpec

__all__ = ["Arch", "SearchSpace", "SpaceSettings", "SpaceMixin", "Scalar"]

#: a descriptive column's value (``SearchSpace.describe``)
Scalar = int | float | str | bool


@runtime_checkable
class Arch(Protocol):
    """One architecture of a space: what scoring, truth and reports read.

    ``name`` is short, stable and unique within its space (S4: ``"3m--"``); it keys score
    caches and appears in every table. ``spec`` is the pruned NB101 cell, ``hash`` NB101's
    graph hash of it (isomorphic archs share it). Archs are hashable and compare by value.
    """

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> "ModelSpec": ...

    @property
    def hash(self) -> str: ...


@runtime_checkable
class SearchSpace(Protocol):
    """A registered search space (``create_space(name, **settings)``).

    ``name``: its registered name ("s4"); ``tag``: a short string for directory names that
    includes the settings ("s4-m4"); ``group_column``: the :meth:`describe` column that
    figures group accuracies by ("num_paths" for S4).
    """

    name: str
    tag: str
    group_column: str

    def settings(self) -> dict[str, Any]:
        """The space's own settings, as ``create_space(name, **settings)`` takes them."""
        ...

    def candidates(self, n: int = 0, seed: int = 0) -> list[Arch]:
        """The default candidate list, in a stable order: every arch the space scores by
        default (``n == 0``), or at most ``n`` distinct ones drawn with ``seed``."""
        ...

    def sample(self, rng: random.Random) -> Arch:
        """One training-time draw (the space documents its distribution)."""
        ...

    def sample_arch(self, rng: random.Random, num_cells: int, per_cell: bool = False) -> Arch | list[Arch]:
        """One training step's architecture: one arch for every cell, or one per cell."""
        ...

    def arch_from_spec(self, spec: "ModelSpec") -> Arch:
        """The arch of an NB101 cell the space contains (ValueError if it does not)."""
        ...

    def arch_from_name(self, name: str) -> Arch:
        """The arch called ``name`` (the inverse of ``arch.name``)."""
        ...

    def hash_classes(self) -> Mapping[str, list[Arch]]:
        """NB101 hash -> the candidates that share it, in candidate order."""
        ...

    def describe(self, arch: Arch) -> dict[str, Scalar]:
        """Descriptive columns of ``arch`` for tables and figures (S4: ``num_paths``)."""
        ...


@dataclass(frozen=True)
class SpaceSettings:
    """The ``[space]`` config section: the space's registered ``name`` plus its own typed
    settings. A space with settings registers a subclass whose extra fields are its
    constructor's keyword arguments (S4: ``m``), with defaults; ``--set space.m=3`` is
    checked against them. A space without settings uses this class as it is."""

    name: str = ""

    def settings(self) -> dict[str, Any]:
        """The space's own settings (every field but ``name``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


class SpaceMixin:
    """Shared implementations of :class:`SearchSpace` methods from ``candidates``,
    ``sample`` and ``settings`` (optional: a space may implement the protocol directly)."""

    name: str

    @property
    def tag(self) -> str:
        parts = [self.name] + [f"{k}{v}" for k, v in self.settings().items()]  # type: ignore[attr-defined]
        return "-".join(parts)

    def sample_arch(self, rng: random.Random, num_cells: int, per_cell: bool = False):
        if per_cell:
            return [self.sample(rng) for _ in range(num_cells)]  # type: ignore[attr-defined]
        return self.sample(rng)  # type: ignore[attr-defined]

    def hash_classes(self) -> dict[str, list]:
        classes: dict[str, list] = {}
        for a in self.candidates():  # type: ignore[attr-defined]
            classes.setdefault(a.hash, []).append(a)
        return classes

    def check(self, arch: Any | Sequence[Any]) -> None:
        """Raise ValueError unless ``arch`` (or each of a per-cell list) is in this space."""
        archs: Sequence[Any] = arch if isinstance(arch, (list, tuple)) else [arch]
        for a in archs:
            self.arch_from_name(a.name)  # type: ignore[attr-defined]
