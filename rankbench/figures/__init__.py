"""The paper's figures, from run directories: run dir -> numbers (CSV) -> figure.

One module per figure, each with a pure ``compute_*`` function returning a DataFrame (the CSV
written beside the figure) and a ``plot_*`` function drawing that DataFrame:

- :mod:`~rankbench.figures.cosine`: cosine similarity and magnitude of path features and their
  sums (why multi-path sums break BN);
- :mod:`~rankbench.figures.sbn_stats`: shadow-BN statistics of k paths against one path
  (mean ~ k x, variance ~ k^2 x), with fitted slopes;
- :mod:`~rankbench.figures.distributions`: one-shot accuracy by number of active paths;
- :mod:`~rankbench.figures.ranking`: supernet score against truth (Kendall tau), training curves.

:func:`make_figures` writes every figure that applies to the given runs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from rankbench._io import atomic_path
from rankbench.figures import style  # noqa: F401  (selects the Agg backend before any pyplot import)
from rankbench.figures._runs import (SCORES, TRAIN_LOG, WEIGHTS, check_run_dir, load_config, load_scores,
                                     load_train_log, run_label, truth_label)
from rankbench.figures.cosine import compute_cosine, default_input_arch, plot_cosine
from rankbench.figures.distributions import compute_accuracy_by_paths, plot_accuracy_by_paths
from rankbench.figures.ranking import (compute_rank_agreement, compute_training_curves, plot_rank_agreement,
                                       plot_training_curves)
from rankbench.figures.sbn_stats import compute_sbn_stats, fit_slopes, plot_sbn_stats
from rankbench.figures.style import save_figure

__all__ = ["make_figures", "run_figures", "comparison_figures", "feature_images", "DEFAULT_CELL",
           "COSINE_IMAGES", "check_run_dir"]

#: cell the per-cell figures show unless told otherwise (cell 0's input is the stem output,
#: so it does not depend on the subnet run in earlier cells)
DEFAULT_CELL = 0
#: training images in the fixed batch of the cosine figure
COSINE_IMAGES = 64
#: variants with shared multi-path cells (the cosine figure) and with shadow BNs
MIXPATH_VARIANTS = ("bn", "lsbn", "esbn", "scale")
SBN_VARIANTS = ("lsbn", "esbn")

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


def run_figures(run_dir: str | os.PathLike, out_dir: str | os.PathLike, cell: int | None = None, *,
                images: int = COSINE_IMAGES, log: Log | None = None) -> list[Path]:
    """Every figure that applies to one run, into ``out_dir``; returns the files written."""
    log = log or _quiet
    d = check_run_dir(run_dir)
    cfg = load_config(d)
    out = Path(out_dir)
    variant, label = cfg.model.variant, run_label(cfg)
    written: list[Path] = []

    if (d / TRAIN_LOG).exists():
        df = compute_training_curves(load_train_log(d))
        written += save_figure(plot_training_curves(df, f"Supernet training: {label}"), out / "training_curves", df)
    else:
        log(f"{d.name}: no {TRAIN_LOG}; skipping the training curves")

    if (d / SCORES).exists():
        scores = load_scores(d)
        if "truth" in scores and scores["truth"].notna().sum() >= 3:
            df = compute_rank_agreement(scores)
            fig = plot_rank_agreement(df, f"Rank agreement: {label}", truth_label=truth_label(cfg))
            written += save_figure(fig, out / "rank_agreement", df)
        else:
            log(f"{d.name}: {SCORES} has fewer than 3 subnets with a truth; skipping rank agreement")
        df = compute_accuracy_by_paths(scores)
        fig = plot_accuracy_by_paths(df, f"One-shot accuracy by active paths: {label}")
        written += save_figure(fig, out / "accuracy_by_paths", df)
    else:
        log(f"{d.name}: no {SCORES}; skipping rank agreement and accuracy by paths (score it with `rankbench run`)")

    wants_net = variant in MIXPATH_VARIANTS
    if wants_net and not (d / WEIGHTS).exists():
        log(f"{d.name}: no trained supernet ({WEIGHTS}); skipping the cosine and SBN figures")
    elif wants_net:
        from rankbench.train import load_supernet

        net, _ = load_supernet(d)
        c = DEFAULT_CELL if cell is None else int(cell)
        if not 0 <= c < net.num_cells:
            raise ValueError(f"--cell {c} out of range: {d.name} has cells 0..{net.num_cells - 1}")
        x = feature_images(cfg, images)
        arch = default_input_arch(net.space.m)
        df = compute_cosine(net, x, cell=c, input_arch=arch)
        before = f"; cells before it run {arch.code}" if c > 0 else ""
        fig = plot_cosine(df, f"Path features of cell {c} ({len(x)} training images{before}): {label}")
        written += save_figure(fig, out / f"cosine_cell{c}", df)
        if variant in SBN_VARIANTS and net.space.m == 1:
            log(f"{d.name}: m = 1, a single shadow BN; skipping the SBN statistics")
        elif variant in SBN_VARIANTS:
            stats = compute_sbn_stats(net)
            ref = "SBN_1" if variant == "lsbn" else "mean of the 1-node-subset BNs"
            fig = plot_sbn_stats(stats, cell=c, title=f"Shadow BN of cell {c}, k paths vs {ref}: {label}")
            written += save_figure(fig, out / f"sbn_stats_cell{c}", stats[stats["cell"] == c])
            slopes = fit_slopes(stats)
            path = out / "sbn_slopes.csv"
            with atomic_path(path, suffix=".csv") as tmp:
                slopes.to_csv(tmp, index=False, float_format="%.6g")
            written.append(path)
    return written


def comparison_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                       log: Log | None = None) -> list[Path]:
    """Figures comparing runs (variants, seeds): accuracy by active paths of every scored run,
    and the training curves of every trained run."""
    import pandas as pd

    log = log or _quiet
    dirs = [check_run_dir(r) for r in run_dirs]
    out = Path(out_dir)
    written: list[Path] = []
    presets = sorted({load_config(d).preset for d in dirs})

    def what(n: int) -> str:
        return f"{', '.join(presets)} preset{'s' if len(presets) > 1 else ''}, {n} run{'s' if n > 1 else ''}"

    scored = [d for d in dirs if (d / SCORES).exists()]
    if scored:
        df = compute_accuracy_by_paths(pd.concat([load_scores(d) for d in scored], ignore_index=True))
        fig = plot_accuracy_by_paths(df, f"One-shot accuracy by active paths ({what(len(scored))})")
        written += save_figure(fig, out / "accuracy_by_paths", df)
    else:
        log("no run has a scores.csv; skipping the accuracy comparison")
    trained = [d for d in dirs if (d / TRAIN_LOG).exists()]
    if trained:
        df = compute_training_curves(pd.concat([load_train_log(d) for d in trained], ignore_index=True))
        fig = plot_training_curves(df, f"Supernet training ({what(len(trained))})")
        written += save_figure(fig, out / "training_curves", df)
    return written


def make_figures(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, cell: int | None = None, *,
                 images: int = COSINE_IMAGES, log: Log | None = None) -> list[Path]:
    """For each run, every applicable figure into ``out_dir/<run name>/`` (training curves;
    rank agreement and accuracy by paths if it has a scores.csv; the cosine figure for MixPath
    variants and the SBN statistics for lsbn / esbn if it has a trained supernet); with several
    runs also the comparisons into ``out_dir``. Every figure is a PNG and a PDF with the CSV of
    its numbers. ``cell``: the cell of the per-cell figures (default :data:`DEFAULT_CELL`).
    Returns the files written; ``log`` receives a line for each figure skipped and why."""
    dirs = [check_run_dir(r) for r in run_dirs]  # fail before writing anything
    if not dirs:
        raise ValueError("no run directories given")
    names = [d.resolve().name for d in dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"run directories share a name, their figures would collide: {names}")
    out = Path(out_dir)
    written: list[Path] = []
    for d, name in zip(dirs, names):
        written += run_figures(d, out / name, cell, images=images, log=log)
    if len(dirs) > 1:
        written += comparison_figures(dirs, out, log=log)
    return written
