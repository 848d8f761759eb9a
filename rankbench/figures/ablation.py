"""The ablation at a glance, from an ablation folder's tables (:func:`rankbench.ablation.ablation`).

- :func:`plot_ablation_tau`: a forest plot of Kendall tau per variant, without (hollow) and
  with (filled) BN calibration, per subnet and per hash class. One seed: the point and its 95%
  bootstrap interval; several: the mean over seeds, a thick bar of ± 1 sd (the table's
  spread) and a thin one of the 95% t-interval of the mean over seeds. The reference rankers
  (parameter count, FLOPs, NB101's shorter budgets), which need no supernet, are horizontal
  lines with their interval as a band: a variant below them ranks worse than counting
  parameters.
- :func:`plot_paired_differences`: every paired difference of ``paired.csv`` (variant A - B at
  one calibration setting, and calibration - none per variant) with its 95% interval over
  training seeds, candidates and the truth's repeats; filled where the interval excludes 0.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rankbench.figures.registry import register_figure
from rankbench.figures.style import (CALIB_LABELS, figure_style, order_variants, suptitle, variant_color,
                                     variant_label, wrap_label)

if TYPE_CHECKING:
    from matplotlib.artist import Artist

__all__ = ["LEVELS", "compute_ablation_tau", "plot_ablation_tau", "compute_paired_differences",
           "plot_paired_differences"]

#: the levels tau is reported at: column suffix -> label
LEVELS = {"subnet": "per subnet", "class": "per hash class"}
_REF = "reference: "
_REF_COLOR = "#555555"
_OFFSET = 0.17  # where the two calibration settings of a variant sit around its tick


def _bool(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0", "yes")


def _f(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _t975(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else math.nan


def compute_ablation_tau(table: pd.DataFrame) -> pd.DataFrame:
    """Long table from ``ablation.csv``: ``kind`` ("variant" / "reference"), ``variant`` (the
    ranker's name for references), ``calibration`` ("no_calib" / "calib"; "" for references),
    ``level`` ("subnet" / "class"), ``n_seeds``, ``tau`` (the mean over seeds), ``sd`` (over
    seeds; NaN for one), ``ci_low`` / ``ci_high`` (one seed: the report's 95% bootstrap
    interval; several: the 95% t-interval of the mean over seeds, within tau's range [-1, 1])
    and ``interval`` (which)."""
    need = {"variant", "calibration", "n_seeds"}
    if not need <= set(table.columns):
        raise ValueError(f"ablation.csv lacks {sorted(need - set(table.columns))}; columns: {list(table.columns)}")
    rows = []
    for r in table.to_dict("records"):
        name = str(r["variant"])
        ref = name.startswith(_REF)
        n = int(r["n_seeds"]) if np.isfinite(_f(r["n_seeds"])) else 1
        for level in LEVELS:
            col = f"kendall_tau_{level}"
            if col not in r:
                continue
            tau, sd = _f(r[col]), _f(r.get(col + "_std"))
            lo, hi = _f(r.get(col + "_ci_low")), _f(r.get(col + "_ci_high"))
            if math.isfinite(lo) and math.isfinite(hi):
                interval = "95% bootstrap"
            elif math.isfinite(sd) and n > 1 and not ref:
                half = _t975(n) * sd / math.sqrt(n)
                lo, hi, interval = max(tau - half, -1.0), min(tau + half, 1.0), f"95% t over {n} seeds"
            else:
                interval = ""
            rows.append({"kind": "reference" if ref else "variant", "variant": name[len(_REF):] if ref else name,
                         "calibration": "" if ref else ("calib" if _bool(r["calibration"]) else "no_calib"),
                         "level": level, "n_seeds": n, "tau": tau, "sd": sd, "ci_low": lo, "ci_high": hi,
                         "interval": interval})
    out = pd.DataFrame(rows, columns=["kind", "variant", "calibration", "level", "n_seeds", "tau", "sd", "ci_low",
                                      "ci_high", "interval"])
    return out[out["tau"].notna()].reset_index(drop=True)


def _merge_refs(refs: pd.DataFrame) -> list[tuple[str, float, float, float]]:
    """(label, tau, low, high) per reference line (low, high: its interval, NaN when it has
    none); rankers with the same tau at the labels' precision share one line."""
    out: list[tuple[str, float, float, float]] = []
    for r in refs.sort_values("tau").itertuples():
        if math.isfinite(r.ci_low) and math.isfinite(r.ci_high):
            lo, hi = r.ci_low, r.ci_high
        elif math.isfinite(r.sd) and r.sd > 1e-9:
            lo, hi = r.tau - r.sd, r.tau + r.sd
        else:
            lo = hi = math.nan
        if out and round(out[-1][1], 2) == round(float(r.tau), 2):
            lab, t, a, b = out[-1]
            lows, highs = [v for v in (a, lo) if math.isfinite(v)], [v for v in (b, hi) if math.isfinite(v)]
            out[-1] = (f"{lab}, {r.variant}", t, min(lows, default=math.nan), max(highs, default=math.nan))
        else:
            out.append((str(r.variant), float(r.tau), lo, hi))
    return out


def plot_ablation_tau(df: pd.DataFrame, title: str | None = None):
    """Forest plot of :func:`compute_ablation_tau`: one panel per level (shared tau axis),
    variants along x, hollow = without and filled = with BN calibration, reference rankers as
    horizontal lines with their interval as a band."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    levels = [lv for lv in LEVELS if (df["level"] == lv).any()]
    variants = order_variants(df.loc[df["kind"] == "variant", "variant"].tolist())
    if not variants:
        raise ValueError("the ablation table holds no variant rows")
    multi = bool((df.loc[df["kind"] == "variant", "n_seeds"] > 1).any())
    with figure_style():
        fig, axes = plt.subplots(1, len(levels), figsize=(0.7 * len(variants) * len(levels) + 3.4, 4.4),
                                 squeeze=False, sharey=True, constrained_layout=True)
        ref_ticks, banded = [], False
        for ax, level in zip(axes[0], levels):
            d = df[df["level"] == level]
            refs = _merge_refs(d[d["kind"] == "reference"])
            for _lab, tau, lo, hi in refs:
                if math.isfinite(lo) and hi - lo > 1e-6:
                    ax.axhspan(lo, hi, color=_REF_COLOR, alpha=0.12, lw=0, zorder=0)
                    banded = True
                ax.axhline(tau, color=_REF_COLOR, lw=0.9, ls="--", zorder=1)
            ref_ticks.append((ax, refs))
            for i, v in enumerate(variants):
                color = variant_color(v)
                for calib, dx in (("no_calib", -_OFFSET), ("calib", _OFFSET)):
                    r = d[(d["kind"] == "variant") & (d["variant"] == v) & (d["calibration"] == calib)]
                    if r.empty:
                        continue
                    r = r.iloc[0]
                    x = i + dx
                    if math.isfinite(r["ci_low"]):
                        ax.plot([x, x], [r["ci_low"], r["ci_high"]], color=color, lw=1.0, zorder=2,
                                solid_capstyle="butt")
                    if math.isfinite(r["sd"]):
                        ax.plot([x, x], [r["tau"] - r["sd"], r["tau"] + r["sd"]], color=color, lw=3.2, alpha=0.55,
                                zorder=2, solid_capstyle="butt")
                    filled = calib == "calib"
                    ax.plot([x], [r["tau"]], marker="o", ms=6, mfc=color if filled else "white", mec=color, mew=1.4,
                            zorder=3, ls="none")
            ax.axhline(0.0, color="black", lw=0.6, zorder=1)
            ax.set_xticks(range(len(variants)), [variant_label(v) for v in variants])
            ax.set_xlim(-0.6, len(variants) - 0.4)
            ax.grid(axis="x", visible=False)
            ax.set_title("Kendall " + r"$\tau$" + f" {LEVELS[level]}")
            ax.tick_params(labelleft=True)
        axes[0, 0].set_ylabel("Kendall " + r"$\tau$" + " against the truth")
        # the axis spans the points, their sd and the references; an interval of 2 seeds (t = 12.7)
        # may run off it rather than squash everything else
        core = pd.concat([df["tau"], df["tau"] - df["sd"].fillna(0), df["tau"] + df["sd"].fillna(0), pd.Series([0.0])])
        wide = pd.concat([df["ci_low"], df["ci_high"]]).dropna()
        lo_, hi_ = float(core.min()), float(core.max())
        span = hi_ - lo_ or 0.2
        lo_ = max(float(wide.min()) if len(wide) else lo_, lo_ - 0.6 * span, -1.0)
        hi_ = min(float(wide.max()) if len(wide) else hi_, hi_ + 0.6 * span, 1.0)
        axes[0, 0].set_ylim(min(lo_, float(core.min())) - 0.05 * span, max(hi_, float(core.max())) + 0.05 * span)
        for ax, refs in ref_ticks:  # name the reference lines on the right, where layout makes room
            if not refs:
                continue
            right = ax.twinx()
            lo, hi = ax.get_ylim()
            right.set_ylim(lo, hi)
            gap = 0.045 * (hi - lo)
            pos: list[float] = []  # labels at least one line apart, next to their lines
            for _, t, _, _ in refs:
                pos.append(max(t, pos[-1] + gap) if pos else t)
            right.set_yticks(pos, [f"{lab} {t:.2f}" for lab, t, _, _ in refs], fontsize=7, color=_REF_COLOR)
            right.tick_params(axis="y", length=0, pad=2)
            right.grid(False)
            right.spines["right"].set_visible(False)
        grey = "#333333"
        handles: list[Artist] = [Line2D([], [], ls="none", marker="o", ms=6, mfc="white", mec=grey, mew=1.4,
                          label=CALIB_LABELS["no_calib"]),
                   Line2D([], [], ls="none", marker="o", ms=6, mfc=grey, mec=grey, label=CALIB_LABELS["calib"])]
        if multi:
            handles += [Line2D([], [], color=grey, lw=3.2, alpha=0.55, label=wrap_label("± 1 sd over seeds", 26)),
                        Line2D([], [], color=grey, lw=1.0,
                               label=wrap_label("95% interval of the mean over seeds (t)", 26))]
        else:
            handles.append(Line2D([], [], color=grey, lw=1.0, label=wrap_label("95% bootstrap interval", 26)))
        if (df["kind"] == "reference").any():
            handles.append(Line2D([], [], color=_REF_COLOR, lw=0.9, ls="--",
                                  label=wrap_label("reference ranker (no supernet)", 26)))
            if banded:
                handles.append(Patch(color=_REF_COLOR, alpha=0.12, label=wrap_label("its 95% interval", 26)))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), frameon=False)
        suptitle(fig, title)
    return fig


_SIDE = re.compile(r"^(?P<variant>.*) \((?P<setting>[^()]*)\)$")
_SECTIONS = ("no calibration", "BN calibration", "calibration vs none")
_SECTION_TITLES = {"no calibration": "variant A − B, " + CALIB_LABELS["no_calib"],
                   "BN calibration": "variant A − B, " + CALIB_LABELS["calib"],
                   "calibration vs none": "with − without BN calibration, per variant"}


def _side(s: str) -> tuple[str, str]:
    m = _SIDE.match(str(s))
    return (m.group("variant"), m.group("setting")) if m else (str(s), "")


def compute_paired_differences(paired: pd.DataFrame) -> pd.DataFrame:
    """``paired.csv`` with ``section`` (:data:`_SECTIONS`), ``label`` (what the row compares,
    in words), ``excludes_zero`` and the row's position ``order`` in the figure."""
    need = {"a", "b", "difference", "ci_low", "ci_high"}
    if not need <= set(paired.columns):
        raise ValueError(f"paired.csv lacks {sorted(need - set(paired.columns))}; columns: {list(paired.columns)}")
    rows = []
    for r in paired.to_dict("records"):
        (va, sa), (vb, sb) = _side(r["a"]), _side(r["b"])
        if sa == sb:
            section = sa if sa in _SECTIONS else sa or "other"
            label = f"{variant_label(va)} − {variant_label(vb)}"
        else:
            section = "calibration vs none" if va == vb else "other"
            label = variant_label(va) if va == vb else f"{variant_label(va)} ({sa}) − {variant_label(vb)} ({sb})"
        lo, hi = _f(r["ci_low"]), _f(r["ci_high"])
        rows.append({**r, "section": section, "label": label,
                     "excludes_zero": bool(math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))})
    out = pd.DataFrame(rows)
    rank = {s: i for i, s in enumerate(_SECTIONS)}
    out["order"] = [rank.get(s, len(rank)) for s in out["section"]]
    out = out.sort_values("order", kind="stable").reset_index(drop=True)
    out["order"] = np.arange(len(out))
    return out


def plot_paired_differences(df: pd.DataFrame, title: str | None = None):
    """Horizontal forest plot of :func:`compute_paired_differences`: one row per pair, grouped
    by section, the difference and its 95% interval (filled where it excludes 0), the numbers
    on the right."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sections = [s for s in dict.fromkeys(df["section"])]
    y, ticks, labels, values, heads = 0.0, [], [], [], []
    pos = {}
    for s in sections:
        heads.append((y, _SECTION_TITLES.get(s, s)))
        y += 1.0
        for r in df[df["section"] == s].itertuples():
            pos[r.Index] = y
            ticks.append(y)
            labels.append(r.label)
            star = " *" if r.excludes_zero else ""
            values.append(f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]{star}")
            y += 1.0
        y += 0.4
    with figure_style():
        fig, ax = plt.subplots(figsize=(7.2, 0.22 * y + 1.3), constrained_layout=True)
        for r in df.itertuples():
            yy = pos[r.Index]
            color = "#222222" if r.excludes_zero else "#8A8A8A"
            if math.isfinite(r.ci_low) and math.isfinite(r.ci_high):
                ax.plot([r.ci_low, r.ci_high], [yy, yy], color=color, lw=1.4, solid_capstyle="butt")
            ax.plot([r.difference], [yy], ls="none", marker="o", ms=5.5, mec=color, mew=1.3,
                    mfc=color if r.excludes_zero else "white")
        ax.axvline(0.0, color="black", lw=0.8)
        for yy, text in heads:
            ax.text(0.01, yy, text, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=8,
                    fontweight="bold")
        ax.set_yticks(ticks, labels)
        ax.set_ylim(y - 0.2, -0.8)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("difference in Kendall " + r"$\tau$" + " (A − B), 95% interval over seeds, candidates and "
                      "the truth's repeats")
        ax.tick_params(axis="y", length=0)
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks(ticks, values, fontsize=7, fontfamily="monospace")
        right.tick_params(axis="y", length=0)
        right.grid(False)
        right.spines["right"].set_visible(False)
        handles = [Line2D([], [], ls="none", marker="o", mfc="#222222", mec="#222222",
                          label="interval excludes 0 (*)"),
                   Line2D([], [], ls="none", marker="o", mfc="white", mec="#8A8A8A", label="interval includes 0")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        suptitle(fig, title)
    return fig


# -- registered figures ------------------------------------------------------------------------
def _has_table(ctx) -> bool:
    return (ctx.path / "ablation.csv").exists() or "table" in ctx.__dict__


@register_figure("ablation_tau", "ablation", applies=_has_table,
                 why_not=lambda ctx: f"{ctx.path} holds no ablation.csv", order=10)
def draw_ablation_tau(ctx, out: Path) -> list[Path]:
    """Kendall tau of every variant without and with BN calibration, with intervals, against the
    reference rankers (parameters, FLOPs, ...) as horizontal bands: the ablation's headline."""
    df = compute_ablation_tau(ctx.table)
    return ctx.save(plot_ablation_tau(df, ctx.title("Ablation: Kendall tau by variant")), out / "ablation_tau",
                       df)


@register_figure("ablation_paired", "ablation", applies=lambda ctx: ctx.paired is not None,
                 why_not="no paired differences (paired.csv; they need 2 or more seeds)", order=20)
def draw_ablation_paired(ctx, out: Path) -> list[Path]:
    """Paired differences in Kendall tau between variants (and calibration vs none) with their
    95% intervals over seeds, candidates and the truth's repeats."""
    df = compute_paired_differences(ctx.paired)
    fig = plot_paired_differences(df, ctx.title("Ablation: paired differences in Kendall tau"))
    return ctx.save(fig, out / "ablation_paired", df)
