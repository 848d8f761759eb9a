"""``train_log.csv``: one row per epoch, rewritten atomically after each."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from rankbench._io import atomic_path

__all__ = ["LOG_COLUMNS", "write_log", "read_log"]

#: train_log.csv columns: 1-based epoch, its learning rate, mean loss and accuracy (fraction)
#: over the epoch's training batches, throughput, and the epoch's wall-clock seconds
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "images_per_s", "wall_s")
_FORMATS = {"lr": "{:.6g}", "train_loss": "{:.6f}", "train_acc": "{:.6f}", "images_per_s": "{:.1f}",
            "wall_s": "{:.3f}"}


def _fmt(col: str, v: float) -> str:
    return str(int(v)) if col == "epoch" else _FORMATS[col].format(v)


def write_log(path: str | os.PathLike, rows: list[dict[str, float]]) -> None:
    with atomic_path(Path(path), suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LOG_COLUMNS)
        for r in rows:
            w.writerow([_fmt(c, r[c]) for c in LOG_COLUMNS])


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """train_log.csv as a list of {column: number}."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
