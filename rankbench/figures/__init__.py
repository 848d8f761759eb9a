"""The paper's figures, from run directories: run dir -> numbers (CSV) -> figure.

One module per figure, each with a pure ``compute_*`` function returning a DataFrame (the CSV
written beside the figure) and a ``plot_*`` function drawing that DataFrame:

- :mod:`~rankbench.figures.cosine`: cosine similarity and magnitude of path features and their
  sums (why multi-path sums break BN; S4 only);
- :mod:`~rankbench.figures.sbn_stats`: shadow-BN statistics of k inputs against one input
  (mean ~ k x, variance ~ k^2 x; gamma and beta by correlation and relative difference);
- :mod:`~rankbench.figures.distributions`: one-shot accuracy by the space's descriptive column
  (S4: active paths; nb101: largest fan-in);
- :mod:`~rankbench.figures.ranking`: supernet score against truth (Kendall tau), training curves.

Figures that read scores read one report of each run (``report``: a name or a unique prefix,
e.g. ``paper-calib``; by default the run's only report) and name it in their title and CSV.
Figures comparing runs group them by resolved config (:mod:`~rankbench.figures._groups`) and
refuse to pool runs of different configs or scoring setups unless ``allow_mixed``.

:func:`make_figures` writes every figure that applies to the given runs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from rankbench._io import atomic_path
from rankbench.figures import style  # noqa: F401  (selects the Agg backend before any pyplot import)
from rankbench.figures._groups import MixedConfigError, RunGroup, group_runs
from rankbench.figures._runs import (_tag_scores, check_run_dir, group_column, load_train_log, run_label,
                                     select_report, space_label, truth_label)
from rankbench.figures.distributions import column_label, compute_accuracy_by_group, plot_accuracy_by_group
from rankbench.figures.ranking import (compute_rank_agreement, compute_training_curves, plot_rank_agreement,
                                       plot_training_curves)
from rankbench.figures.style import save_figure
from rankbench.rundir import RunDir

__all__ = ["make_figures", "run_figures", "comparison_figures", "pooled_scores", "feature_images", "sbn_names",
           "DEFAULT_CELL", "COSINE_IMAGES", "check_run_dir", "MixedConfigError"]

#: cell the per-cell figures show unless told otherwise (cell 0's input is the stem output,
#: so it does not depend on the subnet run in earlier cells)
DEFAULT_CELL = 0
#: training images in the fixed batch of the cosine figure
COSINE_IMAGES = 64

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def feature_images(cfg, n: int = COSINE_IMAGES):
    """The first ``n`` images of the run's training split, at the run's resolution, normalised
    (float32): the fixed, deterministic batch of the cosine figure."""
    from rankbench.data import normalize
    from rankbench.data.splits import load_splits

    splits = load_splits(cfg.data, progress=False)
    return normalize(splits.train.images[:n])


def _report_or_none(d: Path, report: str | None):
    """The report a figure of run ``d`` reads; None if the run holds no report at all."""
    return select_report(d, report) if RunDir(d).reports() else None


def run_figures(run_dir: str | os.PathLike, out_dir: str | os.PathLike, cell: int | None = None, *,
                report: str | None = None, images: int = COSINE_IMAGES, log: Log | None = None) -> list[Path]:
    """Every figure that applies to one run, into ``out_dir`` (those drawn from a report into
    ``out_dir/<report name>/``); ``report``: which of the run's reports (name or unique
    prefix; default: its only one). Returns the files written."""
    d = check_run_dir(run_dir)
    return _run_figures(d, Path(out_dir), cell, _report_or_none(d, report), images, log or _quiet)


def _run_figures(d: Path, out: Path, cell: int | None, rep, images: int, log: Log) -> list[Path]:
    rd = RunDir(d)
    cfg = rd.load_config()
    label = run_label(cfg)
    written: list[Path] = []

    if rd.train_log.exists():
        df = compute_training_curves(load_train_log(d))
        written += save_figure(plot_training_curves(df, f"Supernet training: {label}"), out / "training_curves", df)
    else:
        log(f"{d.name}: no {rd.train_log.name}; skipping the training curves")

    if rep is not None:
        scores = _tag_scores(rep)
        by = group_column(rep.config, scores)
        rout = out / rep.name
        if "truth" in scores and scores["truth"].notna().sum() >= 3:
            df = compute_rank_agreement(scores, by=by)
            fig = plot_rank_agreement(df, f"Rank agreement: {label}; report {rep.name}",
                                      truth_label=truth_label(rep.config), by=by)
            written += save_figure(fig, rout / "rank_agreement", df)
        else:
            log(f"{d.name}: report {rep.name} has fewer than 3 candidates with a truth; skipping rank agreement")
        df = compute_accuracy_by_group(scores, by=by)
        fig = plot_accuracy_by_group(df, by, f"One-shot accuracy by {column_label(by)}: {label}; report {rep.name}")
        written += save_figure(fig, rout / f"accuracy_by_{by}", df)
    else:
        log(f"{d.name}: no report; skipping rank agreement and accuracy by {group_column(cfg)} "
            f"(score it with `rankbench run`)")

    if not rd.supernet.exists():
        log(f"{d.name}: no trained supernet ({rd.supernet.name}); skipping the cosine and SBN figures")
        return written
    net, _ = rd.load_supernet()
    c = DEFAULT_CELL if cell is None else int(cell)
    if not 0 <= c < net.num_cells:
        raise ValueError(f"--cell {c} out of range: {d.name} has cells 0..{net.num_cells - 1}")
    written += _cosine_figure(net, cfg, c, out, label, images, log, d.name)
    written += _sbn_figures(net, cfg, c, out, label, log, d.name)
    return written


def _cosine_figure(net, cfg, c: int, out: Path, label: str, images: int, log: Log, name: str) -> list[Path]:
    from rankbench.figures.cosine import applies_to, compute_cosine, default_input_arch, plot_cosine

    why = applies_to(net)
    if why:
        log(f"{name}: {why}; skipping the cosine figure")
        return []
    x = feature_images(cfg, images)
    arch = default_input_arch(net.space.m)
    df = compute_cosine(net, x, cell=c, input_arch=arch)
    before = f"; cells before it run {arch.code}" if c > 0 else ""
    fig = plot_cosine(df, f"Path features of cell {c} ({len(x)} training images{before}): {label}")
    return save_figure(fig, out / f"cosine_cell{c}", df)


def sbn_names(cfg, stats) -> tuple[str, str]:
    """(what k counts, the reference's name) for a run's SBN figure."""
    k_name = "active paths" if group_column(cfg) == "num_paths" else "inputs summed (fan-in)"
    ones = stats[stats["k"] == 1].groupby("site")["bn"].nunique()
    ref_name = "SBN_1" if ones.empty or ones.max() == 1 else "mean of the 1-input BNs"
    return k_name, ref_name


def _sbn_figures(net, cfg, c: int, out: Path, label: str, log: Log, name: str) -> list[Path]:
    from rankbench.figures.sbn_stats import compute_sbn_stats, has_shadow_bns, plot_sbn_stats, sbn_comparison

    if not has_shadow_bns(net):
        log(f"{name}: the {cfg.model.variant!r} supernet has no shadow BNs; skipping the SBN statistics")
        return []
    stats = compute_sbn_stats(net, log=lambda m: log(f"{name}: {m}"))
    if stats.empty:
        log(f"{name}: no trained shadow BN with a single-input reference; skipping the SBN statistics")
        return []
    k_name, ref_name = sbn_names(cfg, stats)
    table = sbn_comparison(stats, ref_name=ref_name)
    if table.empty:
        log(f"{name}: every site has a single shadow BN (nothing to compare); skipping the SBN statistics")
        return []
    written: list[Path] = []
    if (stats["cell"] == c).any() and (table["cell"] == c).any():
        fig = plot_sbn_stats(stats, cell=c, k_name=k_name, ref_name=ref_name,
                             title=f"Shadow BN of cell {c}, k {k_name} vs {ref_name}: {label}")
        written += save_figure(fig, out / f"sbn_stats_cell{c}", stats[stats["cell"] == c])
    else:
        log(f"{name}: cell {c} has no shadow BN to compare; skipping its SBN figure")
    written.append(_write_csv(table, out / "sbn_comparison.csv"))
    if stats.groupby("cell")["site"].nunique().max() > 1:  # nb101: one site per (vertex, op)
        written.append(_write_csv(sbn_comparison(stats, per_site=True, ref_name=ref_name),
                                  out / "sbn_comparison_by_site.csv"))
    return written


def _write_csv(df, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


class _Plan:
    """What a comparison draws, decided (and checked) before anything is written."""

    def __init__(self, dirs: Sequence[Path], reports: dict[Path, object], allow_mixed: bool):
        self.scored = [d for d in dirs if reports.get(d) is not None]
        self.trained = [d for d in dirs if RunDir(d).train_log.exists()]
        self.reports = reports
        self.score_groups: list[RunGroup] = []
        self.train_groups: list[RunGroup] = []
        if len(self.scored) > 1:
            reps = [reports[d] for d in self.scored]
            self.score_groups = group_runs(self.scored, [r.config for r in reps],
                                           setups=[r.setup or {"name": r.name} for r in reps],
                                           reports=[r.name for r in reps], allow_mixed=allow_mixed,
                                           what="the accuracy comparison")
        if len(self.trained) > 1:
            self.train_groups = group_runs(self.trained, [RunDir(d).load_config() for d in self.trained],
                                           allow_mixed=allow_mixed, what="the training-curve comparison")


def _common(configs) -> str:
    presets = sorted({c.preset for c in configs})
    spaces = sorted({space_label(c) for c in configs})
    return f"{', '.join(presets)} preset{'s' if len(presets) > 1 else ''}; {' | '.join(spaces)}"


def _pooled(groups: Sequence[RunGroup], reports: dict[Path, object]):
    """(scores of every group's runs with a ``group`` column, the space column they are drawn
    by, what they are for a title); a ValueError if the runs' spaces use different columns."""
    import pandas as pd

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
    return scores, cols[0], f"{_common(configs)}; {scores['run'].nunique()} runs; {which}"


def pooled_scores(paths: Sequence[str | os.PathLike], *, report: str | None = None, allow_mixed: bool = False):
    """The scores of one report of each run, with ``run``, ``report``, ``variant``, ``seed``
    and ``group`` (the label of the run's config group,
    :func:`~rankbench.figures._groups.group_runs`) columns. ``paths``: report directories, or
    run directories (then ``report``, a name or unique prefix, picks one; default each run's
    only one). Returns (scores, the space's group column, a description for titles). Runs of
    different configs or scoring setups raise :class:`MixedConfigError` unless ``allow_mixed``."""
    from rankbench.reports import load_report

    reps = [load_report(p, report) for p in paths]
    dirs = [r.run_dir for r in reps]
    if len(set(dirs)) != len(dirs):
        raise ValueError("two reports of one run given; pass one report per run")
    reports = dict(zip(dirs, reps))
    groups = group_runs(dirs, [reports[d].config for d in dirs],
                        setups=[reports[d].setup or {"name": reports[d].name} for d in dirs],
                        reports=[reports[d].name for d in dirs], allow_mixed=allow_mixed, what="these scores")
    return _pooled(groups, reports)


def _comparisons(plan: _Plan, out: Path, log: Log) -> list[Path]:
    import pandas as pd

    written: list[Path] = []
    if plan.score_groups:
        try:
            scores, by, what = _pooled(plan.score_groups, plan.reports)
        except ValueError as e:
            log(f"{e}; skipping the accuracy comparison")
        else:
            df = compute_accuracy_by_group(scores, by=by)
            title = f"One-shot accuracy by {column_label(by)} ({what})"
            written += save_figure(plot_accuracy_by_group(df, by, title), out / f"accuracy_by_{by}", df)
    elif len(plan.scored) < 2:
        log("fewer than 2 runs have a report; skipping the accuracy comparison")
    if plan.train_groups:
        frames = [load_train_log(d).assign(group=g.label) for g in plan.train_groups for d in g.runs]
        df = compute_training_curves(pd.concat(frames, ignore_index=True))
        configs = [RunDir(d).load_config() for d in plan.trained]
        title = f"Supernet training ({_common(configs)}; {len(plan.trained)} runs)"
        written += save_figure(plot_training_curves(df, title), out / "training_curves", df)
    return written


def comparison_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                       report: str | None = None, allow_mixed: bool = False, log: Log | None = None) -> list[Path]:
    """Figures comparing runs (variants, seeds): one-shot accuracy by the space's column of
    every scored run (its ``report``), and the training curves of every trained run. Runs are
    grouped by config; runs that differ in more than variant and seed (or read reports of
    different scoring setups) raise :class:`MixedConfigError` unless ``allow_mixed``."""
    dirs = [check_run_dir(r) for r in run_dirs]
    plan = _Plan(dirs, {d: _report_or_none(d, report) for d in dirs}, allow_mixed)
    return _comparisons(plan, Path(out_dir), log or _quiet)


def make_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, cell: int | None = None, *,
                 report: str | None = None, allow_mixed: bool = False, images: int = COSINE_IMAGES,
                 log: Log | None = None) -> list[Path]:
    """For each run, every applicable figure into ``out_dir/<run name>/`` (training curves; from
    its report, into ``<run name>/<report name>/``, rank agreement and accuracy by the space's
    column; from its trained supernet the cosine figure (S4) and the SBN statistics (shadow-BN
    variants)); with several runs also the comparisons into ``out_dir``. Every figure is a PNG
    and a PDF with the CSV of its numbers.

    ``report``: the report of each run to draw (a name or a unique prefix; default: each run's
    only report; a run holding several is an error listing them). ``allow_mixed``: draw runs
    of different configs or scoring setups as separate labelled groups instead of refusing.
    ``cell``: the cell of the per-cell figures (default :data:`DEFAULT_CELL`). Everything is
    checked before anything is written. Returns the files written; ``log`` receives a line
    for each figure skipped and why."""
    dirs = [check_run_dir(r) for r in run_dirs]  # fail before writing anything
    if not dirs:
        raise ValueError("no run directories given")
    names = [d.resolve().name for d in dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"run directories share a name, their figures would collide: {names}")
    log = log or _quiet
    reports = {d: _report_or_none(d, report) for d in dirs}
    if report is not None and not any(reports.values()):
        raise ValueError(f"--report {report}: none of these runs holds a report (score them with `rankbench run`)")
    plan = _Plan(dirs, reports, allow_mixed) if len(dirs) > 1 else None
    out = Path(out_dir)
    written: list[Path] = []
    for d, name in zip(dirs, names):
        written += _run_figures(d, out / name, cell, reports[d], images, log)
    if plan is not None:
        written += _comparisons(plan, out, log)
    return written
