"""Rank agreement of a supernet with the ground truth, and a run's training curves.

Rank agreement: one point per scored subnet, one-shot accuracy (supernet score) against the
ground-truth accuracy, coloured by number of active paths, Kendall's tau-b in each panel's
title (one panel without, one with BN calibration). Isomorphic subnets share one NB101 truth,
so they stack vertically.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rankbench.figures._runs import as_percent, percent_factor
from rankbench.figures.style import (CALIB_LABELS, CALIB_ORDER, figure_style, order_variants, path_colors,
                                     suptitle, variant_color, variant_label)
from rankbench.metrics import kendall_tau

__all__ = ["compute_rank_agreement", "plot_rank_agreement", "compute_training_curves", "plot_training_curves"]

_ACC_COLUMNS = {"acc_no_calib": "no_calib", "acc_calib": "calib"}


def compute_rank_agreement(scores: pd.DataFrame) -> pd.DataFrame:
    """Long table: ``subnet``, ``num_paths``, ``hash``, ``calibration``, ``score`` (%),
    ``truth`` (%), ``truth_std`` (%), ``kendall_tau`` (tau-b of score against truth within
    that calibration setting) and ``n`` (subnets ranked). Subnets without a truth or a score
    are left out (so ``n`` is the number really ranked)."""
    present = [c for c in _ACC_COLUMNS if c in scores.columns]
    if not present or "truth" not in scores.columns:
        raise ValueError(f"scores need a truth column and acc_no_calib and/or acc_calib; got {list(scores.columns)}")
    factor = percent_factor(scores["truth"])
    truth = scores["truth"].to_numpy(dtype=float) * factor
    std = (scores["truth_std"].to_numpy(dtype=float) * factor if "truth_std" in scores  # truth's units
           else np.full(len(scores), np.nan))
    frames = []
    for col in present:
        d = pd.DataFrame({
            "subnet": scores["subnet"].astype(str).to_numpy(),
            "num_paths": scores["num_paths"].astype(int).to_numpy(),
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


def plot_rank_agreement(df: pd.DataFrame, title: str | None = None, truth_label: str = "ground-truth accuracy (%)"):
    """Scatter of one-shot accuracy against truth, one panel per calibration setting."""
    import matplotlib.pyplot as plt

    calibs = [c for c in CALIB_ORDER if c in set(df["calibration"])]
    ks = sorted(df["num_paths"].unique())
    colors = path_colors(int(max(ks)))
    with figure_style():
        fig, axes = plt.subplots(1, len(calibs), figsize=(3.6 * len(calibs) + 0.9, 3.5), squeeze=False,
                                 constrained_layout=True)
        for ax, calib in zip(axes[0], calibs):
            d = df[df["calibration"] == calib]
            if d["truth_std"].notna().any():
                ax.errorbar(d["truth"], d["score"], xerr=d["truth_std"], fmt="none", ecolor="grey", elinewidth=0.5,
                            alpha=0.4, zorder=1)
            for k in ks:
                g = d[d["num_paths"] == k]
                ax.scatter(g["truth"], g["score"], s=14, color=colors[int(k)], edgecolors="white", linewidths=0.3,
                           label=str(k), zorder=2)
            tau, n = d["kendall_tau"].iloc[0], int(d["n"].iloc[0])
            ax.set_title(f"{CALIB_LABELS[calib]}\nKendall " + r"$\tau$" + f" = {tau:.3f} (n = {n})")
            ax.set_xlabel(truth_label)
            ax.set_ylabel("one-shot accuracy (%)")
        axes[0, -1].legend(title="active\npaths", loc="upper left",
                           bbox_to_anchor=(1.02, 1.0), frameon=False, markerscale=1.3)
        suptitle(fig, title)
    return fig


def compute_training_curves(log: pd.DataFrame) -> pd.DataFrame:
    """train_log.csv rows (one or several runs) with ``train_acc`` in percent; ``run`` and
    ``variant`` default to "run" and "?" when absent."""
    missing = [c for c in ("epoch", "lr", "train_loss", "train_acc") if c not in log.columns]
    if missing:
        raise ValueError(f"training log lacks column(s) {missing}; got {list(log.columns)}")
    out = pd.DataFrame({
        "run": log["run"].to_numpy() if "run" in log else "run",
        "variant": log["variant"].to_numpy() if "variant" in log else "?",
        "epoch": log["epoch"].astype(int).to_numpy(),
        "lr": log["lr"].astype(float).to_numpy(),
        "train_loss": log["train_loss"].astype(float).to_numpy(),
        "train_acc": as_percent(log["train_acc"]),
    })
    return out


def plot_training_curves(df: pd.DataFrame, title: str | None = None):
    """Training loss, training accuracy (%) and learning rate against epoch; one line per run,
    coloured by variant (runs of one variant, e.g. seeds, share its colour)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    variants = order_variants(df["variant"].tolist())
    with figure_style():
        fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.0), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1, 1, 0.7]})
        for run, g in df.groupby("run", sort=False):
            v = g["variant"].iloc[0]
            g = g.sort_values("epoch")
            kw = dict(color=variant_color(v), lw=1.4, marker="o" if len(g) <= 30 else None, ms=2.5)
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
        if len(variants) > 1 or df["run"].nunique() > 1:
            handles = [Line2D([], [], color=variant_color(v), lw=1.6, label=variant_label(v)) for v in variants]
            fig.legend(handles=handles, loc="outside right center", title="variant", frameon=False)
        suptitle(fig, title)
    return fig
