"""Shadow BN statistics: does SBN_k see k times the mean and k^2 times the variance of SBN_1,
and do the shadow BNs learn the same gamma and beta?

A shadow-BN site is a module holding one BatchNorm per count k of summed inputs: S4's
aggregation norm (``lsbn``: SBN_k for k active paths; ``esbn``: one BN per subset of active
nodes, grouped by its size k), or an nb101 (vertex, op) whose BN is chosen by the vertex's
fan-in. Sites are found by the method ``shadow_bns()`` a norm exposes (``[(name, k, bn)]``), or
an ``sbn`` ModuleList (index k - 1) / ModuleDict (input-subset keys, ``"n13"``: inputs 1 and 3). At each
site every channel's running mean, running variance, gamma and beta of the k-input BN is
compared with the site's single-input reference (SBN_1; for esbn the mean of the 1-node BNs).

If the k summed features were parallel and of equal length (MixPath's argument), the sum would
be k times one input, so (the conv after the sum being linear) the running mean would scale by
k and the variance by k^2: a least-squares slope through the origin, and the Pearson
correlation over channels, test that. gamma and beta are *not* judged by such a slope: for
values near 1 it is ~1 whatever the gammas are. They are compared by their correlation over
channels and the mean absolute difference relative to the reference's spread,
mean|g_k - g_1| / std(g_1): 0 for identical parameters, ~1.1 for independent draws of one
distribution. Each comparison carries a verdict and a plain statement of what holds; the
thresholds are :data:`R_MIN`, :data:`SLOPE_TOL`, :data:`CLOSE_DIFF` and :data:`RELATED_R`.
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from rankbench._io import atomic_path
from rankbench.figures.registry import register_figure
from rankbench.figures.style import figure_style, level_colors, suptitle

__all__ = ["STATS", "SCALING_STATS", "STAT_LABELS", "R_MIN", "SLOPE_TOL", "CLOSE_DIFF", "RELATED_R",
           "expected_slope", "fit_slope", "pearson", "rel_mean_abs_diff", "shadow_bn_sites", "has_shadow_bns",
           "shadow_bn_variants",
           "compute_sbn_stats", "sbn_comparison", "sbn_summary", "plot_sbn_stats", "sbn_names", "INIT_VALUES"]

#: per-channel statistics compared, in figure row order
STATS = ("running_mean", "running_var", "gamma", "beta")
#: statistics expected to scale with k (by k and k^2); gamma and beta are expected equal
SCALING_STATS = ("running_mean", "running_var")
STAT_LABELS = {"running_mean": "running mean", "running_var": "running variance",
               "gamma": r"$\gamma$ (BN weight)", "beta": r"$\beta$ (BN bias)"}
_PLAIN = {"running_mean": "running mean", "running_var": "running variance", "gamma": "gamma", "beta": "beta"}

#: correlation over channels above which values are called proportional (scaling) / close
R_MIN = 0.9
#: a fitted slope within this fraction of the expected one (k, k^2) "holds"
SLOPE_TOL = 0.25
#: gamma / beta are "close" when r >= R_MIN and mean|difference| <= this many reference sds
CLOSE_DIFF = 0.25
#: gamma / beta below R_MIN but at least this correlated are "related, not close"
RELATED_R = 0.5


def expected_slope(stat: str, k: int) -> float:
    """Slope of SBN_k against SBN_1 for k parallel, equal inputs: k, k^2, 1, 1."""
    return {"running_mean": float(k), "running_var": float(k * k)}.get(stat, 1.0)


def fit_slope(x, y) -> float:
    """Least-squares slope of y = s * x through the origin: sum(x y) / sum(x^2)."""
    x, y = _pair(x, y)
    sxx = float(np.dot(x, x))
    return float(np.dot(x, y) / sxx) if sxx > 0 else math.nan


def pearson(x, y) -> float:
    """Pearson correlation of ``x`` and ``y``; NaN when either is constant (or fewer than 2)."""
    x, y = _pair(x, y)
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = float(np.sqrt(np.dot(dx, dx))), float(np.sqrt(np.dot(dy, dy)))
    if sx <= 1e-12 * max(1.0, float(np.abs(x).max())) or sy <= 1e-12 * max(1.0, float(np.abs(y).max())):
        return math.nan
    return float(np.clip(np.dot(dx, dy) / (sx * sy), -1.0, 1.0))


def rel_mean_abs_diff(ref, y) -> float:
    """mean|y - ref| / std(ref): the typical difference in units of the reference's spread over
    channels (0: identical; about 2/sqrt(pi) = 1.13 for independent draws of one normal
    distribution). NaN when the reference is constant."""
    ref, y = _pair(ref, y)
    sd = float(ref.std())
    return float(np.abs(y - ref).mean() / sd) if sd > 0 else math.nan


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    return x, y


# -- finding shadow BNs ------------------------------------------------------------------------
_CELL = re.compile(r"(?:^|\.)cells\.(\d+)(?:\.|$)")
_SUBSET_KEY = re.compile(r"n(\d+(?:_\d+)*)")  # "n13": inputs 1 and 3; "n1_13": inputs 1 and 13


def _entries(module) -> list[tuple[str, int, object]] | None:
    """(name, k, BatchNorm) of a shadow-BN site, None if ``module`` is none."""
    from torch import nn

    if callable(getattr(module, "shadow_bns", None)):
        return [(str(n), int(k), bn) for n, k, bn in module.shadow_bns()]
    sbn = getattr(module, "sbn", None)
    if isinstance(sbn, nn.ModuleList):
        return [(f"SBN_{i + 1}", i + 1, bn) for i, bn in enumerate(sbn)]
    if isinstance(sbn, nn.ModuleDict) and all(_SUBSET_KEY.fullmatch(k) for k in sbn.keys()):
        return [(key, _subset_size(key), bn) for key, bn in sbn.items()]
    return None


def _subset_size(key: str) -> int:
    ids = key[1:]
    return len(ids.split("_")) if "_" in ids else len(ids)


def shadow_bn_sites(net) -> list[tuple[str, int, list[tuple[str, int, object]]]]:
    """Every shadow-BN site of ``net``: (module name, cell index or -1, [(bn name, k, bn)])."""
    sites: list[tuple[str, int, list[tuple[str, int, object]]]] = []
    found: list[str] = []
    for name, module in net.named_modules():
        if any(name.startswith(f + ".") for f in found):
            continue
        entries = _entries(module)
        if entries:
            found.append(name)
            m = _CELL.search(name)
            sites.append((name, int(m.group(1)) if m else -1, entries))
    return sites


def has_shadow_bns(net) -> bool:
    return bool(shadow_bn_sites(net))


def shadow_bn_variants(space: str | None = None) -> list[str]:
    """The registered variants (on ``space``) whose normalisation keeps shadow BNs, in the
    registry's order: read from the registry and the norms, never a re-typed list."""
    from rankbench.supernet import NORMS, list_variants, variant_info

    out = []
    for v in list_variants(space):
        norm = variant_info(v).norm
        if norm is not None and _entries(NORMS.get(norm)(2, inputs=(1, 2))):
            out.append(v)
    return out


def _values(bn) -> dict[str, np.ndarray]:
    return {
        "running_mean": bn.running_mean.detach().double().cpu().numpy(),
        "running_var": bn.running_var.detach().double().cpu().numpy(),
        "gamma": bn.weight.detach().double().cpu().numpy(),
        "beta": bn.bias.detach().double().cpu().numpy(),
    }


#: gamma and beta of a freshly built BatchNorm: a shadow BN still holding them was never trained
INIT_VALUES = {"gamma": 1.0, "beta": 0.0}


def _at_init(stat: str, v: np.ndarray) -> bool:
    """Whether ``v`` (a BN's gamma or beta over channels) still holds its initial value in
    every channel: the BN's affine parameters were never updated (running statistics: False)."""
    init = INIT_VALUES.get(stat)
    return init is not None and v.size > 0 and bool(np.all(v == init))


def _trained(bn) -> bool:
    n = getattr(bn, "num_batches_tracked", None)
    return n is None or int(n) > 0


def compute_sbn_stats(net, cells=None, *, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per (site, shadow BN, channel, statistic).

    Columns: ``cell``, ``site`` (module name), ``variant``, ``bn`` (``SBN_k``; for S4 esbn the
    node subset, e.g. ``n13``), ``k`` (inputs summed: active paths or fan-in), ``channel``,
    ``stat`` (one of :data:`STATS`), ``value`` and ``ref``: the site's single-input reference
    (SBN_1, or the mean over its k = 1 BNs) for the same channel and statistic, ``at_init``:
    the BN's gamma (beta) is still 1 (0) in every channel, its affine parameters never trained.
    ``cells``: indices (default: every cell). BNs that never saw a batch
    (``num_batches_tracked == 0``: a fan-in the training never drew there) and sites without
    a trained k = 1 BN are left out, each with a line to ``log``.
    """
    sites = shadow_bn_sites(net)
    variant = getattr(net, "variant", "?")
    if not sites:
        raise ValueError(f"the {variant!r} supernet has no shadow BNs (no norm with shadow_bns() or sbn); "
                         f"SBN statistics need a shadow-BN variant such as lsbn or esbn")
    num_cells = getattr(net, "num_cells", None)
    if cells is not None:
        cells = [int(c) for c in cells]
        for c in cells:
            if num_cells is not None and not 0 <= c < num_cells:
                raise ValueError(f"cell {c} out of range; this supernet has cells 0..{num_cells - 1}")
    frames, untrained, unreferenced, total = [], [], [], 0
    for site, cell, entries in sites:
        if cells is not None and cell not in cells:
            continue
        total += len(entries)
        untrained += [f"{site}.{n}" for n, _, bn in entries if not _trained(bn)]
        entries = [(n, k, bn) for n, k, bn in entries if _trained(bn)]
        vals = {n: _values(bn) for n, _, bn in entries}
        ones = [n for n, k, _ in entries if k == 1]
        if not ones:
            unreferenced.append(site)
            continue
        ref = {s: np.mean([vals[n][s] for n in ones], axis=0) for s in STATS}
        for n, k, _ in entries:
            for s in STATS:
                v = vals[n][s]
                frames.append(pd.DataFrame({
                    "cell": cell, "site": site, "variant": variant, "bn": n, "k": k,
                    "channel": np.arange(v.size), "stat": s, "value": v, "ref": ref[s],
                    "at_init": _at_init(s, v),
                }))
    if log and untrained:
        log(f"{len(untrained)} of {total} shadow BNs never saw a batch (a k the training never drew there) and "
            f"are left out: {_some(untrained)}")
    if log and unreferenced:
        log(f"{len(unreferenced)} site(s) without a trained single-input BN to compare with are left out: "
            f"{_some(unreferenced)}")
    if not frames:
        return pd.DataFrame(columns=["cell", "site", "variant", "bn", "k", "channel", "stat", "value", "ref",
                                     "at_init"])
    return pd.concat(frames, ignore_index=True)


def _some(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


# -- comparing with the reference --------------------------------------------------------------
def _verdict(stat: str, k: int, slope: float, r: float, rel: float, ref_name: str,
             untrained: str = "") -> tuple[str, str]:
    name = _PLAIN[stat]
    if stat in SCALING_STATS:
        exp = expected_slope(stat, k)
        want = f"{'k' if stat == 'running_mean' else 'k²'} = {exp:g}"
        if not math.isfinite(r):
            return "undetermined", f"{name}: constant over channels, cannot judge"
        if r >= R_MIN and abs(slope / exp - 1.0) <= SLOPE_TOL:
            return "holds", f"{name} ≈ {slope:.2f} x {ref_name}'s ({want} expected; r = {r:.2f}): holds"
        if r >= R_MIN:
            return ("off-scale", f"{name} proportional to {ref_name}'s (r = {r:.2f}) but {slope:.2f} x, "
                                 f"not {want}: does not hold")
        return "not proportional", f"{name} not proportional to {ref_name}'s (r = {r:.2f}): does not hold"
    diff = f"r = {r:.2f}, mean |diff| = {rel:.2f} sd"
    if untrained:
        return "untrained", f"{name} {untrained}: never trained, nothing to compare"
    if not (math.isfinite(r) and math.isfinite(rel)):
        return "undetermined", f"{name}: constant over channels, cannot judge (r = {r:.2f}, diff = {rel:.2f} sd)"
    if r >= R_MIN and rel <= CLOSE_DIFF:
        return "close", f"{name} close to {ref_name}'s ({diff}): holds"
    if r >= RELATED_R:
        return "related", f"{name} related to {ref_name}'s but not close ({diff}): does not hold"
    return "unrelated", f"{name} unrelated to {ref_name}'s ({diff}): does not hold"


def sbn_comparison(stats: pd.DataFrame, *, per_site: bool = False, ref_name: str = "SBN_1") -> pd.DataFrame:
    """Each k-input BN against the single-input reference, per cell (pooling the cell's sites;
    ``per_site``: per site), k and statistic.

    Columns: ``cell`` (``site``), ``k``, ``stat``, ``slope`` (least squares through 0) and
    ``expected`` (k, k^2) and ``rel_rmse`` (RMS residual of that fit over the RMS of the
    values; 0 = every channel on the line) for the running statistics, ``pearson_r`` (over
    channels) for all, ``rel_mean_abs_diff`` (:func:`rel_mean_abs_diff`) for gamma and beta,
    ``n`` (channels x BNs), ``verdict`` ("holds", "off-scale", "not proportional" for the
    running statistics; "close", "related", "unrelated" for gamma and beta; "untrained" when
    the k-input BNs' or the reference's gamma (beta) never left its initial 1 (0), which says
    nothing about how related trained parameters are; "undetermined") and ``statement``
    (what holds, in words). k-input BNs whose gamma (beta) is still at its initial value are
    left out of a comparison that has trained ones. The trivial comparison of SBN_1 with itself is
    left out; esbn's k = 1 BNs are compared with their mean.
    """
    keys = ["cell", "site", "k", "stat"] if per_site else ["cell", "k", "stat"]
    cols = keys + ["slope", "expected", "rel_rmse", "pearson_r", "rel_mean_abs_diff", "n", "verdict", "statement"]
    rows = []
    for key, g in stats.groupby(keys, sort=True):
        vals = dict(zip(keys, key))
        k, stat = int(vals["k"]), vals["stat"]
        if k == 1 and len(g[["site", "bn"]].drop_duplicates()) == g["site"].nunique():
            continue  # one k = 1 BN per site: it is its own reference
        untrained = ""
        if stat in INIT_VALUES:
            init = INIT_VALUES[stat]
            at_init = (g["at_init"].astype(bool) if "at_init" in g
                       else g.groupby(["site", "bn"])["value"].transform(lambda v, init=init: bool(np.all(v == init))))
            bns = g[["site", "bn"]].drop_duplicates()
            fresh = g.loc[at_init, ["site", "bn"]].drop_duplicates()
            if len(fresh) == len(bns):
                untrained = f"of the {k}-input BN{'s' if len(bns) > 1 else ''} stayed at its initial {init:g}"
            elif np.all(g["ref"].to_numpy() == init):
                untrained = f"of the reference ({ref_name}) stayed at its initial {init:g}"
            elif len(fresh):
                g = g[~at_init.to_numpy()]
        x, y = g["ref"].to_numpy(), g["value"].to_numpy()
        r = pearson(x, y)
        slope = exp = rel_rmse = rel = math.nan
        if stat in SCALING_STATS:
            slope, exp = fit_slope(x, y), expected_slope(stat, k)
            ss_y = float((y ** 2).sum())
            rel_rmse = math.sqrt(float(((y - slope * x) ** 2).sum()) / ss_y) if ss_y > 0 else math.nan
        else:
            rel = rel_mean_abs_diff(x, y)
        verdict, statement = _verdict(stat, k, slope, r, rel, ref_name, untrained)
        statement = f"{f'SBN_{k}' if ref_name == 'SBN_1' else f'the {k}-input BNs'}: {statement}"
        rows.append({**vals, "k": k, "slope": slope, "expected": exp, "rel_rmse": rel_rmse, "pearson_r": r,
                     "rel_mean_abs_diff": rel, "n": len(g), "verdict": verdict, "statement": statement})
    out = pd.DataFrame(rows, columns=cols)
    order = {s: i for i, s in enumerate(STATS)}
    sort = [c for c in ("cell", "site") if c in keys] + ["stat", "k"]
    return out.sort_values(sort, key=lambda c: c.map(order) if c.name == "stat" else c, ignore_index=True)


def sbn_summary(comparison: pd.DataFrame) -> list[str]:
    """One plain line per statistic and k over the rows given (cells, sites): the verdict most
    rows reach, how many reach it, and the median slope / correlation / difference."""
    lines = []
    order = {s: i for i, s in enumerate(STATS)}
    for (stat, k), g in sorted(comparison.groupby(["stat", "k"]), key=lambda t: (order[t[0][0]], t[0][1])):
        counts = g["verdict"].value_counts()
        top, n_top, n = counts.index[0], int(counts.iloc[0]), len(g)
        med = g.median(numeric_only=True)
        if stat in SCALING_STATS:
            detail = (f"median slope {med['slope']:.2f} vs {expected_slope(stat, int(k)):g}, "
                      f"median r {med['pearson_r']:.2f}")
        else:
            detail = f"median r {med['pearson_r']:.2f}, median mean|diff| {med['rel_mean_abs_diff']:.2f} sd"
        where = f" in {n_top} of {n}" if n > 1 else ""
        lines.append(f"k={int(k)} {_PLAIN[stat]}: {top}{where} ({detail})")
    for stat in SCALING_STATS:
        med = comparison[comparison["stat"] == stat].groupby("k")["slope"].median()
        med = med[med.index > 1]
        if len(med) >= 2:
            grows = bool(np.all(np.diff(med.to_numpy()) > 0))
            path = " -> ".join(f"{v:.2f}" for v in med.to_numpy())
            lines.append(f"{_PLAIN[stat]}: median slope for k = {int(med.index[0])}..{int(med.index[-1])}: {path}; "
                         f"{'grows' if grows else 'does not grow steadily'} with k")
    return lines


_CRITERIA = (f"holds: r ≥ {R_MIN:g} and slope within {SLOPE_TOL:.0%} of k (mean) or k² (variance); "
             f"γ/β close: r ≥ {R_MIN:g} and mean|diff| ≤ {CLOSE_DIFF:g} sd of the reference; "
             f"related: r ≥ {RELATED_R:g}; untrained: γ stayed 1 / β stayed 0 (never updated)")


def plot_sbn_stats(stats: pd.DataFrame, cell: int | None = None, title: str | None = None,
                   k_name: str = "active paths", ref_name: str = "SBN_1"):
    """Scatter of each statistic of the k-input BN(s) against the single-input reference, one
    row per statistic and one column per k, with the expected line (y = k x, k^2 x; y = x for
    gamma / beta), the fitted slope of the running statistics, and in each panel the
    correlation, difference and verdict of :func:`sbn_comparison`. ``cell``: which cell
    (default: the first in ``stats``); the cell's sites are pooled. ``k_name``: what k counts."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cell = int(stats["cell"].min()) if cell is None else int(cell)
    d = stats[stats["cell"] == cell]
    if d.empty:
        raise ValueError(f"no statistics for cell {cell}; cells: {sorted(stats['cell'].unique())}")
    cmp = sbn_comparison(d, ref_name=ref_name)
    ks = sorted(int(k) for k in cmp["k"].unique())
    if not ks:
        raise ValueError("nothing to compare: each site has a single shadow BN")
    colors = level_colors(d["k"].unique())
    stats_present = [s for s in STATS if s in set(d["stat"])]
    with figure_style():
        fig, axes = plt.subplots(len(stats_present), len(ks),
                                 figsize=(2.6 * len(ks) + 0.6, 2.3 * len(stats_present) + 0.5),
                                 squeeze=False, constrained_layout=True)
        for r, stat in enumerate(stats_present):
            for c, k in enumerate(ks):
                ax = axes[r, c]
                g = d[(d["stat"] == stat) & (d["k"] == k)]
                ax.scatter(g["ref"], g["value"], s=9, alpha=0.6, color=colors[int(k)], edgecolors="none")
                x = g["ref"].to_numpy()
                lo, hi = float(x.min()), float(x.max())
                if stat in SCALING_STATS:  # scale factors: show the origin
                    lo, hi = min(lo, 0.0), max(hi, 0.0)
                pad = 0.05 * (hi - lo or 1.0)
                xs = np.array([lo - pad, hi + pad])
                row = cmp[(cmp["stat"] == stat) & (cmp["k"] == k)].iloc[0]
                ax.plot(xs, expected_slope(stat, int(k)) * xs, color="black", lw=1.0)
                if stat in SCALING_STATS:
                    ax.plot(xs, row["slope"] * xs, color="#D55E00", lw=1.2, ls="--")
                    text = f"fit {row['slope']:.2f}x (exp. {_fmt_exp(stat, int(k))})\nr = {row['pearson_r']:.2f}"
                elif row["verdict"] == "untrained":
                    text = f"still at its initial {INIT_VALUES[stat]:g}"
                else:
                    text = f"r = {row['pearson_r']:.2f}\n|diff| = {row['rel_mean_abs_diff']:.2f} sd"
                if lo <= 0 <= hi:
                    ax.axhline(0, color="grey", lw=0.5)
                    ax.axvline(0, color="grey", lw=0.5)
                ax.text(0.03, 0.97, f"{text}\n{row['verdict']}", transform=ax.transAxes, va="top", ha="left",
                        fontsize=7.5, bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
                if r == 0:
                    ax.set_title(f"k = {k} {k_name}")
                if c == 0:
                    ax.set_ylabel(f"{STAT_LABELS[stat]}\nof the k-input BN")
                if r == len(stats_present) - 1:
                    ax.set_xlabel(f"reference ({ref_name})")
        handles = [Line2D([], [], color="black", lw=1.0, label="expected: k x, k² x (parallel inputs); y = x (γ, β)"),
                   Line2D([], [], color="#D55E00", lw=1.2, ls="--", label="least-squares fit through 0")]
        chars = max(40, int(fig.get_figwidth() * 72 / (0.5 * 7)))  # 7 pt text across the figure
        leg = fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False,
                         title=textwrap.fill(_CRITERIA, chars))
        leg.get_title().set_fontsize(7)
        suptitle(fig, title)
    return fig


def _fmt_exp(stat: str, k: int) -> str:
    if stat == "running_mean":
        return f"k = {k}"
    if stat == "running_var":
        return f"k² = {k * k}"
    return "1"


# -- registered figure -------------------------------------------------------------------------
def sbn_names(cfg, stats: pd.DataFrame) -> tuple[str, str]:
    """(what k counts, the reference's name) for a run's SBN figure."""
    from rankbench.figures._runs import group_column

    k_name = "active paths" if group_column(cfg) == "num_paths" else "inputs summed (fan-in)"
    ones = stats[stats["k"] == 1].groupby("site")["bn"].nunique()
    ref_name = "SBN_1" if ones.empty or ones.max() == 1 else "mean of the 1-input BNs"
    return k_name, ref_name


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


def _applies(ctx) -> bool:
    return ctx.has_supernet and has_shadow_bns(ctx.net)


def _why_not(ctx) -> str:
    if not ctx.has_supernet:
        return f"no trained supernet ({ctx.rd.supernet.name})"
    return f"the {ctx.cfg.model.variant!r} supernet has no shadow BNs"


@register_figure("sbn_stats", "run", applies=_applies, why_not=_why_not, needs_supernet=True, order=50,
                 stem="sbn_stats_cell")
def draw_sbn_stats(ctx, out: Path) -> list[Path]:
    """Shadow-BN statistics of a cell: running mean, variance, gamma and beta of each k-input BN
    against the single-input one (expected k x, k^2 x, equal), with a verdict per panel; the
    comparison of every cell as CSV."""
    c, name = ctx.cell, ctx.name
    stats = compute_sbn_stats(ctx.net, log=lambda m: ctx.log(f"{name}: {m}"))
    if stats.empty:
        ctx.log(f"{name}: no trained shadow BN with a single-input reference; skipping the SBN statistics")
        return []
    k_name, ref_name = sbn_names(ctx.cfg, stats)
    table = sbn_comparison(stats, ref_name=ref_name)
    if table.empty:
        ctx.log(f"{name}: every site has a single shadow BN (nothing to compare); skipping the SBN statistics")
        return []
    written: list[Path] = []
    if (stats["cell"] == c).any() and (table["cell"] == c).any():
        fig = plot_sbn_stats(stats, cell=c, k_name=k_name, ref_name=ref_name,
                             title=ctx.title(f"Shadow BN of cell {c}, k {k_name} vs {ref_name}"))
        written += ctx.save(fig, out / f"sbn_stats_cell{c}", stats[stats["cell"] == c])
    else:
        ctx.log(f"{name}: cell {c} has no shadow BN to compare; skipping its SBN figure")
    written.append(_write_csv(table, out / "sbn_comparison.csv"))
    if stats.groupby("cell")["site"].nunique().max() > 1:  # nb101: one site per (vertex, op)
        written.append(_write_csv(sbn_comparison(stats, per_site=True, ref_name=ref_name),
                                  out / "sbn_comparison_by_site.csv"))
    return written
