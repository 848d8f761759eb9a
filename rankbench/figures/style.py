"""One look for every rankbench figure: each variant's label, colour and order (read from the
variant registry), one colour per count (active paths, fan-in), paper-size fonts, and
:func:`save_figure` (PNG + PDF + the CSV of the numbers, each written atomically).

Colours are the Okabe-Ito palette (readable with colour-vision deficiencies and in grey).
"""
from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rankbench._io import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = [
    "CALIB_ORDER", "CALIB_LABELS", "variant_color", "variant_label", "order_variants", "shade",
    "level_colors", "path_colors", "path_cmap", "figure_style", "suptitle", "wrap_label", "save_figure", "DPI",
]

#: colours of variants the registry does not know (a stable pick by name)
_UNKNOWN_COLORS = ("#E69F00", "#CC79A7", "#F0E442", "#000000")

#: BN post-calibration: the two ways a supernet scores a subnet
CALIB_ORDER: tuple[str, ...] = ("no_calib", "calib")
CALIB_LABELS: dict[str, str] = {"no_calib": "without BN calibration", "calib": "with BN calibration"}

DPI = 200


def _variant_meta(variant: str) -> tuple[str, str, int] | None:
    """(label, colour, order) of a registered variant (the variant registry is the one source),
    None for an unknown one."""
    from rankbench.supernet import variant_info

    try:
        info = variant_info(variant)
    except KeyError:
        return None
    return info.label, info.colour, info.order


def variant_color(variant: str) -> str:
    """The variant's colour from the registry (a stable fallback for unknown names)."""
    meta = _variant_meta(variant)
    if meta is not None:
        return meta[1]
    return _UNKNOWN_COLORS[sum(map(ord, variant)) % len(_UNKNOWN_COLORS)]  # stable across runs


def variant_label(variant: str) -> str:
    """The variant's label from the registry ("LSBN"); the name itself for unknown ones."""
    meta = _variant_meta(variant)
    return meta[0] if meta is not None else variant


def order_variants(variants: Sequence[str]) -> list[str]:
    """The distinct ``variants`` in the registry's order (unknown ones last, sorted)."""
    def key(v: str):
        meta = _variant_meta(v)
        return (0, meta[2], v) if meta is not None else (1, 0, v)

    return sorted(set(variants), key=key)


def shade(color: str, i: int, n: int) -> tuple:
    """The ``i``-th of ``n`` shades of ``color`` (darker to lighter; ``color`` itself when n == 1):
    groups of one variant that differ in their config share its hue."""
    rgb = np.array(matplotlib.colors.to_rgb(color))
    if n <= 1:
        return tuple(rgb)
    t = -0.45 + 0.9 * i / (n - 1)  # -0.45 (towards black) .. +0.45 (towards white)
    out = rgb + t * (1.0 - rgb) if t > 0 else rgb * (1.0 + t)
    return tuple(np.clip(out, 0.0, 1.0))


def path_cmap():
    """Sequential colour map for counts (active paths, edges, fan-in): light = few, dark = many."""
    return matplotlib.colormaps["viridis_r"]


def level_colors(values: Sequence[int], lowest: int = 1, highest: int = 4) -> dict[int, tuple]:
    """value -> colour for integer counts; the scale spans ``lowest``..max(``highest``, values),
    so with the defaults k active paths get the same colour in every figure."""
    vals = sorted({int(v) for v in values})
    lo = min([lowest] + vals)
    hi = max([highest] + vals)
    cmap = path_cmap()
    return {v: cmap(0.15 + 0.75 * (v - lo) / max(hi - lo, 1)) for v in range(lo, hi + 1)}


def path_colors(m: int = 4) -> dict[int, tuple]:
    """k -> colour for k = 1..m active paths; the same k has the same colour in every figure."""
    return level_colors(range(1, m + 1))


_RC: dict[RcKeyType, Any] = {
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


def wrap_label(text: str, width: int = 34) -> str:
    """A legend entry wrapped onto lines of at most ``width`` characters."""
    return textwrap.fill(text, width, break_on_hyphens=False, subsequent_indent="  ")


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
                close: bool = True, formats: Sequence[str] = ("png", "pdf"), dpi: int = DPI) -> list[Path]:
    """Write ``<stem>.png`` (``dpi``, default 200), ``<stem>.pdf`` (``formats``: which of the
    two) and, if ``data`` is given, ``<stem>.csv`` (the numbers the figure shows). Each file is
    written to a temporary name and renamed, so a crash never leaves a half-written figure.
    Returns the paths written."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    # a figure with a layout engine (constrained layout) is laid out already; "tight" would
    # cost another full draw
    bbox = None if fig.get_layout_engine() is not None else "tight"
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches=bbox, pad_inches=0.05)
        out.append(path)
    if data is not None:
        path = stem.with_name(f"{stem.name}.csv")
        with atomic_path(path, suffix=".csv") as tmp:
            data.to_csv(tmp, index=False, float_format="%.6g")
        out.append(path)
    if close:
        plt.close(fig)
    return out
