"""Reading what figures need from run directories (config, scores, training log)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from rankbench import rundir
from rankbench.config import RunConfig
from rankbench.figures.style import variant_label

SCORES = "scores.csv"
METRICS = "metrics.json"
TRAIN_LOG = "train_log.csv"
WEIGHTS = "supernet.pt"

_SCORE_DTYPES = {"subnet": str, "hash": str, "adjacency": str, "ops": str}


def check_run_dir(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it is a rankbench run directory, else a clear error."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; pass a run directory (runs/<variant>-<preset>-m<M>-...)")
    if not p.is_dir():
        raise FileNotFoundError(f"{p} is not a directory; pass a run directory (runs/<variant>-<preset>-m<M>-...)")
    if not (p / "config.json").exists():
        raise FileNotFoundError(
            f"{p} is not a rankbench run directory (no config.json); pass a folder that "
            f"`rankbench train` or `rankbench run` created, e.g. runs/lsbn-quick-m4-seed2020-<id>")
    return p


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    return rundir.load_config(check_run_dir(run_dir))


def run_label(cfg: RunConfig) -> str:
    """Short human name: ``LSBN, quick preset, m=4, seed 2020``."""
    return f"{variant_label(cfg.model.variant)}, {cfg.preset} preset, m={cfg.model.m}, seed {cfg.train.seed}"


def truth_label(cfg: RunConfig | None) -> str:
    """Axis label of the ground truth the run's scores.csv was compared with."""
    if cfg is None:
        return "ground-truth accuracy (%)"
    metric = cfg.truth.metric.replace("_accuracy", "").replace("_", " ")
    if cfg.truth.source == "nb101":
        how = "mean of repeats" if cfg.truth.reduce == "mean" else "one repeat"
        return f"NB101 {metric} accuracy (%, {how})"
    if cfg.truth.source == "measured":
        return "stand-alone accuracy (%, trained from scratch)"
    return "ground-truth accuracy (%)"


def percent_factor(values) -> float:
    """100 if ``values`` are accuracies as fractions (every finite value <= 1), else 1.

    rankbench writes fractions (scores, NB101 metrics); percent inputs pass through unchanged.
    """
    a = np.asarray(values, dtype=np.float64)
    finite = a[np.isfinite(a)]
    return 100.0 if finite.size and np.all(np.abs(finite) <= 1.0) else 1.0


def as_percent(values) -> np.ndarray:
    """Accuracies as percent (see :func:`percent_factor`)."""
    a = np.asarray(values, dtype=np.float64)
    return a * percent_factor(a)


def load_scores(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's scores.csv with ``run`` (directory name), ``variant`` and ``seed`` columns."""
    return _load_run_csv(run_dir, SCORES, "score it with `rankbench run`", dtype=_SCORE_DTYPES)


def load_train_log(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's train_log.csv with ``run``, ``variant`` and ``seed`` columns."""
    return _load_run_csv(run_dir, TRAIN_LOG, "train it with `rankbench train`")


def _load_run_csv(run_dir: str | os.PathLike, name: str, hint: str, dtype: dict | None = None) -> pd.DataFrame:
    d = check_run_dir(run_dir)
    path = d / name
    if not path.exists():
        raise FileNotFoundError(f"{d} has no {name}; {hint}")
    cfg = rundir.load_config(d)
    df = pd.read_csv(path, dtype=dtype)
    df.insert(0, "run", d.name)
    df.insert(1, "variant", cfg.model.variant)
    df.insert(2, "seed", cfg.train.seed)
    return df
