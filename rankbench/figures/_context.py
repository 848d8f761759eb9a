"""What a registered figure is drawn from: one run (with the report it reads), several runs
grouped by config, or an ablation folder. Each context reads its files on first use and keeps
them, so figures of one run share one loaded supernet and one scores table."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from rankbench.config import RunConfig
from rankbench.figures.style import DPI, save_figure
from rankbench.figures._groups import RunGroup, group_runs
from rankbench.figures._runs import (_tag_scores, group_column, keep_masks, load_train_log, preset_known,
                                     preset_overrides, run_label)
from rankbench.rundir import RunDir

__all__ = ["Log", "quiet", "RunContext", "RunsContext", "AblationContext", "status_note", "DEFAULT_CELL",
           "COSINE_IMAGES"]

Log = Callable[[str], None]

#: cell the per-cell figures show unless told otherwise (cell 0's input is the stem output,
#: so it does not depend on the subnet run in earlier cells)
DEFAULT_CELL = 0
#: training images in the fixed batch of the cosine figure
COSINE_IMAGES = 64
#: overridden fields named in a title (the rest counted)
_TITLE_FIELDS = 3


def quiet(_msg: str) -> None:
    pass


class _Saves:
    """How a context's figures are written: ``formats`` (png, pdf) at ``dpi``."""

    formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = DPI

    def save(self, fig, stem: Path, data: pd.DataFrame | None = None) -> list[Path]:
        """:func:`~rankbench.figures.style.save_figure` in this context's formats."""
        return save_figure(fig, stem, data, formats=self.formats, dpi=self.dpi)


def status_note(cfg: RunConfig, *, finished: bool = True, epochs_done: int | None = None) -> str:
    """What a title must say about a run beyond its name: ``UNFINISHED (3 of 20 epochs)``,
    ``overrides preset quick: train.epochs=1, ...``; "" for a finished run of its preset as
    shipped."""
    parts = []
    if not finished:
        done = f" ({epochs_done} of {cfg.train.epochs} epochs)" if epochs_done is not None else ""
        parts.append(f"UNFINISHED{done}")
    ov = preset_overrides(cfg)
    if ov:
        items = [f"{k}={v}" for k, v in sorted(ov.items())]
        more = f", +{len(items) - _TITLE_FIELDS} more" if len(items) > _TITLE_FIELDS else ""
        parts.append(f"overrides preset {cfg.preset}: {', '.join(items[:_TITLE_FIELDS])}{more}")
    elif not preset_known(cfg):
        parts.append(f"preset {cfg.preset} not found: overrides unknown")
    return "; ".join(parts)


@dataclass
class RunContext(_Saves):
    """One run directory and the report of it the figures read (None: the run has none);
    ``formats`` / ``dpi``: how its figures are written."""

    path: Path
    report: Any = None  # rankbench.reports.Report
    cell: int = DEFAULT_CELL
    images: int = COSINE_IMAGES
    log: Log = quiet
    formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = DPI

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @cached_property
    def rd(self) -> RunDir:
        return RunDir(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def cfg(self) -> RunConfig:
        """The run's config (``config.json``)."""
        return self.rd.load_config()

    @cached_property
    def label(self) -> str:
        return run_label(self.cfg)

    @cached_property
    def finished(self) -> bool:
        """Training finished (train_done.json written; the weights may since have been removed)."""
        return self.rd.done_marker.exists()

    @cached_property
    def train_log(self) -> pd.DataFrame | None:
        return load_train_log(self.path) if self.rd.train_log.exists() else None

    def note(self, *, report: bool = False) -> str:
        """:func:`status_note` of the run (``report``: of the report's effective config)."""
        log = self.train_log
        epochs = int(log["epoch"].max()) if log is not None and len(log) else None
        cfg = self.report.config if report and self.report is not None else self.cfg
        return status_note(cfg, finished=self.finished, epochs_done=epochs)

    def title(self, what: str, *, report: bool = False) -> str:
        """``<what>: <run label>[; report <name>][; UNFINISHED ...][; overrides preset ...]``."""
        parts = [f"{what}: {self.label}"]
        if report and self.report is not None:
            parts.append(f"report {self.report.name}")
        note = self.note(report=report)
        if note:
            parts.append(note)
        return "; ".join(parts)

    # -- the report -------------------------------------------------------------------------
    @cached_property
    def scores(self) -> pd.DataFrame:
        """The report's scores with ``run``, ``report``, ``variant``, ``seed`` columns."""
        if self.report is None:
            raise ValueError(f"{self.name} has no report")
        return _tag_scores(self.report)

    @cached_property
    def by(self) -> str:
        """The space's descriptive column (S4: num_paths)."""
        cfg = self.report.config if self.report is not None else self.cfg
        return group_column(cfg, self.scores if self.report is not None else None)

    @cached_property
    def keep(self) -> dict[str, np.ndarray] | None:
        """The report's own keep rule per setting (``paper``: all but the 30 lowest by
        uncalibrated accuracy), None when every candidate is ranked."""
        return keep_masks(self.report, self.scores) if self.report is not None else None

    # -- the supernet -------------------------------------------------------------------------
    @property
    def has_supernet(self) -> bool:
        return self.rd.supernet.exists()

    @cached_property
    def net(self):
        """The trained supernet (loaded once, on CPU)."""
        from rankbench.train import load_supernet

        net, _ = load_supernet(self.rd.path)
        if not 0 <= self.cell < net.num_cells:
            raise ValueError(f"--cell {self.cell} out of range: {self.name} has cells 0..{net.num_cells - 1}")
        return net


class _Plan:
    """What a comparison draws, decided (and checked) before anything is written."""

    def __init__(self, dirs: Sequence[Path], reports: dict[Path, Any], allow_mixed: bool,
                 configs: dict[Path, RunConfig] | None = None):
        configs = configs or {d: RunDir(d).load_config() for d in dirs}
        self.scored = [d for d in dirs if reports.get(d) is not None]
        self.trained = [d for d in dirs if RunDir(d).train_log.exists()]
        self.reports = reports
        self.configs = configs
        self.score_groups: list[RunGroup] = []
        self.train_groups: list[RunGroup] = []
        if len(self.scored) > 1:
            reps = [reports[d] for d in self.scored]
            self.score_groups = group_runs(self.scored, [r.config for r in reps],
                                           setups=[r.setup or {"name": r.name} for r in reps],
                                           reports=[r.name for r in reps], allow_mixed=allow_mixed,
                                           what="the accuracy comparison")
        if len(self.trained) > 1:
            self.train_groups = group_runs(self.trained, [configs[d] for d in self.trained],
                                           allow_mixed=allow_mixed, what="the training-curve comparison")


@dataclass
class RunsContext(_Saves):
    """Several runs, grouped by config (:class:`_Plan`), for the comparison figures."""

    runs: list[RunContext]
    plan: _Plan
    log: Log = quiet

    @cached_property
    def by_path(self) -> dict[Path, RunContext]:
        return {r.path: r for r in self.runs}

    @cached_property
    def pooled_scores(self) -> tuple[pd.DataFrame, str, str] | str:
        """:func:`pooled` over the plan's score groups, or why they cannot be pooled."""
        if not self.plan.score_groups:
            return "fewer than 2 runs have a report; nothing to compare"
        try:
            return pooled(self.plan.score_groups, self.plan.reports)
        except ValueError as e:
            return str(e)


@dataclass
class AblationContext(_Saves):
    """An ablation folder (:func:`rankbench.ablation.ablation`): ``ablation.csv`` (tau per variant
    x calibration and the reference rankers), ``paired.csv`` (paired differences, several
    seeds only) and ``ablation.json`` (config, seeds, truth, reports)."""

    path: Path
    log: Log = quiet

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @classmethod
    def from_tables(cls, table: pd.DataFrame, paired: pd.DataFrame | None = None, meta: dict | None = None,
                    path: str | os.PathLike = ".") -> "AblationContext":
        """A context over tables in memory (tests, notebooks)."""
        ctx = cls(Path(path))
        ctx.__dict__["table"] = table
        ctx.__dict__["paired"] = paired if paired is not None and len(paired) else None
        ctx.__dict__["meta"] = meta or {}
        return ctx

    @cached_property
    def table(self) -> pd.DataFrame:
        p = self.path / "ablation.csv"
        if not p.exists():
            raise FileNotFoundError(f"{self.path} holds no ablation.csv; run `rankbench ablation` to write it")
        return pd.read_csv(p)

    @cached_property
    def paired(self) -> pd.DataFrame | None:
        p = self.path / "paired.csv"
        if not p.exists():
            return None
        df = pd.read_csv(p)
        return df if len(df) else None

    @cached_property
    def meta(self) -> dict[str, Any]:
        p = self.path / "ablation.json"
        return json.loads(p.read_text()) if p.exists() else {}

    @cached_property
    def cfg(self) -> RunConfig | None:
        c = self.meta.get("config")
        return RunConfig.from_dict(c) if c else None

    def title(self, what: str) -> str:
        cfg = self.cfg
        if cfg is None:
            return f"{what}: {self.path.name}"
        from rankbench.figures._runs import space_label

        seeds = self.meta.get("seeds") or []
        seed_s = (f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" + (f" from {seeds[0]}" if seeds else ""))
        parts = [f"{what}: {cfg.preset} preset, {space_label(cfg)}, protocol {cfg.score.protocol}, {seed_s}"]
        note = status_note(cfg)
        if note:
            parts.append(note)
        return "; ".join(parts)


# -- what comparison figures say about their runs ------------------------------------------------
def common_description(configs: Sequence[RunConfig]) -> str:
    """``quick preset; s4, m=4``: the presets and spaces of ``configs``."""
    from rankbench.figures._runs import space_label

    presets = sorted({c.preset for c in configs})
    spaces = sorted({space_label(c) for c in configs})
    return f"{', '.join(presets)} preset{'s' if len(presets) > 1 else ''}; {' | '.join(spaces)}"


def runs_note(ctxs: Sequence[RunContext]) -> str:
    """What a comparison's title must say about its runs: how many are unfinished, and the
    preset overrides they share (or how many override their preset)."""
    notes = []
    unfinished = sum(not c.finished for c in ctxs)
    if unfinished:
        notes.append(f"{unfinished} of {len(ctxs)} runs UNFINISHED")
    ovs = [preset_overrides(c.cfg) for c in ctxs]
    shared = {k: v for k, v in ovs[0].items() if all(o.get(k, object()) == v for o in ovs[1:])} if ovs else {}
    if shared:
        items = [f"{k}={v}" for k, v in sorted(shared.items())]
        more = f", +{len(items) - _TITLE_FIELDS} more" if len(items) > _TITLE_FIELDS else ""
        notes.append(f"overrides preset {ctxs[0].cfg.preset}: {', '.join(items[:_TITLE_FIELDS])}{more}")
    elif any(ovs):
        notes.append(f"{sum(bool(o) for o in ovs)} of {len(ctxs)} runs override their preset")
    return "; ".join(notes)


def pooled(groups: Sequence[RunGroup], reports: dict[Path, Any]) -> tuple[pd.DataFrame, str, str]:
    """(scores of every group's runs with a ``group`` column, the space column they are drawn
    by, what they are for a title); a ValueError if the runs' spaces use different columns."""
    frames, configs = [], []
    for g in groups:
        for d in g.runs:
            rep = reports[d]
            frames.append(_tag_scores(rep).assign(group=g.label))
            configs.append(rep.config)
    cols = sorted({group_column(c) for c in configs})
    if len(cols) > 1:
        raise ValueError(f"the runs' spaces describe candidates by different columns ({', '.join(cols)}); "
                         f"compare runs of one space")
    scores = pd.concat(frames, ignore_index=True)
    names = sorted(set(scores["report"]))
    which = f"report {names[0]}" if len(names) == 1 else f"{len(names)} reports"
    return scores, cols[0], f"{common_description(configs)}; {scores['run'].nunique()} runs; {which}"
