"""One-shot accuracy of subnets by number of active paths, per variant, with and without BN
calibration.

The paper's observation (MixPath, Fig. "accuracy distribution by m"): with vanilla BN the
multi-path subnets score far lower than single-path ones, a gap that is an artefact of the
supernet (the BN statistics belong to the mixture of path counts), so they are under-estimated.
Shadow BN, and BN calibration, close the gap.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from rankbench.figures._runs import as_percent
from rankbench.figures.style import (CALIB_LABELS, CALIB_ORDER, figure_style, order_variants, suptitle,
                                     variant_color, variant_label)

__all__ = ["compute_accuracy_by_paths", "plot_accuracy_by_paths"]

_ACC_COLUMNS = {"acc_no_calib": "no_calib", "acc_calib": "calib"}


def compute_accuracy_by_paths(scores: pd.DataFrame) -> pd.DataFrame:
    """Long table of one-shot accuracies (percent) from one or several runs' scores.

    ``scores``: rows of scores.csv with ``num_paths``, ``subnet``, ``acc_no_calib`` and/or
    ``acc_calib``, plus ``variant`` and ``run`` (as :func:`rankbench.figures._runs.load_scores`
    adds; ``variant`` defaults to "?"). Returns columns ``run``, ``variant``, ``subnet``,
    ``num_paths``, ``calibration`` ("no_calib" / "calib") and ``accuracy`` (%); subnets with a
    missing score are left out.
    """
    present = [c for c in _ACC_COLUMNS if c in scores.columns]
    if not present:
        raise ValueError(f"scores need acc_no_calib and/or acc_calib columns; got {list(scores.columns)}")
    for col in ("num_paths", "subnet"):
        if col not in scores.columns:
            raise ValueError(f"scores need a {col!r} column; got {list(scores.columns)}")
    base = scores.assign(run=scores["run"] if "run" in scores else "run",
                         variant=scores["variant"] if "variant" in scores else "?")
    frames = []
    for col in present:
        frames.append(pd.DataFrame({
            "run": base["run"].to_numpy(), "variant": base["variant"].to_numpy(),
            "subnet": base["subnet"].astype(str).to_numpy(), "num_paths": base["num_paths"].astype(int).to_numpy(),
            "calibration": _ACC_COLUMNS[col], "accuracy": as_percent(base[col]),
        }))
    out = pd.concat(frames, ignore_index=True).dropna(subset=["accuracy"])
    return out.reset_index(drop=True)


def plot_accuracy_by_paths(df: pd.DataFrame, title: str | None = None):
    """Box plot (with every subnet as a dot) of accuracy against the number of active paths,
    one colour per variant; one panel per calibration setting."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    calibs = [c for c in CALIB_ORDER if c in set(df["calibration"])]
    variants = order_variants(df["variant"].tolist())
    ks = sorted(int(k) for k in df["num_paths"].unique())
    nv = len(variants)
    slot = 0.8 / nv  # width of one variant's box within a group of boxes
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    with figure_style():
        width = max(4.2, 0.34 * len(ks) * nv + 1.6)
        fig, axes = plt.subplots(len(calibs), 1, figsize=(width, 2.7 * len(calibs) + 0.3), sharex=True,
                                 squeeze=False, constrained_layout=True)
        for ax, calib in zip(axes[:, 0], calibs):
            d = df[df["calibration"] == calib]
            for j, v in enumerate(variants):
                color = variant_color(v)
                groups = [d.loc[(d["variant"] == v) & (d["num_paths"] == k), "accuracy"].to_numpy() for k in ks]
                pos = [i - 0.4 + slot * (j + 0.5) for i in range(len(ks))]
                keep = [(p, g) for p, g in zip(pos, groups) if g.size]
                if not keep:
                    continue
                bp = ax.boxplot([g for _, g in keep], positions=[p for p, _ in keep], widths=slot * 0.8,
                                showfliers=False, patch_artist=True, manage_ticks=False,
                                medianprops=dict(color="black", lw=1.0), whiskerprops=dict(lw=0.8),
                                capprops=dict(lw=0.8), boxprops=dict(lw=0.8))
                for box in bp["boxes"]:
                    box.set_facecolor(color)
                    box.set_alpha(0.45)
                for p, g in keep:
                    jitter = rng.uniform(-0.3, 0.3, g.size) * slot
                    ax.scatter(p + jitter, g, s=4, color=color, alpha=0.75, edgecolors="none", zorder=3)
            ax.set_xticks(range(len(ks)), [str(k) for k in ks])
            ax.set_xlim(-0.5, len(ks) - 0.5)
            ax.set_title(CALIB_LABELS[calib])
            ax.set_ylabel("one-shot accuracy (%)")
            ax.grid(axis="x", visible=False)
        axes[-1, 0].set_xlabel("active paths per cell")
        handles = [Patch(facecolor=variant_color(v), edgecolor="black", linewidth=0.5, alpha=0.8,
                         label=variant_label(v)) for v in variants]
        fig.legend(handles=handles, loc="outside right center", title="variant", frameon=False)
        suptitle(fig, title)
    return fig
