"""Atomic file writes and provenance: nothing half-written is ever left under a final name."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the result the permissions a plain open() would
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def versions() -> dict[str, str]:
    """Versions of everything that can change a number: recorded in every run directory."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("rankbench", "torch", "numpy", "nasbench_pytorch", "scipy", "h5py", "pandas"):
        try:
            if mod == "nasbench_pytorch":
                from importlib.metadata import version

                out[mod] = version("nasbench-pytorch")
            else:
                out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional
            out[mod] = "unavailable"
    out["rankbench_source"] = source_fingerprint()
    commit = _git_commit()
    if commit:
        out["rankbench_git"] = commit
    return out


def finite_or_none(v: Any) -> float | None:
    """``v`` as a float, None when it is not a finite number (NaN, inf, not a number)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def clean_json(obj: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, numpy scalars and arrays -> Python, paths -> str: strict JSON."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if type(obj).__module__ == "numpy":
        if hasattr(obj, "tolist"):
            return clean_json(obj.tolist())
    if isinstance(obj, float):
        return finite_or_none(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def short_digest(content: Any, length: int = 12) -> str:
    """The first ``length`` hex digits of the sha256 of ``content``: bytes as they are, a str
    as UTF-8, anything else as its canonical JSON (sorted keys; what JSON cannot hold as its
    str). Every short hash rankbench names things by (fingerprints, report names, cache keys,
    digests) is this one."""
    if isinstance(content, bytes):
        blob = content
    elif isinstance(content, str):
        blob = content.encode()
    else:
        blob = json.dumps(content, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def source_fingerprint() -> str:
    """sha256 (12 hex) of rankbench's own source files: two runs with the same version
    string but different code (an edited checkout) are told apart."""
    import hashlib

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    files = [f for f in sorted(root.rglob("*.py")) + sorted(root.rglob("*.toml"))
             if f.relative_to(root).parts[0] != "bundled"]  # data scripts, where a wheel puts them
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _git_commit() -> str | None:
    """``<commit>`` or ``<commit>-dirty`` of the checkout rankbench runs from, if it is one."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                "rankbench"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")
