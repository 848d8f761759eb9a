"""Why multi-path sums break BatchNorm: cosine similarity and magnitude of path features.

For one cell of a trained MixPath supernet and a fixed batch of images, take the output of
every single (choice node, op) path (projection + op, before node 5) and of sums of several
paths (what node 5 receives when k paths are active). The paper's argument (MixPath, Sec. 3):
features of different ops in one layer point in nearly the same direction (cosine near 1), so
a sum of k paths is about k times as long as one path, and the statistics the following BN sees
grow with k. Orthogonal features would grow only as sqrt(k); the figure marks both.

The cell's input is computed by running the supernet (eval mode: its running BN statistics, no
state changes) up to that cell with one fixed subnet in every earlier cell; by default the
all-conv3x3 subnet with every choice node active (``"3333"`` for m = 4). For cell 0 the input is
the stem's output and does not depend on that choice.

S4 only: the features are S4 paths and the earlier cells run an S4 subnet (:func:`applies_to`);
other spaces (nb101) are refused with a clear message.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from rankbench.figures.registry import register_figure
from rankbench.figures.style import figure_style, path_colors, suptitle
from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.spaces.s4 import Subnet

if TYPE_CHECKING:  # torch is imported where it is used: registering this figure must not load it
    import torch
    from matplotlib.artist import Artist

__all__ = ["applies_to", "PathSum", "default_features", "default_input_arch", "feature_label", "cell_input",
           "compute_cosine", "plot_cosine", "feature_images", "COSINE_IMAGES"]

#: training images in the fixed batch of the cosine figure
COSINE_IMAGES = 64

#: a feature: the sum of the outputs of these (0-based choice node, op) paths
PathSum = tuple[tuple[int, str], ...]

_OP_ORDER = (CONV3X3, CONV1X1, MAXPOOL3X3)
_OP_SHORT = {CONV3X3: "conv3x3", CONV1X1: "conv1x1", MAXPOOL3X3: "maxpool"}


def applies_to(net) -> str | None:
    """None if the cosine figure can be drawn for ``net``, else why not (one line)."""
    space = getattr(getattr(net, "space", None), "name", "?")
    if space != "s4":
        return f"cosine similarity of path features builds S4 subnets; it applies to S4 only, not {space}"
    cell = net.cells[0] if getattr(net, "num_cells", 0) else None
    if not hasattr(cell, "path"):
        return (f"cosine similarity of paths needs a MixPath cell (shared paths); the "
                f"{getattr(net, 'variant', '?')!r} supernet's cells have none")
    return None


def default_features(m: int, ops: Sequence[str] = _OP_ORDER) -> list[PathSum]:
    """Every single path (node by node, ops in conv3x3, conv1x1, maxpool order), then for each
    k = 2..m two sums over nodes 1..k: all conv3x3, and mixed ops (conv3x3, conv1x1, maxpool,
    conv3x3, ...)."""
    ops = [o for o in _OP_ORDER if o in ops] + [o for o in ops if o not in _OP_ORDER]
    feats: list[PathSum] = [((node, op),) for node in range(m) for op in ops]
    for k in range(2, m + 1):
        feats.append(tuple((node, ops[0]) for node in range(k)))
        feats.append(tuple((node, ops[node % len(ops)]) for node in range(k)))
    out, seen = [], set()
    for f in feats:  # with one op, "all conv3x3" and "mixed" coincide
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def default_input_arch(m: int) -> Subnet:
    """Subnet run in the cells before the chosen one: conv3x3 on every choice node."""
    return Subnet((CONV3X3,) * m)


def feature_label(paths: PathSum, m: int) -> str:
    """Subnet code when the nodes are distinct (``"31--"``), else the single codes joined by
    ``+`` (a sanity construction summing one path several times)."""
    nodes = [n for n, _ in paths]
    if len(set(nodes)) == len(nodes):
        ops: list[str | None] = [None] * m
        for n, op in paths:
            ops[n] = op
        return Subnet(tuple(ops)).code
    return "+".join(Subnet(tuple(op if i == n else None for i in range(m))).code for n, op in paths)


def _describe(paths: PathSum) -> str:
    return "+".join(f"{n + 1}:{_OP_SHORT.get(op, op)}" for n, op in paths)


class _Stop(Exception):
    pass


def feature_images(cfg, n: int = COSINE_IMAGES):
    """The first ``n`` images of the run's training split, at the run's resolution, normalised
    (float32): the fixed, deterministic batch of the cosine figure."""
    from rankbench.data import normalize
    from rankbench.data.splits import load_splits

    splits = load_splits(cfg.data, progress=False)
    return normalize(splits.train.images[:n])


def cell_input(net, images: "torch.Tensor", cell: int, input_arch: Subnet | None = None) -> "torch.Tensor":
    """The tensor cell ``cell`` receives when ``net`` (in its current mode) runs ``images``
    with ``input_arch`` in every cell (only the cells before ``cell`` matter)."""
    import torch

    with torch.no_grad():
        return _cell_input(net, images, cell, input_arch)


def _cell_input(net, images, cell: int, input_arch: Subnet | None):
    if not 0 <= cell < net.num_cells:
        raise ValueError(f"cell {cell} out of range; this supernet has cells 0..{net.num_cells - 1}")
    arch = input_arch or default_input_arch(net.space.m)
    box: list[torch.Tensor] = []

    def grab(_module, args):
        box.append(args[0])
        raise _Stop

    handle = net.cells[cell].register_forward_pre_hook(grab)
    try:
        net.features(images, arch)
    except _Stop:
        pass
    finally:
        handle.remove()
    return box[0]


def compute_cosine(net, images: "torch.Tensor", cell: int = 0, features: Sequence[PathSum] | None = None,
                   input_arch: Subnet | None = None, chunk: int = 16) -> pd.DataFrame:
    """Pairwise cosine similarity and magnitude of path features of cell ``cell``.

    ``images``: a fixed, normalised float batch [B, 3, H, W] as the supernet was trained on.
    ``features``: sums of (node, op) paths (default :func:`default_features`). Each feature is
    flattened per image; cosine similarity and L2 norm are computed per image and averaged
    over the batch. The supernet runs in eval mode and is left as it was.

    Returns one row per feature: ``feature`` (label), ``num_paths``, ``paths``, ``mean_norm``
    (mean over images of the L2 norm), ``rel_norm`` (mean_norm / the mean of the mean_norm of
    the single paths it sums: exactly k for k parallel paths of equal length, sqrt(k) for
    orthogonal ones of equal length), ``rel_to_singles`` (mean_norm / the mean over the
    single-path features; NaN if there are none), ``cell``, then one column per feature label:
    the cosine matrix.
    """
    import torch

    with torch.no_grad():
        return _compute_cosine(net, images, cell, features, input_arch, chunk)


def _compute_cosine(net, images, cell: int, features, input_arch, chunk: int) -> pd.DataFrame:
    import torch

    why = applies_to(net)
    if why:
        raise ValueError(why)
    cell_mod = net.cells[cell] if 0 <= cell < net.num_cells else None
    if cell_mod is None:
        raise ValueError(f"cell {cell} out of range; this supernet has cells 0..{net.num_cells - 1}")
    m = net.space.m
    if features is None:
        features = default_features(m, net.space.ops)
    feats = [tuple((int(n), op) for n, op in f) for f in features]
    if not feats:
        raise ValueError("no features to compare")
    labels = [feature_label(f, m) for f in feats]
    if len(set(labels)) != len(labels):
        raise ValueError(f"features repeat: {labels}")
    was_training = net.training
    net.eval()
    try:
        n_f = len(feats)
        cos_sum = torch.zeros(n_f, n_f, dtype=torch.float64)
        norm_sum = torch.zeros(n_f, dtype=torch.float64)
        path_norm_sum: dict[tuple[int, str], float] = {}
        n_img = 0
        for start in range(0, len(images), chunk):
            x = cell_input(net, images[start:start + chunk], cell, input_arch)
            cache: dict[tuple[int, str], torch.Tensor] = {}
            rows: list[torch.Tensor] = []
            for f, label in zip(feats, labels):
                total: torch.Tensor | None = None
                for node, op in f:
                    if (node, op) not in cache:
                        cache[(node, op)] = cell_mod.path(node, op)(x).flatten(1).to(torch.float64)
                    y = cache[(node, op)]
                    total = y if total is None else total + y
                if total is None:  # the error torch.stack would raise, saying which feature
                    raise TypeError(f"feature {label!r} sums no paths")
                rows.append(total)
            for p, y in cache.items():
                path_norm_sum[p] = path_norm_sum.get(p, 0.0) + float(y.norm(dim=1).sum())
            fmat = torch.stack(rows, 1)  # [b, F, D]
            norms = fmat.norm(dim=2)  # [b, F]
            gram = fmat @ fmat.transpose(1, 2)  # [b, F, F]
            denom = (norms[:, :, None] * norms[:, None, :]).clamp_min(1e-30)
            cos_sum += (gram / denom).sum(0)
            norm_sum += norms.sum(0)
            n_img += fmat.shape[0]
    finally:
        net.train(was_training)
    if n_img == 0:
        raise ValueError("no images given")
    cos = (cos_sum / n_img).numpy()
    mean_norm = (norm_sum / n_img).numpy()
    num_paths = np.array([len(f) for f in feats])
    path_norm = {p: v / n_img for p, v in path_norm_sum.items()}
    member_mean = np.array([np.mean([path_norm[p] for p in f]) for f in feats])
    singles = [v for f, v in zip(feats, mean_norm) if len(f) == 1]
    all_singles = np.mean(singles) if singles else math.nan
    df = pd.DataFrame({
        "feature": labels,
        "num_paths": num_paths,
        "paths": [_describe(f) for f in feats],
        "mean_norm": mean_norm,
        "rel_norm": mean_norm / member_mean,
        "rel_to_singles": mean_norm / all_singles,
        "cell": cell,
    })
    return pd.concat([df, pd.DataFrame(cos, columns=labels)], axis=1)


def plot_cosine(df: pd.DataFrame, title: str | None = None):
    """Heatmap of the cosine matrix, and beside it each feature's magnitude relative to the
    single paths, with marks at k (parallel features) and sqrt(k) (orthogonal features)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    labels = list(df["feature"])
    cos = df[labels].to_numpy(dtype=float)
    k = df["num_paths"].to_numpy()
    n = len(labels)
    colors = path_colors(int(k.max()))
    with figure_style():
        cell = 0.3
        side = max(n * cell, 2.0)
        fig = plt.figure(figsize=(side + 3.9, side + 0.3))
        suptitle(fig, title)  # the figure's title, wrapped to its width, above the panels (not over the colour bar)
        title_artist = fig._suptitle  # type: ignore[attr-defined]  # Figure.get_suptitle needs matplotlib 3.8
        lines = title_artist.get_text().count("\n") + 1 if title_artist is not None else 0
        head = (0.2 * lines + 0.15) if lines else 0.0
        fig.set_figheight(side + 0.3 + head)
        gs = fig.add_gridspec(1, 4, width_ratios=[side, 0.12, 0.75, 2.4], wspace=0.05,
                              left=0.0, right=1.0, bottom=0.0, top=1.0 - head / (side + 0.3 + head))
        ax = fig.add_subplot(gs[0])
        cax = fig.add_subplot(gs[1])
        bx = fig.add_subplot(gs[3], sharey=ax)
        vmin = 0.0 if np.nanmin(cos) >= 0 else -1.0
        im = ax.imshow(cos, cmap="viridis", vmin=vmin, vmax=1.0, aspect="equal")
        ax.grid(False)
        for i in range(n):
            for j in range(n):
                v = cos[i, j]
                ax.text(j, i, f"{v:.2f}".lstrip("0") if v >= 0 else f"{v:.1f}", ha="center", va="center",
                        fontsize=5.5 if n > 12 else 7, color="white" if v < vmin + 0.6 * (1 - vmin) else "black")
        ax.set_xticks(range(n), labels, rotation=90, fontfamily="monospace")
        ax.set_yticks(range(n), labels, fontfamily="monospace")
        for tick, kk in zip(ax.get_yticklabels(), k):
            tick.set_color("black" if kk == 1 else "#333333")
        # separate single paths from sums, and sums by k
        for b in np.flatnonzero(np.diff(k)) + 0.5:
            ax.axhline(b, color="white", lw=1.5)
            ax.axvline(b, color="white", lw=1.5)
        ax.set_xlabel("feature (subnet code: op per choice node; 3 conv3x3, 1 conv1x1, m maxpool)")
        ax.set_ylabel("feature")
        cb = fig.colorbar(im, cax=cax)
        cb.set_label("cosine similarity (mean over images)")

        rel = df["rel_norm"].to_numpy(dtype=float)
        bx.barh(range(n), rel, color=[colors[int(kk)] for kk in k], height=0.7)
        for i, kk in enumerate(k):
            if kk > 1:
                bx.plot([kk, kk], [i - 0.4, i + 0.4], color="black", lw=1.3)
                bx.plot([math.sqrt(kk)] * 2, [i - 0.4, i + 0.4], color="black", lw=1.3, ls=":")
        bx.axvline(1.0, color="grey", lw=0.8)
        bx.set_xlabel("magnitude (mean L2 norm) relative\nto the single paths it sums")
        bx.set_xlim(0, max(float(np.nanmax(rel)), float(k.max())) * 1.08)
        bx.tick_params(axis="y", labelleft=False)
        bx.set_ylim(n - 0.5, -0.5)
        bx.grid(axis="y", visible=False)
        handles: list[Artist] = [Line2D([], [], color="black", lw=1.3, label="k (parallel)"),
                   Line2D([], [], color="black", lw=1.3, ls=":", label=r"$\sqrt{k}$ (orthogonal)")]
        handles += [plt.Rectangle((0, 0), 1, 1, color=colors[int(kk)], label=f"{kk} path{'s' if kk > 1 else ''}")
                    for kk in sorted(set(k.tolist()))]
        bx.legend(handles=handles, loc="upper right", frameon=True, framealpha=0.9)
    return fig


# -- registered figure -------------------------------------------------------------------------
def _applies(ctx) -> bool:
    return ctx.has_supernet and applies_to(ctx.net) is None


def _why_not(ctx) -> str:
    if not ctx.has_supernet:
        return f"no trained supernet ({ctx.rd.supernet.name})"
    return applies_to(ctx.net) or ""


@register_figure("cosine", "run", applies=_applies, why_not=_why_not, needs_supernet=True, order=40,
                 stem="cosine_cell")
def draw_cosine(ctx, out: Path) -> list[Path]:
    """Cosine similarity and relative magnitude of a cell's path features and their sums (S4,
    MixPath cells): why summing paths breaks BatchNorm."""
    c = ctx.cell
    x = feature_images(ctx.cfg, ctx.images)
    arch = default_input_arch(ctx.net.space.m)
    df = compute_cosine(ctx.net, x, cell=c, input_arch=arch)
    before = f"; cells before it run {arch.code}" if c > 0 else ""
    fig = plot_cosine(df, ctx.title(f"Path features of cell {c} ({len(x)} training images{before})"))
    return ctx.save(fig, out / f"cosine_cell{c}", df)
