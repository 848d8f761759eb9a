"""Search spaces, registered by name: ``create_space("s4", m=4)``.

A space is one module in this package that registers itself with :func:`register_space`
(every module here is imported when the package is); :mod:`rankbench.spaces.base` holds the
:class:`SearchSpace` / :class:`Arch` protocols it implements.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import fields
from typing import Any, Callable

from rankbench._registry import Registry
from rankbench.spaces.base import Arch, SearchSpace, SpaceSettings

SPACES: Registry = Registry("search space")
_SETTINGS: dict[str, type[SpaceSettings]] = {}


def register_space(name: str, doc: str | None = None, *, settings: type[SpaceSettings] | None = None) -> Callable:
    """Class decorator: register a search space as ``name``. ``settings``: its frozen
    :class:`SpaceSettings` subclass (fields = the constructor's keyword arguments, with
    defaults); omit it for a space without settings."""
    reg = SPACES.register(name, doc)

    def deco(cls):
        _SETTINGS[name] = settings or SpaceSettings
        return reg(cls)

    return deco


def space_settings(name: str) -> type[SpaceSettings]:
    """The :class:`SpaceSettings` class of a registered space (its ``[space]`` section)."""
    SPACES.get(name)  # unknown name: the registry's error, listing the known ones
    return _SETTINGS[name]


def default_space_settings(name: str = "s4", **settings: Any) -> SpaceSettings:
    """The ``[space]`` section for space ``name`` (defaults, updated by ``settings``)."""
    cls = space_settings(name)
    _check_settings(name, cls, settings)
    return cls(name=name, **settings)


def _check_settings(name: str, cls: type[SpaceSettings], settings: dict[str, Any], extra=()) -> None:
    known = sorted(f.name for f in fields(cls) if f.name != "name")
    unknown = sorted(set(settings) - set(known) - set(extra))
    if unknown:
        raise ValueError(f"search space {name!r} has no setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known) or '(none)'}")


def create_space(name: str = "s4", **settings: Any) -> SearchSpace:
    """Build a registered search space by name (``rankbench spaces list`` shows them);
    ``settings`` are the space's own (S4: ``m``), plus any other keyword its constructor
    takes. An unknown one is a ValueError listing the space's settings."""
    cls = SPACES.get(name)
    # a constructor may take run-time objects that are no config setting (nb101: store=)
    _check_settings(name, _SETTINGS[name], settings, extra=inspect.signature(cls).parameters)
    return cls(**settings)


def space_from_config(cfg) -> SearchSpace:
    """The space a :class:`~rankbench.config.RunConfig` (or its ``space`` section) names. A
    space class with a ``from_config(cfg)`` classmethod builds itself from the whole
    RunConfig (nb101: its candidates come from the store ``truth.store`` names)."""
    sec = getattr(cfg, "space", cfg)
    hook = getattr(SPACES.get(sec.name), "from_config", None)
    if hook is not None and sec is not cfg:
        return hook(cfg)
    return create_space(sec.name, **sec.settings())


def list_spaces() -> list[str]:
    return SPACES.names()


# every module of this package registers its space; S4 first (the default)
from rankbench.spaces import s4 as _s4  # noqa: E402,F401

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in ("base", "s4") and not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

from rankbench.spaces.s4 import S4Space, Subnet  # noqa: E402

__all__ = ["Arch", "SearchSpace", "SpaceSettings", "Subnet", "S4Space", "create_space", "space_from_config",
           "space_settings", "default_space_settings", "list_spaces", "register_space", "SPACES"]
