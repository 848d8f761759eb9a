"""Run directories: one folder per trained supernet, holding everything needed to trace and
re-run its numbers.

Layout of ``runs/<name>/``::

    config.json        the fully resolved RunConfig
    versions.json      python, torch, numpy, ... versions; device; command line; start time
    train_log.csv      one row per epoch
    checkpoints/last.pt  the latest checkpoint (atomic), enough to resume exactly
    supernet.pt        final weights, written when training finished
    train_done.json    marks a finished training (epochs, wall time, final metrics)
    scores/<key>.csv   cached scores per scoring setup (see rankbench.scoring)
    scores.csv, metrics.json   the run's report (rankbench run)

``<name>`` is ``<variant>-<preset>-m<M>-seed<S>-<training fingerprint>``, so a finished run
with the same resolved training config is found and reused.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rankbench._io import versions, write_json
from rankbench.config import RunConfig

DEFAULT_ROOT = Path("runs")


def runs_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$RANKBENCH_RUNS``, else ``./runs``."""
    if root:
        return Path(root)
    env = os.environ.get("RANKBENCH_RUNS")
    return Path(env) if env else DEFAULT_ROOT


def run_name(cfg: RunConfig) -> str:
    return f"{cfg.model.variant}-{cfg.preset}-m{cfg.model.m}-seed{cfg.train.seed}-{cfg.training_fingerprint()}"


def run_dir_for(cfg: RunConfig, root: str | os.PathLike | None = None) -> Path:
    return runs_root(root) / run_name(cfg)


def is_finished(run_dir: str | os.PathLike) -> bool:
    d = Path(run_dir)
    return (d / "train_done.json").exists() and (d / "supernet.pt").exists()


def init_run_dir(run_dir: str | os.PathLike, cfg: RunConfig, *, device: str = "cpu") -> Path:
    """Create ``run_dir`` with its config and versions; an existing run must have the same
    training config (else a clear error: a different config needs a different directory)."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    cfg_path = d / "config.json"
    if cfg_path.exists():
        old = RunConfig.from_dict(json.loads(cfg_path.read_text()))
        if old.training_fingerprint() != cfg.training_fingerprint():
            raise ValueError(
                f"{d} holds a run with a different training config (fingerprint "
                f"{old.training_fingerprint()} vs {cfg.training_fingerprint()}); use another --out "
                f"or delete that directory"
            )
    write_json(cfg_path, cfg.to_dict())
    info = versions()
    info.update(device=device, argv=sys.argv, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(d / "versions.json", info)
    return d


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    p = Path(run_dir) / "config.json"
    if not p.exists():
        raise FileNotFoundError(f"{run_dir} is not a rankbench run directory (no config.json)")
    return RunConfig.from_dict(json.loads(p.read_text()))
