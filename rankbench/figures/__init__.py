"""The paper's figures, from run directories: run dir -> numbers (CSV) -> figure.

One module per figure, each with a pure ``compute_*`` function returning a DataFrame (the CSV
written beside the figure), a ``plot_*`` function drawing that DataFrame, and a ``draw_*``
function registered in :mod:`~rankbench.figures.registry` with its scope (``run``, ``runs``,
``ablation``) and an ``applies`` predicate:

- :mod:`~rankbench.figures.cosine`: cosine similarity and magnitude of path features and their
  sums (why multi-path sums break BN; S4 only);
- :mod:`~rankbench.figures.sbn_stats`: shadow-BN statistics of k inputs against one input
  (mean ~ k x, variance ~ k^2 x; gamma and beta by correlation and relative difference);
- :mod:`~rankbench.figures.distributions`: one-shot accuracy by the space's descriptive column
  (S4: active paths; nb101: largest fan-in);
- :mod:`~rankbench.figures.ranking`: supernet score against truth (Kendall tau), training curves;
- :mod:`~rankbench.figures.ablation`: the ablation's tau per variant as a forest plot against
  the reference rankers, and its paired differences;
- :mod:`~rankbench.figures.tau_over_training`: tau at the epochs a training was evaluated
  (``train.eval_every``), per variant with a band over seeds.

Figures that read scores read one report of each run (``report``: a name or a unique prefix,
e.g. ``paper-calib``; by default the run's only report) and name it in their title and CSV.
Figures comparing runs group them by resolved config (:mod:`~rankbench.figures._groups`) and
refuse to pool runs of different configs or scoring setups unless ``allow_mixed``. A title says
when a run is unfinished or overrides its preset.

:func:`make_figures` writes every registered figure that applies to the given runs;
:func:`report_figures` those of one report (for its ``report.html``); :func:`ablation_figures`
those of an ablation folder.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from rankbench.figures import style  # noqa: F401  (selects the Agg backend before any pyplot import)
# the figure modules register their figures on import, in this order
from rankbench.figures import ranking, distributions, cosine, sbn_stats, ablation, tau_over_training  # noqa: F401,E402,E501  isort: skip
from rankbench.figures._context import (COSINE_IMAGES, DEFAULT_CELL, AblationContext, Log, RunContext, RunsContext,
                                        _Plan, pooled, quiet)
from rankbench.figures._groups import MixedConfigError, group_runs
from rankbench.figures._runs import check_run_dir, select_report
from rankbench.figures.cosine import feature_images
from rankbench.figures.registry import FigureSpec, get_figure, list_figures, register_figure
from rankbench.figures.sbn_stats import sbn_names
from rankbench.rundir import RunDir

__all__ = ["make_figures", "run_figures", "report_figures", "comparison_figures", "ablation_figures",
           "pooled_scores", "draw_figure", "feature_images", "sbn_names", "register_figure", "get_figure",
           "list_figures", "DEFAULT_CELL", "COSINE_IMAGES", "check_run_dir", "MixedConfigError"]


def _report_or_none(d: Path, report: str | None):
    """The report a figure of run ``d`` reads; None if the run holds no report at all."""
    return select_report(d, report) if RunDir(d).reports() else None


def draw_figure(spec: FigureSpec | str, ctx, out: str | os.PathLike, log: Log | None = None) -> list[Path]:
    """Draw one registered figure from ``ctx`` into ``out`` if it applies; else say why to
    ``log`` and return []."""
    spec = get_figure(spec) if isinstance(spec, str) else spec
    if not spec.applies(ctx):
        who = getattr(ctx, "name", None) or Path(getattr(ctx, "path", ".")).name
        (log or quiet)(f"{who}: {spec.why_not(ctx)}; skipping {spec.name.replace('_', ' ')}")
        return []
    return spec(ctx, Path(out))


def _selected(scope: str, names: Iterable[str] | None, supernet: bool) -> list[FigureSpec]:
    wanted = set(names) if names is not None else None
    if wanted is not None:
        unknown = wanted - set(list_figures())
        if unknown:
            raise KeyError(f"unknown figure(s) {sorted(unknown)}; figures: {', '.join(list_figures())}")
    specs = [get_figure(n) for n in list_figures(scope) if wanted is None or n in wanted]
    return [s for s in specs if supernet or not s.needs_supernet]


def _draw_run(ctx: RunContext, out: Path, *, report_subdir: bool = True, names: Iterable[str] | None = None,
              supernet: bool = True) -> list[Path]:
    written: list[Path] = []
    for spec in _selected("run", names, supernet):
        where = out / ctx.report.name if spec.per_report and report_subdir and ctx.report is not None else out
        written += draw_figure(spec, ctx, where, ctx.log)
    return written


def run_figures(run_dir: str | os.PathLike, out_dir: str | os.PathLike, cell: int | None = None, *,
                report: str | None = None, images: int = COSINE_IMAGES, names: Iterable[str] | None = None,
                log: Log | None = None) -> list[Path]:
    """Every figure of scope ``run`` that applies to one run (or those in ``names``), into
    ``out_dir`` (those drawn from a report into ``out_dir/<report name>/``); ``report``: which of
    the run's reports (name or unique prefix; default: its only one). Returns the files
    written."""
    d = check_run_dir(run_dir)
    ctx = RunContext(d, _report_or_none(d, report), DEFAULT_CELL if cell is None else int(cell), images,
                     log or quiet)
    return _draw_run(ctx, Path(out_dir), names=names)


def report_figures(report_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                   supernet: bool = True, names: Iterable[str] | None = None, cell: int | None = None,
                   images: int = COSINE_IMAGES, formats: Sequence[str] = ("png", "pdf"), dpi: int = style.DPI,
                   log: Log | None = None) -> list[Path]:
    """The run figures of one report (its training curves, rank agreement, accuracy by the
    space's column; with ``supernet`` also the cosine and SBN figures of its trained
    supernet) into ``out_dir`` (default ``<report dir>/figures/``), as ``formats`` (png, pdf)
    at ``dpi``, each with its CSV: what its ``report.html`` shows."""
    from rankbench.reports import load_report

    rep = load_report(report_dir)
    ctx = RunContext(rep.run_dir, rep, DEFAULT_CELL if cell is None else int(cell), images, log or quiet,
                     tuple(formats), int(dpi))
    out = Path(out_dir) if out_dir is not None else rep.path / "figures"
    return _draw_run(ctx, out, report_subdir=False, names=names, supernet=supernet)


def ablation_figures(folder: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                     log: Log | None = None) -> list[Path]:
    """Every figure of scope ``ablation`` of an ablation folder (``ablation.csv``,
    ``paired.csv``), into ``out_dir`` (default the folder itself)."""
    ctx = AblationContext(Path(folder), log or quiet)
    out = Path(out_dir) if out_dir is not None else ctx.path
    written: list[Path] = []
    for spec in _selected("ablation", None, True):
        written += draw_figure(spec, ctx, out, ctx.log)
    return written


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
    return pooled(groups, reports)


def _contexts(dirs: Sequence[Path], report: str | None, cell: int | None, images: int, log: Log,
              progress) -> list[RunContext]:
    c = DEFAULT_CELL if cell is None else int(cell)
    return [RunContext(d, _report_or_none(d, report), c, images, log) for d in progress(dirs, "reading runs")]


def _draw_runs(ctx: RunsContext, out: Path) -> list[Path]:
    written: list[Path] = []
    for spec in _selected("runs", None, True):
        written += draw_figure(spec, ctx, out, ctx.log)
    return written


def comparison_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                       report: str | None = None, allow_mixed: bool = False, log: Log | None = None) -> list[Path]:
    """Figures comparing runs (variants, seeds; the registry's scope ``runs``): one-shot
    accuracy by the space's column of every scored run (its ``report``), and the training curves
    of every trained run (mean and band per group). Runs are grouped by config; runs that differ
    in more than variant and seed (or read reports of different scoring setups) raise
    :class:`MixedConfigError` unless ``allow_mixed``."""
    log = log or quiet
    dirs = [check_run_dir(r) for r in run_dirs]
    ctxs = _contexts(dirs, report, None, COSINE_IMAGES, log, _no_progress)
    plan = _Plan(dirs, {c.path: c.report for c in ctxs}, allow_mixed, {c.path: c.cfg for c in ctxs})
    return _draw_runs(RunsContext(ctxs, plan, log), Path(out_dir))


def _no_progress(items, _desc: str = ""):
    return items


def _progress_bar(enabled: bool | None):
    """``progress(items, description)``: a tqdm bar on stderr (``enabled`` None: when stderr is a
    terminal), else the items as they are."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return _no_progress
    from tqdm.auto import tqdm

    def bar(items, desc: str = ""):
        return tqdm(items, desc=desc, unit="run", leave=False, file=sys.stderr)

    return bar


def make_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, cell: int | None = None, *,
                 report: str | None = None, allow_mixed: bool = False, images: int = COSINE_IMAGES,
                 per_run: bool | None = None, progress: bool | None = None, log: Log | None = None) -> list[Path]:
    """Every registered figure that applies: with one run (or ``per_run``) each run's figures
    into ``out_dir/<run name>/`` (training curves; from its report, into
    ``<run name>/<report name>/``, rank agreement and accuracy by the space's column; from its
    trained supernet the cosine figure (S4) and the SBN statistics (shadow-BN variants)); with
    several runs the comparisons into ``out_dir``. Every figure is a PNG and a PDF with the CSV
    of its numbers.

    ``per_run``: draw each run's own figures too (default: only when one run is given; the
    comparisons of 25 runs take seconds, their per-run figures minutes). ``report``: the
    report of each run to draw (a name or a unique prefix; default: each run's only report; a
    run holding several is an error listing them). ``allow_mixed``: draw runs of different
    configs or scoring setups as separate labelled groups instead of refusing. ``cell``: the
    cell of the per-cell figures (default :data:`DEFAULT_CELL`). ``progress``: a progress bar
    on stderr (default: when stderr is a terminal). Everything is checked before anything is
    written. Returns the files written; ``log`` receives a line for each figure skipped and
    why."""
    dirs = [check_run_dir(r) for r in run_dirs]  # fail before writing anything
    if not dirs:
        raise ValueError("no run directories given")
    names = [d.resolve().name for d in dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"run directories share a name, their figures would collide: {names}")
    log = log or quiet
    bar = _progress_bar(progress)
    ctxs = _contexts(dirs, report, cell, images, log, bar if len(dirs) > 1 else _no_progress)
    if report is not None and not any(c.report for c in ctxs):
        raise ValueError(f"--report {report}: none of these runs holds a report (score them with `rankbench run`)")
    plan = _Plan(dirs, {c.path: c.report for c in ctxs}, allow_mixed, {c.path: c.cfg for c in ctxs}) \
        if len(dirs) > 1 else None
    per_run = len(dirs) == 1 if per_run is None else per_run
    out = Path(out_dir)
    written: list[Path] = []
    if per_run:
        for ctx, name in zip(bar(ctxs, "per-run figures") if len(ctxs) > 1 else ctxs, names):
            written += _draw_run(ctx, out / name)
    elif len(dirs) > 1:
        log(f"{len(dirs)} runs: drawing the comparisons only; per-run figures on request (--per-run)")
    if plan is not None:
        written += _draw_runs(RunsContext(ctxs, plan, log), out)
    return written
