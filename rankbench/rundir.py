"""Run directories: one folder per trained supernet, holding everything needed to trace and
re-run its numbers. :class:`RunDir` is the one owner of the layout: no other module types a
file name of a run directory.

Layout of ``runs/<name>/``::

    config.json          the fully resolved RunConfig
    versions.json        python, torch, numpy, ... versions; device; command line; start time
    train_log.csv        one row per epoch
    checkpoints/last.pt  the latest checkpoint (atomic), enough to resume exactly
    supernet.pt          final weights, written when training finished
    train_done.json      marks a finished training (epochs, wall time, final metrics)
    tensorboard/         event files (``train.tensorboard``)
    scores/<key>.csv     cached scores per scoring setup (see rankbench.scoring)
    reports/<report>/    one report per scoring setup (rankbench run): scores.csv, metrics.json

``<name>`` is ``<variant>-<preset>-<space tag>-seed<S>-<training fingerprint>``, so a finished
run with the same resolved training config is found and reused. A report's name is
``<protocol>-<calib|nocalib>-<setup hash>`` (see :mod:`rankbench.reports`): two scoring setups
of one supernet never overwrite each other.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rankbench._io import versions, write_json
from rankbench.config import RunConfig

__all__ = ["RunDir", "runs_root", "runs_root_source", "run_name", "run_dir_for", "is_finished", "init_run_dir",
           "load_config", "DEFAULT_ROOT", "NotWritableError", "write_problem", "check_writable"]

DEFAULT_ROOT = Path("runs")


class RunDir:
    """The layout of one run directory: every file name, and whether the training finished."""

    CONFIG = "config.json"
    VERSIONS = "versions.json"
    TRAIN_LOG = "train_log.csv"
    CHECKPOINT = Path("checkpoints") / "last.pt"
    SUPERNET = "supernet.pt"
    DONE = "train_done.json"
    TENSORBOARD = "tensorboard"
    SCORES_CACHE = "scores"
    REPORTS = "reports"
    REPORT_SCORES = "scores.csv"
    REPORT_METRICS = "metrics.json"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- file names ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def versions_path(self) -> Path:
        return self.path / self.VERSIONS

    @property
    def train_log(self) -> Path:
        return self.path / self.TRAIN_LOG

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def supernet(self) -> Path:
        return self.path / self.SUPERNET

    @property
    def done_marker(self) -> Path:
        return self.path / self.DONE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def scores_cache_dir(self) -> Path:
        return self.path / self.SCORES_CACHE

    @property
    def reports_dir(self) -> Path:
        return self.path / self.REPORTS

    def report_dir(self, name: str) -> Path:
        return self.reports_dir / name

    # -- state ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.config_path.exists()

    def is_finished(self) -> bool:
        return self.done_marker.exists() and self.supernet.exists()

    def other_training(self, cfg: RunConfig, fingerprint: str | None = None) -> str | None:
        """None when this directory holds no config or one with ``cfg``'s training fingerprint
        (``fingerprint``: computed already, e.g. by a plan); else the error to raise: a
        different training config needs a different directory."""
        if not self.config_path.exists():
            return None
        mine = fingerprint or cfg.training_fingerprint()
        old = self.load_config().training_fingerprint()
        if old == mine:
            return None
        return (f"{self.path} holds {'a finished training' if self.is_finished() else 'a run'} with a different "
                f"training config (fingerprint {old} vs {mine}); use another --out or delete that directory")

    def finished_with(self, cfg: RunConfig, fingerprint: str | None = None) -> bool:
        """Whether this directory holds a finished training of ``cfg`` (its training
        fingerprint): the one check of "is this run reusable?" (a finished run of another
        config is a :class:`ValueError`)."""
        if not self.is_finished():
            return False
        problem = self.other_training(cfg, fingerprint)
        if problem:
            raise ValueError(problem)
        return True

    def platform(self) -> dict | None:
        """The compute platform the weights were made on (``train_done.json``, else
        ``versions.json``; :func:`rankbench.numerics.describe_platform`); None for runs made
        before rankbench recorded it."""
        for path, key in ((self.done_marker, "platform"), (self.versions_path, "compute_platform")):
            try:
                p = json.loads(path.read_text()).get(key)
            except (OSError, ValueError):
                continue
            if isinstance(p, dict):
                return p
        return None

    def load_config(self) -> RunConfig:
        if not self.config_path.exists():
            raise FileNotFoundError(f"{self.path} is not a rankbench run directory (no {self.CONFIG})")
        return RunConfig.from_dict(json.loads(self.config_path.read_text()))

    def reports(self) -> list[Path]:
        """The finished reports of this run (directories holding a metrics.json), by name."""
        if not self.reports_dir.is_dir():
            return []
        return sorted(p for p in self.reports_dir.iterdir() if (p / self.REPORT_METRICS).exists())


def runs_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$RANKBENCH_RUNS``, else ``./runs``."""
    if root:
        return Path(root)
    env = os.environ.get("RANKBENCH_RUNS")
    return Path(env) if env else DEFAULT_ROOT


def runs_root_source(root: str | os.PathLike | None = None) -> str:
    """Where :func:`runs_root` took the folder from, as a user would change it: ``--runs-root``,
    ``RANKBENCH_RUNS`` or the default ``./runs``."""
    if root:
        return "--runs-root"
    return "RANKBENCH_RUNS" if os.environ.get("RANKBENCH_RUNS") else f"the default ./{DEFAULT_ROOT}"


# -- writability: checked before anything is created ---------------------------------------------
class NotWritableError(ValueError):
    """A folder that rankbench has to write into cannot be written: it lies under a file, or
    it (or the first existing folder above it) is not writable. The message says what and how
    to fix it."""


def _first_existing(path: Path) -> Path:
    p = path
    while not (p.exists() or p.is_symlink()) and p != p.parent:
        p = p.parent
    return p


def write_problem(path: str | os.PathLike) -> str | None:
    """Why files cannot be written into the folder ``path`` (created with its parents when
    missing), or None when they can. Checks, without creating anything: that ``path`` and every
    existing folder above it is a folder, and that the first existing one is writable
    (``os.access``: as root only a read-only file system counts)."""
    p = Path(path).expanduser()
    first = _first_existing(p)
    if first.exists() and not first.is_dir():
        if first == p:
            return f"{first} is a file, not a folder"
        return f"{first} is a file, not a folder, so nothing can be created under it"
    if not os.access(first, os.W_OK | os.X_OK):
        if first == p:
            return f"{first} is not writable"
        return f"{first} (where {p.name} would be created) is not writable"
    return None


def check_writable(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """``path`` as a Path when files can be written into it (see :func:`write_problem`), else a
    :class:`NotWritableError` naming ``what`` it is and how to ``fix`` it (default: make the
    folder writable or choose another)."""
    problem = write_problem(path)
    if problem is None:
        return Path(path)
    if not fix:
        fix = ("point it at a folder instead" if "is a file" in problem
               else "make it writable (chmod u+w) or choose another folder")
    raise NotWritableError(f"{what} {path}: {problem}; {fix}")


def _space_tag(cfg: RunConfig) -> str:
    from rankbench.spaces import space_from_config

    return space_from_config(cfg).tag


def run_name(cfg: RunConfig, *, fingerprint: str | None = None, space_tag: str | None = None) -> str:
    """``<variant>-<preset>-<space tag>-seed<seed>-<training fingerprint>``; a plan passes the
    fingerprint and the space's tag it computed once (:mod:`rankbench.plan`)."""
    return (f"{cfg.model.variant}-{cfg.preset}-{space_tag or _space_tag(cfg)}-seed{cfg.train.seed}-"
            f"{fingerprint or cfg.training_fingerprint()}")


def run_dir_for(cfg: RunConfig, root: str | os.PathLike | None = None) -> Path:
    return runs_root(root) / run_name(cfg)


def is_finished(run_dir: str | os.PathLike) -> bool:
    return RunDir(run_dir).is_finished()


def init_run_dir(run_dir: str | os.PathLike, cfg: RunConfig, *, device: str = "cpu",
                 platform: dict | None = None, fingerprint: str | None = None) -> Path:
    """Create ``run_dir`` with its config and versions; an existing run must have the same
    training config (else a clear error: a different config needs a different directory)."""
    rd = RunDir(run_dir)
    problem = rd.other_training(cfg, fingerprint)
    if problem:
        raise ValueError(problem)
    rd.path.mkdir(parents=True, exist_ok=True)
    write_json(rd.config_path, cfg.to_dict())
    info: dict[str, Any] = dict(versions())
    info.update(device=device, argv=sys.argv, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if platform is not None:  # rankbench.numerics.describe_platform: what the weights' numbers depend on
        info["compute_platform"] = platform
    elif rd.versions_path.exists():  # a resumed training keeps the platform it started on
        try:
            prev = json.loads(rd.versions_path.read_text()).get("compute_platform")
        except (OSError, ValueError):
            prev = None
        if isinstance(prev, dict):
            info["compute_platform"] = prev
    write_json(rd.versions_path, info)
    return rd.path


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    return RunDir(run_dir).load_config()
