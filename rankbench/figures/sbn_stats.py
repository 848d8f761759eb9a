"""Shadow BN statistics: does SBN_k see k times the mean and k^2 times the variance of SBN_1?

For each cell of an ``lsbn`` supernet, every channel's running mean, running variance and
learned gamma / beta of SBN_k (the BN for k active paths) is compared with SBN_1's. For an
``esbn`` supernet (one BN per subset of active nodes), the BN of each k-subset is compared
with the mean over the 1-subsets' BNs, and subsets are grouped by size k.

If the k summed path features were parallel and of equal length (MixPath's argument), the
aggregate would be k times a single path's, and so (node 5's 1x1 conv being linear) the running
mean would scale by k and the running variance by k^2; the paper reports SBN_2 ≈ 2x and 4x
SBN_1, and gamma / beta of the SBNs close to each other (slope 1). Slopes are fitted by least
squares through the origin, per cell, k and statistic.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rankbench.figures.style import figure_style, path_colors, suptitle

__all__ = ["STATS", "STAT_LABELS", "expected_slope", "fit_slope", "compute_sbn_stats", "fit_slopes",
           "plot_sbn_stats"]

#: per-channel statistics compared, in figure row order
STATS = ("running_mean", "running_var", "gamma", "beta")
STAT_LABELS = {"running_mean": "running mean", "running_var": "running variance",
               "gamma": r"$\gamma$ (BN weight)", "beta": r"$\beta$ (BN bias)"}


def expected_slope(stat: str, k: int) -> float:
    """Slope of SBN_k against SBN_1 for k parallel, equal paths: k, k^2, 1, 1."""
    return {"running_mean": float(k), "running_var": float(k * k)}.get(stat, 1.0)


def fit_slope(x, y) -> float:
    """Least-squares slope of y = s * x through the origin: sum(x y) / sum(x^2)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    sxx = float(np.dot(x, x))
    return float(np.dot(x, y) / sxx) if sxx > 0 else math.nan


def _values(bn) -> dict[str, np.ndarray]:
    return {
        "running_mean": bn.running_mean.detach().double().cpu().numpy(),
        "running_var": bn.running_var.detach().double().cpu().numpy(),
        "gamma": bn.weight.detach().double().cpu().numpy(),
        "beta": bn.bias.detach().double().cpu().numpy(),
    }


def _shadow_bns(norm) -> list[tuple[str, int, object]]:
    """(name, k, BatchNorm) of a shadow-BN module: lsbn's SBN_k or esbn's node subsets."""
    sbn = getattr(norm, "sbn", None)
    if sbn is None:
        raise ValueError(f"{type(norm).__name__} has no shadow BNs; SBN statistics need an lsbn or esbn supernet")
    if hasattr(sbn, "items"):  # esbn: keys "n13" = nodes 1 and 3 active
        return [(key, len(key) - 1, bn) for key, bn in sbn.items()]
    return [(f"SBN_{i + 1}", i + 1, bn) for i, bn in enumerate(sbn)]


def compute_sbn_stats(net, cells=None) -> pd.DataFrame:
    """One row per (cell, shadow BN, channel, statistic).

    Columns: ``cell``, ``variant``, ``bn`` (``SBN_k`` for lsbn, the node subset, e.g. ``n13``,
    for esbn), ``k`` (active paths), ``channel``, ``stat`` (one of :data:`STATS`), ``value``
    and ``ref``: SBN_1's value (lsbn) or the mean over the 1-subset BNs (esbn) for the same
    cell, channel and statistic. ``cells``: indices (default: every cell).
    """
    cells = range(net.num_cells) if cells is None else [int(c) for c in cells]
    frames = []
    for c in cells:
        if not 0 <= c < net.num_cells:
            raise ValueError(f"cell {c} out of range; this supernet has cells 0..{net.num_cells - 1}")
        norm = getattr(net.cells[c], "norm", None)
        if norm is None:
            raise ValueError(f"the {net.variant!r} supernet has no aggregation norm; SBN statistics "
                             f"need an lsbn or esbn supernet")
        bns = _shadow_bns(norm)
        vals = {name: _values(bn) for name, _, bn in bns}
        ones = [name for name, k, _ in bns if k == 1]
        ref = {s: np.mean([vals[n][s] for n in ones], axis=0) for s in STATS}
        for name, k, _ in bns:
            for s in STATS:
                v = vals[name][s]
                frames.append(pd.DataFrame({
                    "cell": c, "variant": net.variant, "bn": name, "k": k,
                    "channel": np.arange(v.size), "stat": s, "value": v, "ref": ref[s],
                }))
    return pd.concat(frames, ignore_index=True)


def fit_slopes(stats: pd.DataFrame) -> pd.DataFrame:
    """Slope of ``value`` against ``ref`` through the origin, per cell, k and statistic.

    Columns: ``cell``, ``k``, ``stat``, ``slope``, ``expected`` (:func:`expected_slope`),
    ``rel_rmse`` (root-mean-square residual of the fit over the root-mean-square of
    ``value``: 0 = every channel on the line), ``n`` (points: channels x BNs of that size).
    lsbn's trivial k = 1 (SBN_1 against itself) is left out.
    """
    rows = []
    for (cell, k, stat), g in stats.groupby(["cell", "k", "stat"], sort=True):
        if k == 1 and g["bn"].nunique() == 1:
            continue
        x, y = g["ref"].to_numpy(), g["value"].to_numpy()
        s = fit_slope(x, y)
        ss_y = float((y ** 2).sum())
        ss_res = float(((y - s * x) ** 2).sum())
        rows.append({"cell": int(cell), "k": int(k), "stat": stat, "slope": s,
                     "expected": expected_slope(stat, int(k)),
                     "rel_rmse": math.sqrt(ss_res / ss_y) if ss_y > 0 else math.nan, "n": len(g)})
    out = pd.DataFrame(rows, columns=["cell", "k", "stat", "slope", "expected", "rel_rmse", "n"])
    order = {s: i for i, s in enumerate(STATS)}
    return out.sort_values(["cell", "stat", "k"], key=lambda c: c.map(order) if c.name == "stat" else c,
                           ignore_index=True)


def plot_sbn_stats(stats: pd.DataFrame, cell: int | None = None, title: str | None = None):
    """Scatter of each statistic of the k-path BN(s) against the single-path reference, one
    row per statistic and one column per k, with the reference line (y = k x, k^2 x, x) and
    the fitted slope. ``cell``: which cell (default: the first in ``stats``)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cell = int(stats["cell"].min()) if cell is None else int(cell)
    d = stats[stats["cell"] == cell]
    if d.empty:
        raise ValueError(f"no statistics for cell {cell}; cells: {sorted(stats['cell'].unique())}")
    slopes = fit_slopes(d)
    ks = sorted(slopes["k"].unique())
    if not ks:
        raise ValueError("nothing to compare: the supernet has a single shadow BN (m = 1)")
    colors = path_colors(int(d["k"].max()))
    stats_present = [s for s in STATS if s in set(d["stat"])]
    with figure_style():
        fig, axes = plt.subplots(len(stats_present), len(ks), figsize=(2.5 * len(ks) + 0.6, 2.3 * len(stats_present)),
                                 squeeze=False, constrained_layout=True)
        for r, stat in enumerate(stats_present):
            for c, k in enumerate(ks):
                ax = axes[r, c]
                g = d[(d["stat"] == stat) & (d["k"] == k)]
                ax.scatter(g["ref"], g["value"], s=9, alpha=0.6, color=colors[int(k)], edgecolors="none")
                x = g["ref"].to_numpy()
                lo, hi = float(x.min()), float(x.max())
                if stat in ("running_mean", "running_var"):  # scale factors: show the origin
                    lo, hi = min(lo, 0.0), max(hi, 0.0)
                pad = 0.05 * (hi - lo or 1.0)
                xs = np.array([lo - pad, hi + pad])
                exp = expected_slope(stat, int(k))
                row = slopes[(slopes["stat"] == stat) & (slopes["k"] == k)].iloc[0]
                ax.plot(xs, exp * xs, color="black", lw=1.0, label="expected")
                ax.plot(xs, row["slope"] * xs, color="#D55E00", lw=1.2, ls="--", label="fit")
                if lo <= 0 <= hi:
                    ax.axhline(0, color="grey", lw=0.5)
                    ax.axvline(0, color="grey", lw=0.5)
                ax.text(0.03, 0.97, f"fit {row['slope']:.2f}\nexp. {_fmt_exp(stat, int(k))}", transform=ax.transAxes,
                        va="top", ha="left", fontsize=8,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
                if r == 0:
                    ax.set_title(f"k = {k} active path{'s' if k > 1 else ''}")
                if c == 0:
                    ax.set_ylabel(f"{STAT_LABELS[stat]}\nof the k-path BN")
                if r == len(stats_present) - 1:
                    ax.set_xlabel("single-path reference")
        handles = [Line2D([], [], color="black", lw=1.0, label="expected (parallel paths)"),
                   Line2D([], [], color="#D55E00", lw=1.2, ls="--", label="least-squares fit through 0")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        suptitle(fig, title)
    return fig


def _fmt_exp(stat: str, k: int) -> str:
    if stat == "running_mean":
        return f"k = {k}"
    if stat == "running_var":
        return f"k² = {k * k}"
    return "1"
