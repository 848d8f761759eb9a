"""Where rankbench finds its data.

- Bundled sample files (the repo's ``data/``): :func:`bundled_file`. They are installed as
  the package ``rankbench.bundled`` (pyproject maps it to ``data/``), so they are found from
  a source checkout, an editable install and a wheel alike.
- User data (imported NB101 store, CIFAR-10 download): :func:`data_home`, which is
  ``$RANKBENCH_HOME`` or ``~/.cache/rankbench``.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_REPO_DATA = Path(__file__).resolve().parents[1] / "data"


def bundled_dir() -> Path:
    try:
        d = Path(str(resources.files("rankbench.bundled")))
        if d.is_dir():
            return d
    except (ModuleNotFoundError, TypeError):
        pass
    return _REPO_DATA


def bundled_file(name: str) -> Path:
    """Path of a file shipped in ``data/``; a clear error if the install lacks it."""
    p = bundled_dir() / name
    if not p.exists():
        raise FileNotFoundError(
            f"bundled data file {name!r} is missing from {p.parent}; reinstall rankbench "
            f"(pip install -e .) from a complete checkout"
        )
    return p


def data_home() -> Path:
    """``$RANKBENCH_HOME`` or ``~/.cache/rankbench``: where imported/downloaded data goes."""
    env = os.environ.get("RANKBENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rankbench"


def display_path(path: str | os.PathLike) -> str:
    """``path`` as a table or shipped file should show it: bundled files as ``data/<name>``
    (the repository's folder, installed as ``rankbench.bundled``), files under the working
    directory relative to it, anything else unchanged. Keeps machine paths out of tables."""
    p = Path(path)
    try:
        rp = p.resolve()
    except OSError:
        return str(p)
    for root, shown in ((bundled_dir().resolve(), "data"), (_REPO_DATA.resolve(), "data")):
        try:
            return str(Path(shown) / rp.relative_to(root))
        except ValueError:
            pass
    try:
        return str(rp.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
