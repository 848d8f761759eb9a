"""Search spaces, registered by name: ``create_space("s4", m=4)``."""
from __future__ import annotations

from rankbench._registry import Registry
from rankbench.spaces.base import Subnet

SPACES: Registry = Registry("search space")
register_space = SPACES.register


def create_space(name: str = "s4", **kw):
    """Build a registered search space by name (``rankbench spaces list`` shows them)."""
    return SPACES.get(name)(**kw)


def list_spaces() -> list[str]:
    return SPACES.names()


from rankbench.spaces import s4 as _s4  # noqa: E402,F401  (registers "s4")
from rankbench.spaces.s4 import S4Space  # noqa: E402

__all__ = ["Subnet", "S4Space", "create_space", "list_spaces", "register_space", "SPACES"]
