"""Tau over training: Kendall tau of the supernet's ranking at the epochs it was evaluated
(``train.eval_every``; the run's ``tau_over_training.csv``, :mod:`rankbench.training.tau_table`),
without and with BN calibration, the reference rankers as horizontal lines.

One run: its tau with the 95% bootstrap interval as a band. Several runs: one line per group
of runs (a variant's seeds, :mod:`~rankbench.figures._groups`), the mean over the group's runs,
with a band from the lowest to the highest run (min-max over seeds: with 2 to 5 seeds an sd
says little).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from rankbench.figures.distributions import group_colors
from rankbench.figures.registry import register_figure
from rankbench.figures.style import CALIB_LABELS, figure_style, suptitle, variant_label, wrap_label
from rankbench.references import reference_label
from rankbench.rundir import RunDir
from rankbench.training.tau_table import REFERENCE_PREFIX, SUPERNET_SETTINGS, TAU_CSV

__all__ = ["load_tau_table", "compute_tau_over_training", "plot_tau_over_training", "has_tau_table"]

_REF_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def has_tau_table(run_dir: str | Path) -> bool:
    return (Path(run_dir) / TAU_CSV).exists()


def load_tau_table(run_dir: str | Path, group: str | None = None) -> pd.DataFrame:
    """A run's tau_over_training.csv with ``run``, ``variant``, ``seed`` and ``group`` (default:
    the variant's label) columns."""
    rd = RunDir(run_dir)
    cfg = rd.load_config()
    df = pd.read_csv(rd.path / TAU_CSV)
    df.insert(0, "run", rd.name)
    df.insert(1, "variant", cfg.model.variant)
    df.insert(2, "seed", cfg.train.seed)
    df.insert(3, "group", group if group is not None else variant_label(cfg.model.variant))
    return df


def compute_tau_over_training(tau: pd.DataFrame) -> pd.DataFrame:
    """Per group, setting and epoch (references: epoch NaN): ``n_runs``, ``kendall_tau`` (the
    mean over the group's runs), ``band_low`` / ``band_high`` and ``band`` (what the band is: one
    run's 95% bootstrap interval, or min-max over several runs), ``n`` (candidates ranked, the
    fewest of the runs)."""
    missing = [c for c in ("group", "variant", "run", "epoch", "setting", "kendall_tau", "ci_low", "ci_high", "n")
               if c not in tau.columns]
    if missing:
        raise ValueError(f"tau table lacks column(s) {missing}; got {list(tau.columns)}")
    rows = []
    keys = tau.assign(_epoch=tau["epoch"].fillna(-1))
    for (group, variant, setting, epoch), g in keys.groupby(["group", "variant", "setting", "_epoch"], sort=False):
        v = g["kendall_tau"].to_numpy(float)
        runs = int(g["run"].nunique())
        if runs == 1:
            low, high, band = float(g["ci_low"].iloc[0]), float(g["ci_high"].iloc[0]), "95% interval"
        else:
            low, high, band = float(np.nanmin(v)), float(np.nanmax(v)), "min-max over runs"
        rows.append({"group": group, "variant": variant, "setting": setting,
                     "epoch": math.nan if epoch < 0 else int(epoch), "n_runs": runs,
                     "kendall_tau": float(np.nanmean(v)) if np.isfinite(v).any() else math.nan,
                     "band_low": low, "band_high": high, "band": band, "n": int(g["n"].min())})
    return pd.DataFrame(rows)


def plot_tau_over_training(summary: pd.DataFrame, title: str | None = None):
    """Two panels (without, with BN calibration): tau against epoch per group with its band;
    the reference rankers as horizontal lines (their mean over runs)."""
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    curves = summary[summary["setting"].isin(SUPERNET_SETTINGS)]
    refs = summary[summary["setting"].str.startswith(REFERENCE_PREFIX)]
    colors = group_colors(curves if len(curves) else summary)
    ref_taus = refs.groupby("setting", sort=True)["kendall_tau"].mean()
    with figure_style():
        fig, axes = plt.subplots(1, len(SUPERNET_SETTINGS), figsize=(9.0, 3.2), sharey=True, constrained_layout=True)
        bands = set()
        for ax, setting in zip(axes, SUPERNET_SETTINGS):
            for group, color in colors.items():
                g = curves[(curves["group"] == group) & (curves["setting"] == setting)].sort_values("epoch")
                if g.empty:
                    continue
                ax.plot(g["epoch"], g["kendall_tau"], color=color, lw=1.4, marker="o" if len(g) <= 30 else None,
                        ms=2.5)
                ok = np.isfinite(g["band_low"].to_numpy(float)) & np.isfinite(g["band_high"].to_numpy(float))
                if ok.any():
                    bands.update(g["band"][ok])
                    ax.fill_between(g["epoch"][ok], g["band_low"][ok], g["band_high"][ok], color=color, alpha=0.2,
                                    lw=0)
            for tau, ls in zip(ref_taus.to_numpy(float), _REF_STYLES * 4):
                if math.isfinite(tau):
                    ax.axhline(tau, color="0.35", lw=1.0, ls=ls)
            ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(CALIB_LABELS.get(setting, setting))
        axes[0].set_ylabel("Kendall tau (vs truth)")
        handles: list[Artist] = [Line2D([], [], color=c, lw=1.6, label=wrap_label(g)) for g, c in colors.items()]
        handles += [Line2D([], [], color="0.35", lw=1.0, ls=ls,
                           label=wrap_label(_ref_label(name) + f" ({tau:+.2f})"))
                    for (name, tau), ls in zip(ref_taus.items(), _REF_STYLES * 4) if math.isfinite(tau)]
        for band in sorted(bands):
            what = "95% bootstrap interval" if band == "95% interval" else "lowest to highest run (line: mean)"
            handles.append(Patch(color="grey", alpha=0.3, label=wrap_label(f"band: {what}")))
        fig.legend(handles=handles, loc="outside right center", frameon=False)
        suptitle(fig, title)
    return fig


def _ref_label(setting: str) -> str:
    return reference_label(setting.removeprefix(REFERENCE_PREFIX))


def _n_note(summary: pd.DataFrame) -> str:
    n = summary.loc[summary["setting"].isin(SUPERNET_SETTINGS), "n"]
    return f"{int(n.min())} candidates" if len(n) and n.min() == n.max() else \
        (f"{int(n.min())}-{int(n.max())} candidates" if len(n) else "")


# -- registered figures ------------------------------------------------------------------------
@register_figure("tau_over_training", "run", applies=lambda ctx: has_tau_table(ctx.path),
                 why_not=f"no {TAU_CSV} (train with --set train.eval_every=N)", order=35)
def draw_tau_over_training(ctx, out: Path) -> list[Path]:
    """Kendall tau of the supernet's ranking at the epochs it was evaluated (train.eval_every),
    without and with BN calibration, with its 95% interval; reference rankers as lines."""
    summary = compute_tau_over_training(load_tau_table(ctx.path))
    fig = plot_tau_over_training(summary, ctx.title(f"Tau over training ({_n_note(summary)})"))
    return ctx.save(fig, out / "tau_over_training", summary)


def _tau_runs(ctx) -> list[tuple[str, Path]]:
    return [(g.label, d) for g in ctx.plan.train_groups for d in g.runs if has_tau_table(d)]


@register_figure("compare_tau_over_training", "runs", applies=lambda ctx: len(_tau_runs(ctx)) >= 2,
                 why_not=f"fewer than 2 runs have a {TAU_CSV} (train with --set train.eval_every=N)", order=25,
                 stem="tau_over_training")
def draw_compare_tau_over_training(ctx, out: Path) -> list[Path]:
    """Tau over training of several runs: per group of runs (a variant's seeds) the mean tau and
    a band from the lowest to the highest run, without and with BN calibration."""
    df = pd.concat([load_tau_table(d, group=label) for label, d in _tau_runs(ctx)], ignore_index=True)
    summary = compute_tau_over_training(df)
    title = f"Tau over training ({df['run'].nunique()} runs; {_n_note(summary)})"
    return ctx.save(plot_tau_over_training(summary, title), out / "tau_over_training", summary)
