"""``tau_over_training.csv``: Kendall tau of the supernet at epochs of its training
(:mod:`rankbench.training.tau_tracking` writes it, :mod:`rankbench.figures.tau_over_training`
draws it); rewritten atomically after each evaluation. No torch here: figures read it."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from rankbench._io import atomic_path

__all__ = ["TAU_CSV", "TAU_COLUMNS", "SUPERNET_SETTINGS", "REFERENCE_PREFIX", "write_tau_table", "read_tau_table"]

#: the file in the run directory
TAU_CSV = "tau_over_training.csv"
#: its columns: the epoch (1-based; empty for a reference ranker), the setting (``no_calib``,
#: ``calib``, or ``ref_<ranker>``), Kendall tau with its 95% interval, Spearman's rho, and the
#: number of candidates ranked
TAU_COLUMNS = ("epoch", "setting", "kendall_tau", "ci_low", "ci_high", "spearman", "n")
#: the supernet's settings, in order: without and with BN calibration (the reports' names)
SUPERNET_SETTINGS = ("no_calib", "calib")
#: a reference ranker's setting is this prefix and its name (``ref_params``)
REFERENCE_PREFIX = "ref_"
_NUMBERS = ("kendall_tau", "ci_low", "ci_high", "spearman")


def _sort_key(row: dict[str, Any]) -> tuple:
    order = SUPERNET_SETTINGS.index(row["setting"]) if row["setting"] in SUPERNET_SETTINGS else len(SUPERNET_SETTINGS)
    return (row["epoch"] is not None, row["epoch"] or 0, order, row["setting"])


def write_tau_table(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts with :data:`TAU_COLUMNS`, ``epoch`` None for a reference ranker)
    atomically: the references first, then by epoch and setting; one row per (epoch, setting),
    the last one given winning. Numbers are written exactly (``repr``)."""
    unique = {(r["epoch"], r["setting"]): r for r in rows}
    with atomic_path(Path(path), suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TAU_COLUMNS)
        for r in sorted(unique.values(), key=_sort_key):
            w.writerow(["" if r["epoch"] is None else int(r["epoch"]), r["setting"],
                        *(repr(float(r[c])) for c in _NUMBERS), int(r["n"])])


def read_tau_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a tau_over_training.csv (``epoch`` None for a reference ranker)."""
    with open(path, newline="") as f:
        return [{"epoch": int(r["epoch"]) if r["epoch"] else None, "setting": r["setting"],
                 **{c: float(r[c]) for c in _NUMBERS}, "n": int(r["n"])} for r in csv.DictReader(f)]
