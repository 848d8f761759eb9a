"""Reading what figures need from run directories: config, the report to draw (scores and
its setup), training log, the search space and its descriptive column."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rankbench.config import RunConfig, config_overrides, flatten_config, load_preset
from rankbench.figures.style import variant_label
from rankbench.reports import load_report
from rankbench.rundir import RunDir
from rankbench.spaces import space_from_config
from rankbench.truth import TruthSource, truth_source

__all__ = ["check_run_dir", "load_config", "select_report", "has_reports", "load_scores", "load_train_log",
           "space_of", "space_label", "group_column", "run_label", "truth_label", "percent_factor", "as_percent",
           "preset_known", "preset_overrides", "preset_diff", "keep_masks"]


def check_run_dir(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it is a rankbench run directory, else a clear error."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; pass a run directory (runs/<variant>-<preset>-<space>-...)")
    if not p.is_dir():
        raise FileNotFoundError(f"{p} is not a directory; pass a run directory (runs/<variant>-<preset>-<space>-...)")
    if not RunDir(p).exists():
        raise FileNotFoundError(
            f"{p} is not a rankbench run directory (no {RunDir.CONFIG}); pass a folder that "
            f"`rankbench train` or `rankbench run` created, e.g. runs/lsbn-quick-s4-m4-seed2020-<id>")
    return p


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    return RunDir(check_run_dir(run_dir)).load_config()


def has_reports(run_dir: str | os.PathLike) -> bool:
    """Whether the run has been scored (holds at least one report)."""
    return bool(RunDir(run_dir).reports())


def select_report(run_dir: str | os.PathLike, report: str | None = None):
    """The report of ``run_dir`` a figure draws: ``report`` (a name or a unique prefix of one,
    e.g. ``paper-calib``), or the run's only report; else an error listing the reports there
    (:func:`rankbench.reports.load_report`)."""
    return load_report(check_run_dir(run_dir), report)


def space_of(cfg: RunConfig):
    """The search space a run's config describes."""
    return space_from_config(cfg)


def space_label(cfg: RunConfig) -> str:
    """``s4, m=4`` / ``nb101``: the space and its settings."""
    return ", ".join([cfg.space.name] + [f"{k}={v}" for k, v in cfg.space.settings().items()])


def group_column(cfg: RunConfig, scores: pd.DataFrame | None = None) -> str:
    """The descriptive column figures group subnets by (the space's ``group_column``: S4
    ``num_paths``); checked against ``scores`` when given."""
    col = space_of(cfg).group_column
    if scores is not None and col not in scores.columns:
        raise ValueError(f"the scores lack the space's group column {col!r}; columns: {list(scores.columns)} "
                         f"(re-score the run with `rankbench run`)")
    return col


def run_label(cfg: RunConfig) -> str:
    """Short human name: ``LSBN, quick preset, s4, m=4, seed 2020``."""
    return f"{variant_label(cfg.model.variant)}, {cfg.preset} preset, {space_label(cfg)}, seed {cfg.train.seed}"


def truth_label(cfg: RunConfig | None) -> str:
    """Axis label of the ground truth a report's scores were compared with."""
    if cfg is None:
        return TruthSource.label
    return truth_source(cfg).axis_label()


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


def load_scores(path: str | os.PathLike, report: str | None = None) -> pd.DataFrame:
    """The scores of one report, with ``run`` (run directory name), ``report`` (report name),
    ``variant`` and ``seed`` columns, and ``name`` (the arch's name; older reports call it
    ``subnet``). ``path``: a report directory, or a run directory with ``report`` naming one of
    its reports (or holding exactly one)."""
    rep = load_report(path, report)
    return _tag_scores(rep)


def _tag_scores(rep) -> pd.DataFrame:
    cfg = rep.config
    df = rep.scores.copy()
    if "name" not in df.columns and "subnet" in df.columns:
        df["name"] = df["subnet"]
    if "name" not in df.columns:
        raise ValueError(f"{rep.path}: scores.csv has no name column; columns: {list(df.columns)}")
    df["name"] = df["name"].astype(str)
    df.insert(0, "run", rep.run_dir.name)
    df.insert(1, "report", rep.name)
    df.insert(2, "variant", cfg.model.variant)
    df.insert(3, "seed", cfg.train.seed)
    return df


def load_train_log(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's train_log.csv with ``run``, ``variant`` and ``seed`` columns."""
    rd = RunDir(check_run_dir(run_dir))
    if not rd.train_log.exists():
        raise FileNotFoundError(f"{rd.path} has no {rd.train_log.name}; train it with `rankbench train`")
    cfg = rd.load_config()
    df = pd.read_csv(rd.train_log)
    df.insert(0, "run", rd.name)
    df.insert(1, "variant", cfg.model.variant)
    df.insert(2, "seed", cfg.train.seed)
    return df


def _preset_base(cfg: RunConfig) -> RunConfig | None:
    """``cfg``'s preset as shipped, under ``cfg``'s protocol (None if it cannot be loaded)."""
    from rankbench.scoring import get_protocol

    try:
        base = load_preset(cfg.preset)
        return get_protocol(cfg.score.protocol).apply(replace(base, score=replace(base.score,
                                                                                  protocol=cfg.score.protocol)))
    except Exception:  # a preset given as a path that moved, an unknown protocol
        return None


def preset_known(cfg: RunConfig) -> bool:
    """Whether ``cfg``'s preset can be loaded (a name rankbench ships, or a .toml that exists)."""
    return _preset_base(cfg) is not None


def preset_overrides(cfg: RunConfig) -> dict[str, Any]:
    """The fields in which ``cfg`` differs from its preset (dotted name -> value), less the
    variant, the seed, what cannot change a number (device, threads, checkpointing) and what
    the protocol fixes (a ``paper`` report's 1000 candidates are the protocol, not an
    override); the protocol itself counts when it is not the preset's. Empty when the preset
    cannot be loaded (:func:`preset_known`)."""
    from rankbench.figures._groups import NO_EFFECT_FIELDS

    base = _preset_base(cfg)
    if base is None:
        return {}
    ignore = ("model.variant", "train.seed", *NO_EFFECT_FIELDS)
    out = config_overrides(cfg, ignore=ignore)
    by_protocol = config_overrides(base, ignore=ignore + ("score.protocol",))
    return {k: v for k, v in out.items() if k not in by_protocol or by_protocol[k] != v}


def preset_diff(cfg: RunConfig) -> dict[str, tuple[Any, Any]]:
    """:func:`preset_overrides` with the preset's values: field -> (preset value, value)."""
    base = _preset_base(cfg)
    flat: dict[str, Any] = {k: v for k, v in flatten_config(base).items() if "." in k} if base is not None else {}
    if base is not None:
        flat["score.protocol"] = load_preset(cfg.preset).score.protocol  # the base took cfg's protocol
    return {k: (flat.get(k, "(not in the preset)"), v) for k, v in sorted(preset_overrides(cfg).items())}


def _as_bool(values) -> np.ndarray:
    s = pd.Series(values)
    if s.dtype == bool:
        return s.to_numpy()
    words = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    out = s.astype(str).str.strip().str.lower().map(words)
    if out.isna().any():
        bad = sorted(set(s[out.isna()].astype(str)))[:3]
        raise ValueError(f"scores.csv 'kept' column holds values that are not booleans: {bad}")
    return out.to_numpy(dtype=bool)


def keep_masks(report, scores: pd.DataFrame | None = None) -> dict[str, np.ndarray] | None:
    """Which rows of a report's scores entered its ranking metrics, per setting ("no_calib",
    "calib"); None when every candidate with a truth did.

    The report's own ``kept`` column when scores.csv has one; else its keep rule recomputed
    from its effective config: ``score.drop_lowest`` candidates dropped by the protocol's
    rule (``paper``: the 30 lowest by *uncalibrated* accuracy, one mask for both settings), or,
    for a protocol without one, by each setting's own score."""
    df = report.scores if scores is None else scores
    if "kept" in df.columns:
        m = _as_bool(df["kept"])
        return {"no_calib": m, "calib": m}
    cfg = report.config
    n_drop = int(cfg.score.drop_lowest or 0)
    if not n_drop:
        return None
    from rankbench.scoring import get_protocol

    keep_fn = getattr(get_protocol(cfg.score.protocol), "keep_mask", None)
    if keep_fn is not None:
        m = np.asarray(keep_fn(df["acc_no_calib"].to_numpy(float), n_drop), dtype=bool)
        return {"no_calib": m, "calib": m}
    out = {}
    for setting in ("no_calib", "calib"):
        col = f"acc_{setting}"
        if col in df.columns and df[col].notna().any():
            s = df[col].to_numpy(float)
            m = np.ones(len(s), dtype=bool)
            m[np.argsort(np.where(np.isnan(s), -np.inf, s), kind="stable")[:n_drop]] = False
            out[setting] = m
    return out
