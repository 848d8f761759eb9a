"""One look for every rankbench figure: a colour and an order per variant, one colour per
number of active paths, paper-size fonts, and :func:`save_figure` (PNG + PDF + the CSV of the
numbers, each written atomically).

Colours are the Okabe-Ito palette (readable with colour-vision deficiencies and in grey).
"""
from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rankbench._io import atomic_path  # noqa: E402

__all__ = [
    "VARIANT_ORDER", "VARIANT_COLORS", "VARIANT_LABELS", "CALIB_ORDER", "CALIB_LABELS",
    "variant_color", "variant_label", "order_variants", "path_colors", "path_cmap",
    "figure_style", "suptitle", "save_figure", "DPI",
]

#: the order variants appear in, in every legend, axis and table
VARIANT_ORDER: tuple[str, ...] = ("bn", "lsbn", "esbn", "scale", "spos")
#: Okabe-Ito colours, one per variant
VARIANT_COLORS: dict[str, str] = {
    "bn": "#D55E00",     # vermillion: the naive baseline
    "lsbn": "#0072B2",   # blue: the paper's method
    "esbn": "#56B4E9",   # sky blue: its exponential sibling
    "scale": "#009E73",  # bluish green
    "spos": "#7F7F7F",   # grey: the single-path baseline
}
VARIANT_LABELS: dict[str, str] = {
    "bn": "BN", "lsbn": "LSBN", "esbn": "ESBN", "scale": "scaling", "spos": "SPOS",
}
_FALLBACK_COLORS = ("#E69F00", "#CC79A7", "#F0E442", "#000000")

#: BN post-calibration: the two ways a supernet scores a subnet
CALIB_ORDER: tuple[str, ...] = ("no_calib", "calib")
CALIB_LABELS: dict[str, str] = {"no_calib": "without BN calibration", "calib": "with BN calibration"}

DPI = 200


def variant_color(variant: str) -> str:
    if variant in VARIANT_COLORS:
        return VARIANT_COLORS[variant]
    return _FALLBACK_COLORS[sum(map(ord, variant)) % len(_FALLBACK_COLORS)]  # stable across runs


def variant_label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def order_variants(variants: Sequence[str]) -> list[str]:
    """The distinct ``variants`` in :data:`VARIANT_ORDER` (unknown ones last, sorted)."""
    uniq = set(variants)
    known = [v for v in VARIANT_ORDER if v in uniq]
    return known + sorted(uniq - set(VARIANT_ORDER))


def path_cmap():
    """Sequential colour map for the number of active paths (1 light .. m dark)."""
    return matplotlib.colormaps["viridis_r"]


def path_colors(m: int = 4) -> dict[int, tuple]:
    """k -> colour for k = 1..m active paths; the same k has the same colour in every figure."""
    cmap, top = path_cmap(), max(m, 4)
    return {k: cmap(0.15 + 0.75 * (k - 1) / (top - 1)) for k in range(1, top + 1)}


_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.5,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "ps.fonttype": 42,
    "figure.dpi": 100,
}


def suptitle(fig, text: str | None) -> None:
    """A figure title wrapped to the figure's width (long run names otherwise get clipped)."""
    if not text:
        return
    size = matplotlib.rcParams["figure.titlesize"]
    size = size if isinstance(size, (int, float)) else 11
    chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * size)))
    fig.suptitle(textwrap.fill(text, chars, break_on_hyphens=False))


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """rcParams for every rankbench figure (a context, so callers' settings are untouched)."""
    with matplotlib.rc_context(_RC):
        yield


def save_figure(fig, path_stem: str | os.PathLike, data: pd.DataFrame | None = None, *,
                close: bool = True) -> list[Path]:
    """Write ``<stem>.png`` (dpi 200), ``<stem>.pdf`` and, if ``data`` is given, ``<stem>.csv``
    (the numbers the figure shows). Each file is written to a temporary name and renamed, so a
    crash never leaves a half-written figure. Returns the paths written."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    # a figure with a layout engine (constrained layout) is laid out already; "tight" would
    # cost another full draw
    bbox = None if fig.get_layout_engine() is not None else "tight"
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI, bbox_inches=bbox, pad_inches=0.05)
        out.append(path)
    if data is not None:
        path = stem.with_name(f"{stem.name}.csv")
        with atomic_path(path, suffix=".csv") as tmp:
            data.to_csv(tmp, index=False, float_format="%.6g")
        out.append(path)
    if close:
        plt.close(fig)
    return out
