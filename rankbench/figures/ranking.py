"""Rank agreement of a supernet with the ground truth, and runs' training curves.

Rank agreement: one point per scored candidate of one report, one-shot accuracy (supernet
score) against the ground-truth accuracy, coloured by the space's descriptive column (S4:
number of active paths), Kendall's tau-b in each panel's title (one panel without, one with
BN calibration). Isomorphic subnets share one NB101 truth, so they stack vertically.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rankbench.figures._runs import as_percent, percent_factor
from rankbench.figures.distributions import column_label, group_colors
from rankbench.figures.style import (CALIB_LABELS, CALIB_ORDER, figure_style, level_colors, suptitle, variant_label,
                                     wrap_label)
from rankbench.metrics import kendall_tau

__all__ = ["compute_rank_agreement", "plot_rank_agreement", "compute_training_curves", "plot_training_curves"]

_ACC_COLUMNS = {"acc_no_calib": "no_calib", "acc_calib": "calib"}


def compute_rank_agreement(scores: pd.DataFrame, by: str = "num_paths") -> pd.DataFrame:
    """Long table: ``report`` (the report read, when ``scores`` name it), ``name``, ``by``
    (the space's group column), ``hash``, ``calibration``, ``score`` (%), ``truth`` (%),
    ``truth_std`` (%), ``kendall_tau`` (tau-b of score against truth within that calibration
    setting) and ``n`` (candidates ranked). Candidates without a truth or a score are left out
    (so ``n`` is the number really ranked)."""
    present = [c for c in _ACC_COLUMNS if c in scores.columns and scores[c].notna().any()]
    if not present or "truth" not in scores.columns:
        raise ValueError(f"scores need a truth column and acc_no_calib and/or acc_calib; got {list(scores.columns)}")
    name = "name" if "name" in scores.columns else "subnet"
    for col in (name, by):
        if col not in scores.columns:
            raise ValueError(f"scores need a {col!r} column; got {list(scores.columns)}")
    factor = percent_factor(scores["truth"])
    truth = scores["truth"].to_numpy(dtype=float) * factor
    std = (scores["truth_std"].to_numpy(dtype=float) * factor if "truth_std" in scores  # truth's units
           else np.full(len(scores), np.nan))
    frames = []
    for col in present:
        d = pd.DataFrame({
            "report": scores["report"].astype(str).to_numpy() if "report" in scores else "",
            "name": scores[name].astype(str).to_numpy(),
            by: scores[by].astype(int).to_numpy(),
            "hash": scores["hash"].astype(str).to_numpy() if "hash" in scores else "",
            "calibration": _ACC_COLUMNS[col],
            "score": as_percent(scores[col]),
            "truth": truth,
            "truth_std": std,
        })
        d = d[np.isfinite(d["score"]) & np.isfinite(d["truth"])].reset_index(drop=True)
        tau = kendall_tau(d["score"], d["truth"]) if len(d) >= 3 else math.nan
        frames.append(d.assign(kendall_tau=tau, n=len(d)))
    return pd.concat(frames, ignore_index=True)


def plot_rank_agreement(df: pd.DataFrame, title: str | None = None, truth_label: str = "ground-truth accuracy (%)",
                        by: str = "num_paths"):
    """Scatter of one-shot accuracy against truth, one panel per calibration setting, coloured
    by ``by``."""
    import matplotlib.pyplot as plt

    calibs = [c for c in CALIB_ORDER if c in set(df["calibration"])]
    ks = sorted(int(k) for k in df[by].unique())
    colors = level_colors(ks)
    with figure_style():
        fig, axes = plt.subplots(1, len(calibs), figsize=(3.6 * len(calibs) + 0.9, 3.5), squeeze=False,
                                 constrained_layout=True)
        for ax, calib in zip(axes[0], calibs):
            d = df[df["calibration"] == calib]
            if d["truth_std"].notna().any():
                ax.errorbar(d["truth"], d["score"], xerr=d["truth_std"], fmt="none", ecolor="grey", elinewidth=0.5,
                            alpha=0.4, zorder=1)
            for k in ks:
                g = d[d[by] == k]
                ax.scatter(g["truth"], g["score"], s=14, color=colors[int(k)], edgecolors="white", linewidths=0.3,
                           label=str(k), zorder=2)
            tau, n = d["kendall_tau"].iloc[0], int(d["n"].iloc[0])
            ax.set_title(f"{CALIB_LABELS[calib]}\nKendall " + r"$\tau$" + f" = {tau:.3f} (n = {n})")
            ax.set_xlabel(truth_label)
            ax.set_ylabel("one-shot accuracy (%)")
        axes[0, -1].legend(title=column_label(by).replace(" ", "\n", 1), loc="upper left",
                           bbox_to_anchor=(1.02, 1.0), frameon=False, markerscale=1.3)
        suptitle(fig, title)
    return fig


def compute_training_curves(log: pd.DataFrame) -> pd.DataFrame:
    """train_log.csv rows (one or several runs) with ``train_acc`` in percent; ``run`` and
    ``variant`` default to "run" and "?" when absent, ``group`` (the runs' group label) to the
    variant's label."""
    missing = [c for c in ("epoch", "lr", "train_loss", "train_acc") if c not in log.columns]
    if missing:
        raise ValueError(f"training log lacks column(s) {missing}; got {list(log.columns)}")
    variant = log["variant"].astype(str).to_numpy() if "variant" in log else np.full(len(log), "?")
    out = pd.DataFrame({
        "group": log["group"].astype(str).to_numpy() if "group" in log else [variant_label(v) for v in variant],
        "variant": variant,
        "run": log["run"].to_numpy() if "run" in log else "run",
        "epoch": log["epoch"].astype(int).to_numpy(),
        "lr": log["lr"].astype(float).to_numpy(),
        "train_loss": log["train_loss"].astype(float).to_numpy(),
        "train_acc": as_percent(log["train_acc"]),
    })
    return out


def plot_training_curves(df: pd.DataFrame, title: str | None = None):
    """Training loss, training accuracy (%) and learning rate against epoch; one line per run,
    coloured by its group (runs of one config, e.g. seeds, share a colour; the variant's, in
    shades when groups of one variant differ in their config)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    colors = group_colors(df)
    with figure_style():
        fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.0), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1, 1, 0.7]})
        for run, g in df.groupby("run", sort=False):
            color = colors[g["group"].iloc[0]]
            g = g.sort_values("epoch")
            kw = dict(color=color, lw=1.4, marker="o" if len(g) <= 30 else None, ms=2.5)
            axes[0].plot(g["epoch"], g["train_loss"], **kw)
            axes[1].plot(g["epoch"], g["train_acc"], **kw)
            axes[2].plot(g["epoch"], g["lr"], **kw)
        for ax, lab in zip(axes, ("training loss (cross-entropy)", "training accuracy (%)", "learning rate")):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel(lab)
        axes[0].set_title("loss")
        axes[1].set_title("accuracy (sampled subnets, augmented data)")
        axes[2].set_title("schedule")
        if len(colors) > 1 or df["run"].nunique() > 1:
            handles = [Line2D([], [], color=c, lw=1.6, label=wrap_label(g)) for g, c in colors.items()]
            fig.legend(handles=handles, loc="outside right center", title="runs", frameon=False)
        suptitle(fig, title)
    return fig
