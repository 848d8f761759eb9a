"""One-shot accuracy of candidates by the space's descriptive column (S4: number of active
paths; nb101: the largest fan-in of a vertex), per group of runs, with and without BN
calibration.

The paper's observation (MixPath, Fig. "accuracy distribution by m"): with vanilla BN the
multi-path subnets score far lower than single-path ones, a gap that is an artefact of the
supernet (the BN statistics belong to the mixture of path counts), so they are under-estimated.
Shadow BN, and BN calibration, close the gap. On nb101 the same question is asked of the cells'
fan-in.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rankbench.figures._runs import as_percent
from rankbench.figures.registry import register_figure
from rankbench.figures.style import (CALIB_LABELS, CALIB_ORDER, figure_style, order_variants, shade, suptitle,
                                     variant_color, variant_label, wrap_label)

__all__ = ["compute_accuracy_by_group", "plot_accuracy_by_group", "column_label", "group_colors"]

_ACC_COLUMNS = {"acc_no_calib": "no_calib", "acc_calib": "calib"}
#: axis labels of the spaces' descriptive columns (others: the column name)
_COLUMN_LABELS = {"num_paths": "active paths per cell", "num_edges": "edges in the cell",
                  "num_vertices": "vertices in the cell", "max_fan_in": "largest fan-in of a vertex"}


def column_label(column: str) -> str:
    """Axis label of a descriptive column ("num_paths" -> "active paths per cell")."""
    return _COLUMN_LABELS.get(column, column.replace("_", " "))


def compute_accuracy_by_group(scores: pd.DataFrame, by: str = "num_paths") -> pd.DataFrame:
    """Long table of one-shot accuracies (percent) from one or several reports' scores.

    ``scores``: rows of reports' scores.csv with ``by`` (the space's group column), ``name``
    (or ``subnet``), ``acc_no_calib`` and/or ``acc_calib``, plus ``run``, ``report``,
    ``variant`` and ``group`` (the run group's label; default: the variant's label) where known. Returns columns
    ``group``, ``variant``, ``run``, ``report``, ``name``, ``by``, ``calibration`` ("no_calib" /
    "calib") and ``accuracy`` (%); candidates with a missing score are left out.
    """
    present = [c for c in _ACC_COLUMNS if c in scores.columns and scores[c].notna().any()]
    if not present:
        raise ValueError(f"scores need acc_no_calib and/or acc_calib values; got columns {list(scores.columns)}")
    name = "name" if "name" in scores.columns else "subnet"
    for col in (by, name):
        if col not in scores.columns:
            raise ValueError(f"scores need a {col!r} column; got {list(scores.columns)}")

    def column(c: str, default: str) -> np.ndarray:
        return scores[c].astype(str).to_numpy() if c in scores.columns else np.full(len(scores), default)

    variant = column("variant", "?")
    labels = column("group", "") if "group" in scores.columns else np.array([variant_label(v) for v in variant])
    base = {"group": labels, "variant": variant,
            "run": column("run", "run"), "report": column("report", ""), "name": column(name, ""),
            by: scores[by].astype(int).to_numpy()}
    frames = [pd.DataFrame({**base, "calibration": _ACC_COLUMNS[col], "accuracy": as_percent(scores[col])})
              for col in present]
    out = pd.concat(frames, ignore_index=True).dropna(subset=["accuracy"])
    return out.reset_index(drop=True)


def group_colors(df: pd.DataFrame) -> dict[str, tuple]:
    """Group label -> colour: the variant's colour, in shades when several groups share it."""
    out: dict[str, tuple] = {}
    pairs = df[["group", "variant"]].drop_duplicates()
    for v in order_variants(pairs["variant"].tolist()):
        labels = sorted(pairs.loc[pairs["variant"] == v, "group"])
        for i, g in enumerate(labels):
            out[g] = shade(variant_color(v), i, len(labels))
    return out


def plot_accuracy_by_group(df: pd.DataFrame, by: str = "num_paths", title: str | None = None):
    """Box plot (with every candidate as a dot) of accuracy against ``by``, one colour per
    group of runs, the number of values under each box; one panel per calibration setting, on a
    shared accuracy axis."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    calibs = [c for c in CALIB_ORDER if c in set(df["calibration"])]
    colors = group_colors(df)
    groups = list(colors)
    ks = sorted(int(k) for k in df[by].unique())
    ng = len(groups)
    slot = 0.8 / ng  # width of one group's box within a group of boxes
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    counts: list[tuple] = []  # (axes, x, n)
    with figure_style():
        width = max(5.2, 0.34 * len(ks) * ng + 1.6)
        fig, axes = plt.subplots(len(calibs), 1, figsize=(width, 2.8 * len(calibs) + 0.4), sharex=True, sharey=True,
                                 squeeze=False, constrained_layout=True)
        for ax, calib in zip(axes[:, 0], calibs):
            d = df[df["calibration"] == calib]
            for j, g in enumerate(groups):
                color = colors[g]
                vals = [d.loc[(d["group"] == g) & (d[by] == k), "accuracy"].to_numpy() for k in ks]
                pos = [i - 0.4 + slot * (j + 0.5) for i in range(len(ks))]
                keep = [(p, v) for p, v in zip(pos, vals) if v.size]
                if not keep:
                    continue
                bp = ax.boxplot([v for _, v in keep], positions=[p for p, _ in keep], widths=slot * 0.8,
                                showfliers=False, patch_artist=True, manage_ticks=False,
                                medianprops=dict(color="black", lw=1.0), whiskerprops=dict(lw=0.8),
                                capprops=dict(lw=0.8), boxprops=dict(lw=0.8))
                for box in bp["boxes"]:
                    box.set_facecolor(color)
                    box.set_alpha(0.45)
                for p, v in keep:
                    jitter = rng.uniform(-0.3, 0.3, v.size) * slot
                    ax.scatter(p + jitter, v, s=4, color=color, alpha=0.75, edgecolors="none", zorder=3)
                    counts.append((ax, p, v.size))
            ax.set_xticks(range(len(ks)), [str(k) for k in ks])
            ax.set_xlim(-0.5, len(ks) - 0.5)
            ax.set_title(CALIB_LABELS[calib])
            ax.set_ylabel("one-shot accuracy (%)")
            ax.grid(axis="x", visible=False)
        # n under each box, in a strip below the data (the y axis is shared)
        lo, hi = axes[0, 0].get_ylim()
        pad = 0.09 * (hi - lo)
        axes[0, 0].set_ylim(lo - pad, hi)
        vertical = ng > 2 or max((n for *_, n in counts), default=0) >= 1000
        for ax, p, n in counts:
            ax.text(p, lo - 0.55 * pad, str(n), ha="center", va="center", fontsize=6, color="#444444",
                    rotation=90 if vertical else 0)
        axes[-1, 0].set_xlabel(column_label(by) + "\n(under each box: how many values it holds)")
        handles = [Patch(facecolor=colors[g], edgecolor="black", linewidth=0.5, alpha=0.8, label=wrap_label(g))
                   for g in groups]
        fig.legend(handles=handles, loc="outside right center", title="runs", frameon=False)
        suptitle(fig, title)
    return fig


# -- registered figures ------------------------------------------------------------------------
@register_figure("accuracy_by_group", "run", applies=lambda ctx: ctx.report is not None,
                 why_not="no report (score the run with `rankbench run`)", per_report=True, order=30,
                 stem="accuracy_by_")
def draw_accuracy_by_group(ctx, out: Path) -> list[Path]:
    """One-shot accuracy of the candidates by the space's descriptive column (S4: active
    paths; nb101: largest fan-in), without and with BN calibration."""
    df = compute_accuracy_by_group(ctx.scores, by=ctx.by)
    fig = plot_accuracy_by_group(df, ctx.by, ctx.title(f"One-shot accuracy by {column_label(ctx.by)}", report=True))
    return ctx.save(fig, out / f"accuracy_by_{ctx.by}", df)


@register_figure("compare_accuracy_by_group", "runs", applies=lambda ctx: not isinstance(ctx.pooled_scores, str),
                 why_not=lambda ctx: ctx.pooled_scores, order=10,
                 stem="accuracy_by_")
def draw_compare_accuracy_by_group(ctx, out: Path) -> list[Path]:
    """One-shot accuracy by the space's descriptive column of every scored run, one colour per
    group of runs (a variant's seeds pooled)."""
    from rankbench.figures._context import runs_note

    scores, by, what = ctx.pooled_scores
    note = runs_note([ctx.by_path[d] for d in ctx.plan.scored])
    df = compute_accuracy_by_group(scores, by=by)
    title = f"One-shot accuracy by {column_label(by)} ({what}" + (f"; {note}" if note else "") + ")"
    return ctx.save(plot_accuracy_by_group(df, by, title), out / f"accuracy_by_{by}", df)
