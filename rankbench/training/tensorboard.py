"""TensorBoard event files in ``<run dir>/tensorboard/`` (``train.tensorboard``; optional:
``pip install "rankbench[tb]"``).

Training (:class:`TensorBoard`, rank 0 only), all against the global step (steps done since
the start of training, so step and epoch curves share one x axis):

- ``step/loss``, ``step/acc``, ``step/lr``: every training step (global batch under DDP);
- ``epoch/loss``, ``epoch/acc``, ``epoch/lr``, ``epoch/images_per_s``: the train_log.csv row;
- ``sampled/<column>=<value>``: how many of the epoch's sampled architectures fall in each
  group of the space's ``group_column`` (S4: ``num_paths``; one count per cell when archs
  are drawn per cell). A resumed epoch counts the steps since the resume only.

With ``train.eval_every``, tau over training goes to ``tensorboard/tau_over_training/``
(:mod:`rankbench.training.tau_tracking`). A resumed training appends to the same folder and
hides the events written after its checkpoint (``purge_step``), so every step is shown once.
After scoring, :func:`log_ranking_metrics` adds the final ranking metrics.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from rankbench.rundir import RunDir
from rankbench.training.hooks import Hook, Synced

if TYPE_CHECKING:
    from rankbench.training.loop import Loop

__all__ = ["TensorBoard", "require_tensorboard", "summary_writer", "log_ranking_metrics", "arch_groups"]

MISSING = ('train.tensorboard is on, but TensorBoard is not installed here: pip install "rankbench[tb]" '
           '(or pip install tensorboard), or turn it off (--set train.tensorboard=false)')


def require_tensorboard() -> type:
    """torch's ``SummaryWriter``; a ValueError saying how to install TensorBoard when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(MISSING) from None
    return SummaryWriter


def summary_writer(log_dir: str | os.PathLike, loop: "Loop") -> Any:
    """A ``SummaryWriter`` into ``log_dir`` for a training hook: a resumed training hides the
    events an earlier session wrote there after its checkpoint (``purge_step``)."""
    writer_cls = require_tensorboard()
    purge = loop.global_step + 1 if loop.resumed else None
    return writer_cls(log_dir=str(log_dir), purge_step=purge)


def arch_groups(space: Any) -> tuple[str, Callable[[Any], list[Any]]] | None:
    """(column, function giving an architecture's group values, one per cell) from a space
    with ``describe(arch)`` and ``group_column``; None when the space has neither."""
    column = getattr(space, "group_column", None)
    describe = getattr(space, "describe", None)
    if not column or describe is None:
        return None

    def groups(arch: Any) -> list[Any]:
        cells = arch if isinstance(arch, (list, tuple)) else [arch]
        return [describe(a).get(column) for a in cells]

    return column, groups


class TensorBoard(Hook):
    """Training curves and sampled-architecture counts as event files (see the module doc)."""

    def __init__(self, log_dir: str | os.PathLike, space: Any = None):
        self.log_dir = Path(log_dir)
        self.groups = arch_groups(space) if space is not None else None
        self.writer = None
        self.counts: Counter = Counter()

    def on_start(self, loop: "Loop") -> None:
        if not loop.main:
            return
        self.writer = summary_writer(self.log_dir, loop)

    def on_sync(self, loop: "Loop", synced: Synced) -> None:
        if self.writer is None:
            return
        base = loop.pos.epoch * loop.steps_per_epoch + synced.first
        lr = loop.optimizer.param_groups[0]["lr"]
        for i, (v, c, n) in enumerate(zip(synced.losses, synced.correct, synced.sizes)):
            self.writer.add_scalar("step/loss", v, base + i + 1)
            self.writer.add_scalar("step/acc", c / max(n, 1), base + i + 1)
            self.writer.add_scalar("step/lr", lr, base + i + 1)

    def on_step(self, loop: "Loop") -> None:
        if self.writer is not None and self.groups is not None:
            self.counts.update(self.groups[1](loop.arch))

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        if self.writer is None:
            return
        step = loop.global_step
        for tag, col in (("loss", "train_loss"), ("acc", "train_acc"), ("lr", "lr"), ("images_per_s", "images_per_s")):
            self.writer.add_scalar(f"epoch/{tag}", row[col], step)
        if self.groups is not None:
            for value, n in sorted(self.counts.items(), key=lambda kv: str(kv[0])):
                self.writer.add_scalar(f"sampled/{self.groups[0]}={value}", n, step)
            self.counts.clear()
        self.writer.flush()

    def close(self, loop: "Loop") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _scalars(d: dict[str, Any], prefix: str) -> Iterable[tuple[str, float]]:
    for k, v in d.items():
        tag = f"{prefix}/{k}"
        if isinstance(v, dict):
            yield from _scalars(v, tag)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            yield tag, float(v)


def log_ranking_metrics(run_dir: str | os.PathLike, metrics: dict[str, Any], *, prefix: str = "ranking",
                        step: int | None = None) -> list[str]:
    """Write every finite number in ``metrics`` (nested dicts: tags joined by "/", e.g.
    ``ranking/calib/kendall_tau``; lists and strings skipped) as a scalar into
    ``run_dir/tensorboard/``, at ``step`` (default: the training's last global step, from
    train_done.json; else 0). Returns the tags written. Give each report its own ``prefix``
    (e.g. ``"ranking/<report name>"``) so that two scoring setups do not overwrite each other.
    Raises ValueError (how to install it) when TensorBoard is missing."""
    writer_cls = require_tensorboard()
    rd = RunDir(run_dir)
    if step is None:
        step = 0
        if rd.done_marker.exists():
            import json

            done = json.loads(rd.done_marker.read_text())
            step = int(done.get("epochs", 0)) * int(done.get("steps_per_epoch", 0))
    tags = []
    writer = writer_cls(log_dir=str(rd.tensorboard_dir))
    try:
        for tag, value in _scalars(metrics, prefix):
            writer.add_scalar(tag, value, step)
            tags.append(tag)
    finally:
        writer.close()
    return tags
