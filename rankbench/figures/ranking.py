"""Rank agreement of a supernet with the ground truth, and runs' training curves.

Rank agreement: one point per scored candidate of one report, one-shot accuracy (supernet
score) against the ground-truth accuracy, coloured by the space's descriptive column (S4:
number of active paths), Kendall's tau-b with the report's 95% interval in each panel's title
(one panel without, one with BN calibration, on shared axes). Candidates the report's keep
rule left out of its tau (``paper``: the 30 lowest by uncalibrated accuracy) are drawn as grey
crosses and left out of tau here too, so the figure's tau is the report's. Grey horizontal
bars: the truth's spread (± 1 sd over its training repeats). Isomorphic subnets share one
truth, so they stack vertically. The reference rankers (parameters, FLOPs, ...) are listed
with their tau beside the panels.

Training curves: loss, accuracy and learning rate by epoch; one line per group of runs (the
mean over its seeds) with a band of ± 1 sd when the group has several runs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from rankbench.figures._runs import as_percent, percent_factor, truth_label
from rankbench.figures.distributions import column_label, group_colors
from rankbench.figures.registry import register_figure
from rankbench.figures.style import (CALIB_LABELS, CALIB_ORDER, figure_style, level_colors, suptitle, variant_label,
                                     wrap_label)
from rankbench.metrics import kendall_tau

if TYPE_CHECKING:
    from matplotlib.artist import Artist

__all__ = ["compute_rank_agreement", "plot_rank_agreement", "report_references", "report_intervals",
           "compute_training_curves", "summarize_training_curves", "plot_training_curves"]

_ACC_COLUMNS = {"acc_no_calib": "no_calib", "acc_calib": "calib"}
_DROPPED = "#9A9A9A"


def _mask(keep, setting: str, n: int) -> np.ndarray:
    if keep is None:
        return np.ones(n, dtype=bool)
    if isinstance(keep, Mapping):
        m = keep.get(setting)
        return np.ones(n, dtype=bool) if m is None else np.asarray(m, dtype=bool)
    return np.asarray(keep, dtype=bool)


def compute_rank_agreement(scores: pd.DataFrame, by: str = "num_paths", *,
                           keep: Mapping[str, np.ndarray] | np.ndarray | None = None,
                           intervals: Mapping[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Long table: ``report`` (the report read, when ``scores`` name it), ``name``, ``by``
    (the space's group column), ``hash``, ``calibration``, ``score`` (%), ``truth`` (%),
    ``truth_std`` (%), ``kept`` (whether the candidate entered tau), ``kendall_tau`` (tau-b of
    score against truth over the kept candidates of that calibration setting), ``n``
    (candidates ranked), ``n_dropped`` and ``tau_ci_low`` / ``tau_ci_high`` (the report's 95%
    interval, ``intervals``: setting -> (low, high); NaN when not given).

    ``keep``: which rows enter tau (a mask, or setting -> mask, e.g. from
    :func:`~rankbench.figures._runs.keep_masks`); default the scores' ``kept`` column if they
    have one, else every row. Candidates without a truth or a score are left out (so ``n`` is
    the number really ranked)."""
    present = [c for c in _ACC_COLUMNS if c in scores.columns and scores[c].notna().any()]
    if not present or "truth" not in scores.columns:
        raise ValueError(f"scores need a truth column and acc_no_calib and/or acc_calib; got {list(scores.columns)}")
    name = "name" if "name" in scores.columns else "subnet"
    for col in (name, by):
        if col not in scores.columns:
            raise ValueError(f"scores need a {col!r} column; got {list(scores.columns)}")
    if keep is None and "kept" in scores.columns:
        from rankbench.figures._runs import _as_bool

        keep = _as_bool(scores["kept"])
    factor = percent_factor(scores["truth"])
    truth = scores["truth"].to_numpy(dtype=float) * factor
    std = (scores["truth_std"].to_numpy(dtype=float) * factor if "truth_std" in scores  # truth's units
           else np.full(len(scores), np.nan))
    frames = []
    for col in present:
        setting = _ACC_COLUMNS[col]
        kept = _mask(keep, setting, len(scores))
        if kept.shape != (len(scores),):
            raise ValueError(f"keep mask has {kept.size} values for {len(scores)} candidates")
        d = pd.DataFrame({
            "report": scores["report"].astype(str).to_numpy() if "report" in scores else "",
            "name": scores[name].astype(str).to_numpy(),
            by: scores[by].astype(int).to_numpy(),
            "hash": scores["hash"].astype(str).to_numpy() if "hash" in scores else "",
            "calibration": setting,
            "score": as_percent(scores[col]),
            "truth": truth,
            "truth_std": std,
            "kept": kept,
        })
        d = d[np.isfinite(d["score"]) & np.isfinite(d["truth"])].reset_index(drop=True)
        k = d[d["kept"]]
        tau = kendall_tau(k["score"], k["truth"]) if len(k) >= 3 else math.nan
        lo, hi = (intervals or {}).get(setting) or (math.nan, math.nan)
        frames.append(d.assign(kendall_tau=tau, n=len(k), n_dropped=int((~d["kept"]).sum()),
                               tau_ci_low=_num(lo), tau_ci_high=_num(hi)))
    return pd.concat(frames, ignore_index=True)


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def report_intervals(metrics: dict) -> dict[str, tuple[float, float]]:
    """setting -> the report's 95% interval of Kendall tau per subnet (metrics.json)."""
    out = {}
    for setting, m in (metrics.get("metrics") or {}).items():
        ci = ((m or {}).get("per_subnet") or {}).get("kendall_tau_ci")
        if ci and len(ci) == 2:
            out[setting] = (_num(ci[0]), _num(ci[1]))
    return out


def report_references(metrics: dict) -> pd.DataFrame:
    """The report's reference rankers: ``ranker``, ``description``, ``kendall_tau``,
    ``ci_low``, ``ci_high`` (per subnet, over the same candidates as the supernet)."""
    rows = []
    for name, r in (metrics.get("references") or {}).items():
        ps = (r or {}).get("per_subnet") or {}
        ci = ps.get("kendall_tau_ci") or (math.nan, math.nan)
        rows.append({"ranker": name, "description": (r or {}).get("description", ""),
                     "kendall_tau": _num(ps.get("kendall_tau")), "ci_low": _num(ci[0]), "ci_high": _num(ci[1])})
    return pd.DataFrame(rows, columns=["ranker", "description", "kendall_tau", "ci_low", "ci_high"])


def _tau_text(tau: float, lo: float, hi: float) -> str:
    s = f"{tau:.3f}" if math.isfinite(tau) else "n/a"
    if math.isfinite(lo) and math.isfinite(hi):
        s += f" [{lo:.2f}, {hi:.2f}]"
    return s


def plot_rank_agreement(df: pd.DataFrame, title: str | None = None, truth_label: str = "ground-truth accuracy (%)",
                        by: str = "num_paths", references: pd.DataFrame | None = None):
    """Scatter of one-shot accuracy against truth, one panel per calibration setting (shared
    axes), coloured by ``by``; candidates left out of tau as grey crosses; ``references``
    (:func:`report_references`) listed beside the panels."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    calibs = [c for c in CALIB_ORDER if c in set(df["calibration"])]
    ks = sorted(int(k) for k in df[by].unique())
    colors = level_colors(ks)
    kept = df["kept"].astype(bool) if "kept" in df else pd.Series(True, index=df.index)
    with figure_style():
        fig, axes = plt.subplots(1, len(calibs), figsize=(3.6 * len(calibs) + 1.6, 3.9), squeeze=False,
                                 sharex=True, sharey=True, constrained_layout=True)
        for ax, calib in zip(axes[0], calibs):
            sel = df["calibration"] == calib
            d, dk = df[sel], kept[sel]
            if d["truth_std"].notna().any():
                ax.errorbar(d["truth"], d["score"], xerr=d["truth_std"], fmt="none", ecolor="grey", elinewidth=0.5,
                            alpha=0.4, zorder=1)
            for k in ks:
                g = d[dk & (d[by] == k)]
                ax.scatter(g["truth"], g["score"], s=14, color=colors[int(k)], edgecolors="white", linewidths=0.3,
                           zorder=2)
            if (~dk).any():
                g = d[~dk]
                ax.scatter(g["truth"], g["score"], s=12, marker="x", color=_DROPPED, linewidths=0.8, zorder=2)
            row = d.iloc[0]
            tau = _tau_text(row["kendall_tau"], row.get("tau_ci_low", math.nan), row.get("tau_ci_high", math.nan))
            ax.set_title(f"{CALIB_LABELS[calib]}\nKendall " + r"$\tau$" + f" = {tau} (n = {int(row['n'])})")
            ax.set_xlabel(truth_label)
            ax.tick_params(labelleft=True)
        axes[0, 0].set_ylabel("one-shot accuracy (%)")
        handles = [Line2D([], [], ls="none", marker="o", ms=5, mfc=colors[k], mec="white", label=str(k)) for k in ks]
        n_drop = int(df["n_dropped"].max()) if "n_dropped" in df else int((~kept).sum())
        if n_drop:
            handles.append(Line2D([], [], ls="none", marker="x", ms=5, color=_DROPPED, mew=0.8,
                                  label=wrap_label(f"left out of tau by the report's rule ({n_drop})", 24)))
        if df["truth_std"].notna().any():
            handles.append(Line2D([], [], color="grey", lw=0.8, alpha=0.6,
                                  label=wrap_label("truth's spread: ± 1 sd over its training repeats", 24)))
        has_ci = df.get("tau_ci_low", pd.Series(dtype=float)).notna().any()
        fig.legend(handles=handles, title=column_label(by).replace(" ", "\n", 1), loc="outside right center",
                   frameon=False, alignment="left")
        notes = []
        if has_ci:
            notes.append("[ ]: the report's 95% interval of tau")
        if references is not None and len(references):
            refs = "; ".join(f"{r.ranker} {_tau_text(r.kendall_tau, r.ci_low, r.ci_high)}"
                             for r in references.itertuples())
            notes.append(f"reference rankers (no supernet), tau: {refs}")
        if notes:
            chars = max(40, int(fig.get_figwidth() * 72 / (0.55 * 7.5)))
            text = wrap_label(". ".join(notes), chars)
            fig.legend(handles=[Line2D([], [], ls="none", label=text)], loc="outside lower center", frameon=False,
                       handlelength=0, handletextpad=0, fontsize=7.5)
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


_CURVES = ("train_loss", "train_acc", "lr")


def summarize_training_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Per group and epoch: ``n_runs`` and the mean and sd (over the group's runs; NaN for one
    run) of loss, accuracy (%) and learning rate: the numbers :func:`plot_training_curves`
    draws."""
    rows = []
    for (group, variant, epoch), g in df.groupby(["group", "variant", "epoch"], sort=False):
        row = {"group": group, "variant": variant, "epoch": int(epoch), "n_runs": int(g["run"].nunique())}
        for c in _CURVES:
            v = g[c].to_numpy(float)
            row[f"{c}_mean"] = float(np.mean(v))
            row[f"{c}_sd"] = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["group", "epoch"], ignore_index=True)


def plot_training_curves(df: pd.DataFrame, title: str | None = None):
    """Training loss, training accuracy (%) and learning rate against epoch: per group of runs
    the mean over its runs, with a band of ± 1 sd when it has several (runs of one config, e.g.
    seeds, form a group; coloured by variant, in shades when groups of one variant differ in
    their config)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    colors = group_colors(df)
    summary = summarize_training_curves(df)
    with figure_style():
        fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.0), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1, 1, 0.7]})
        banded = False
        for group in colors:
            g = summary[summary["group"] == group].sort_values("epoch")
            if g.empty:
                continue
            color = colors[group]
            kw = dict(color=color, lw=1.4, marker="o" if len(g) <= 30 else None, ms=2.5)
            for ax, c in zip(axes, _CURVES):
                mean, sd = g[f"{c}_mean"].to_numpy(), g[f"{c}_sd"].to_numpy()
                ax.plot(g["epoch"], mean, **kw)
                if np.isfinite(sd).any():
                    banded = True
                    ax.fill_between(g["epoch"], mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
        e0, e1 = int(summary["epoch"].min()), int(summary["epoch"].max())
        for ax, lab in zip(axes, ("training loss (cross-entropy)", "training accuracy (%)", "learning rate")):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if e0 == e1:  # one epoch: one tick, not a fractional axis around it
                ax.set_xlim(e0 - 0.5, e1 + 0.5)
                ax.set_xticks([e0])
            ax.set_xlabel("epoch")
            ax.set_ylabel(lab)
        axes[0].set_title("loss")
        axes[1].set_title("accuracy (sampled subnets, augmented data)")
        axes[2].set_title("schedule")
        if len(colors) > 1 or df["run"].nunique() > 1:
            handles: list[Artist] = [Line2D([], [], color=c, lw=1.6, label=wrap_label(g)) for g, c in colors.items()]
            if banded:
                handles.append(Patch(color="grey", alpha=0.3, label=wrap_label("± 1 sd over a group's runs "
                                                                               "(line: their mean)")))
            fig.legend(handles=handles, loc="outside right center", title="runs", frameon=False)
        suptitle(fig, title)
    return fig


# -- registered figures ------------------------------------------------------------------------
def _has_truth(ctx) -> bool:
    if ctx.report is None:
        return False
    s = ctx.scores
    return "truth" in s and int(s["truth"].notna().sum()) >= 3


def _why_no_truth(ctx) -> str:
    if ctx.report is None:
        return "no report (score the run with `rankbench run`)"
    return f"report {ctx.report.name} has fewer than 3 candidates with a truth"


@register_figure("training_curves", "run", applies=lambda ctx: ctx.train_log is not None,
                 why_not=lambda ctx: f"no {ctx.rd.train_log.name}", order=10)
def draw_training_curves(ctx, out: Path) -> list[Path]:
    """The supernet's training loss, accuracy and learning-rate schedule by epoch."""
    df = compute_training_curves(ctx.train_log)
    fig = plot_training_curves(df, ctx.title("Supernet training"))
    return ctx.save(fig, out / "training_curves", summarize_training_curves(df))


@register_figure("rank_agreement", "run", applies=_has_truth, why_not=_why_no_truth, per_report=True, order=20)
def draw_rank_agreement(ctx, out: Path) -> list[Path]:
    """One-shot accuracy of every candidate against its ground truth, with Kendall tau and its
    95% interval, without and with BN calibration; the reference rankers' tau beside it."""
    m = ctx.report.metrics
    df = compute_rank_agreement(ctx.scores, by=ctx.by, keep=ctx.keep, intervals=report_intervals(m))
    fig = plot_rank_agreement(df, ctx.title("Rank agreement", report=True), truth_label=truth_label(ctx.report.config),
                              by=ctx.by, references=report_references(m))
    return ctx.save(fig, out / "rank_agreement", df)


@register_figure("compare_training_curves", "runs", applies=lambda ctx: bool(ctx.plan.train_groups),
                 why_not="fewer than 2 runs have a training log; nothing to compare", order=20,
                 stem="training_curves")
def draw_compare_training_curves(ctx, out: Path) -> list[Path]:
    """Training curves of every trained run: per group of runs (a variant's seeds) the mean and
    a band of ± 1 sd."""
    from rankbench.figures._context import common_description, runs_note

    frames = [ctx.by_path[d].train_log.assign(group=g.label) for g in ctx.plan.train_groups for d in g.runs]
    df = compute_training_curves(pd.concat(frames, ignore_index=True))
    runs = [ctx.by_path[d] for d in ctx.plan.trained]
    note = runs_note(runs)
    title = (f"Supernet training ({common_description([r.cfg for r in runs])}; {len(runs)} runs"
             + (f"; {note}" if note else "") + ")")
    return ctx.save(plot_training_curves(df, title), out / "training_curves", summarize_training_curves(df))
