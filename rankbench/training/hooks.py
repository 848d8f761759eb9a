"""The training loop's concerns, one hook each (ClassyVision's ``ClassyHook`` pattern).

:func:`rankbench.train.fit` runs the steps; everything else happens in hooks, called in
list order at these events (every method is a no-op by default):

- ``on_start(loop)``: before the first step, after a resume restored the state;
- ``on_epoch_start(loop)``;
- ``on_sync(loop, synced)``: the losses of the steps since the last host sync reached the
  host (every step on CPU, every 20 on CUDA, and whenever a hook calls ``loop.sync()``);
- ``on_step(loop)``: after every step, at a consistent point (a KeyboardInterrupt raised
  here is handled like Ctrl-C: a checkpoint is written);
- ``on_epoch_end(loop, row)``: after every epoch (``loop.pos`` already counts it, the
  scheduler has stepped), ``row`` is its train_log.csv row;
- ``on_interrupt(loop)``: a KeyboardInterrupt stopped the loop; ``loop.safe`` says whether
  it came at a consistent point;
- ``on_end(loop, summary)``: finished (``summary``: what train_done.json holds); the final
  weights and train_done.json are written by :class:`FinalWeights`, which
  :func:`standard_hooks` puts before every hook that may read them;
- ``close(loop)``: always, last.

What a hook sees is :class:`rankbench.training.loop.Loop`. Under DDP every rank runs every
hook; only rank 0 (``loop.main``) writes files, and a decision that makes ranks
communicate (stop, checkpoint now) is agreed through ``loop.vote`` / ``loop.agreed``.
"""
from __future__ import annotations

import contextlib
import glob
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from rankbench import distributed
from rankbench._io import atomic_path, write_json
from rankbench.rundir import RunDir
from rankbench.training.checkpoint import checkpoint_state, save_checkpoint, weights_finite
from rankbench.training.csvlog import write_log

if TYPE_CHECKING:
    from rankbench.training.loop import Loop

__all__ = ["standard_hooks", "Hook", "Synced", "TrainingDivergedError", "DivergenceGuard", "Progress", "CsvLog",
           "Checkpointer", "FinalWeights", "Callbacks", "Interrupts"]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, message: str, *, epoch: int, step: int | None):
        super().__init__(message)
        self.epoch, self.step = epoch, step


@dataclass(frozen=True)
class Synced:
    """Host values of the steps ``first + 1 .. first + len(losses)`` of the current epoch:
    mean loss, number correct and batch size per step (global batch under DDP)."""

    first: int
    losses: list[float]
    correct: list[int]
    sizes: list[int]


class Hook:
    """One concern of the training loop; override the events it needs (see the module doc)."""

    def on_start(self, loop: "Loop") -> None:
        pass

    def on_epoch_start(self, loop: "Loop") -> None:
        pass

    def on_sync(self, loop: "Loop", synced: Synced) -> None:
        pass

    def on_step(self, loop: "Loop") -> None:
        pass

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        pass

    def on_interrupt(self, loop: "Loop") -> None:
        pass

    def on_end(self, loop: "Loop", summary: dict[str, Any]) -> None:
        pass

    def close(self, loop: "Loop") -> None:
        pass


def keep_msg(loop: "Loop") -> str:
    if loop.ckpt_path.exists():
        return f"The last good checkpoint is kept: {loop.ckpt_path}."
    return f"No checkpoint had been written yet in {loop.run_dir}."


def lower_lr_msg(lr: float) -> str:
    return (f"Lower the learning rate (e.g. --set train.lr={lr / 10:g}) or keep gradient clipping on "
            f"(train.grad_clip), and train again in a fresh run directory.")


class DivergenceGuard(Hook):
    """A NaN / inf loss stops training with :class:`TrainingDivergedError` before anything
    is logged or saved (first in the hook list)."""

    def on_sync(self, loop: "Loop", synced: Synced) -> None:
        for i, v in enumerate(synced.losses):
            if not math.isfinite(v):
                lr = loop.optimizer.param_groups[0]["lr"]
                step = synced.first + i + 1
                raise TrainingDivergedError(
                    f"training diverged: the loss is {v} at epoch {loop.pos.epoch + 1}/{loop.epochs}, step "
                    f"{step}/{loop.steps_per_epoch} (lr {lr:.4g}). {keep_msg(loop)} {lower_lr_msg(loop.tcfg.lr)}",
                    epoch=loop.pos.epoch + 1, step=step)


class Progress(Hook):
    """A tqdm bar per epoch on a terminal; one line per epoch otherwise."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def on_epoch_start(self, loop: "Loop") -> None:
        if self.enabled and _isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=loop.steps_per_epoch, initial=loop.pos.step, unit="step", leave=True,
                            desc=f"epoch {loop.pos.epoch + 1}/{loop.epochs}", dynamic_ncols=True, mininterval=0.5)

    def on_sync(self, loop: "Loop", synced: Synced) -> None:
        if self.bar is not None:
            pos = loop.pos
            self.bar.update(len(synced.losses))
            self.bar.set_postfix(loss=f"{pos.loss_sum / max(pos.seen, 1):.3f}",
                                 acc=f"{pos.correct / max(pos.seen, 1):.3f}",
                                 img_s=f"{pos.seen / max(loop.epoch_wall(), 1e-9):.0f}", refresh=False)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        self.close(loop)
        if self.enabled and not _isatty():
            print(f"epoch {row['epoch']}/{loop.epochs}: lr {row['lr']:.4g}  loss {row['train_loss']:.4f}  "
                  f"acc {row['train_acc']:.4f}  {row['images_per_s']:.0f} img/s  {row['wall_s']:.1f} s",
                  file=sys.stderr, flush=True)

    def on_interrupt(self, loop: "Loop") -> None:
        self.close(loop)

    def close(self, loop: "Loop") -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class CsvLog(Hook):
    """``train_log.csv``: rewritten after every epoch; on resume, cut back to the checkpoint's rows."""

    def on_start(self, loop: "Loop") -> None:
        if loop.main and loop.resumed:
            write_log(loop.log_path, loop.pos.log)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        if loop.main:
            write_log(loop.log_path, loop.pos.log)


class Checkpointer(Hook):
    """``checkpoints/last.pt`` (atomic): every ``every_epochs`` epochs and at the last; within
    an epoch at the first step boundary ``interval_s`` seconds or more after the previous
    checkpoint (0: never within an epoch); on an interrupt at a consistent point.

    A SIGKILL therefore loses at most ``interval_s`` seconds of training plus the step in
    progress (plus the write of the checkpoint it interrupts, if any). Under DDP the ranks
    agree on the time at their loss syncs (every step on CPU, every 20 steps on CUDA).
    Weights that are no longer finite are never saved."""

    def __init__(self, every_epochs: int, interval_s: float):
        self.every, self.interval = every_epochs, interval_s
        self._last = time.monotonic()
        self._due_at_epoch_end = False

    def on_start(self, loop: "Loop") -> None:
        if loop.main:  # temporary files of writes a SIGKILL interrupted
            for tmp in glob.glob(str(loop.ckpt_path.parent / f".{loop.ckpt_path.name}.*")):
                with contextlib.suppress(OSError):
                    os.remove(tmp)
        self._last = time.monotonic()
        loop.vote("checkpoint", self._due)

    def _due(self) -> bool:
        return self.interval > 0 and time.monotonic() - self._last >= self.interval

    def on_step(self, loop: "Loop") -> None:
        due = loop.agreed("checkpoint", self._due())
        if loop.pos.step >= loop.steps_per_epoch:  # the epoch's end is next: save there
            self._due_at_epoch_end = due
        elif due:
            loop.sync()
            self.save(loop)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        epoch = loop.pos.epoch
        if epoch % self.every == 0 or epoch == loop.epochs or self._due_at_epoch_end:
            self.save(loop)
        self._due_at_epoch_end = False

    def on_interrupt(self, loop: "Loop") -> None:
        if loop.safe:
            loop.sync()  # raises TrainingDivergedError (and saves nothing) on a bad loss
            self.save(loop)
            loop.say(f"interrupted: checkpoint saved {loop.where()} in {loop.ckpt_path}")
        else:
            loop.say(f"interrupted mid-step: the previous checkpoint in {loop.ckpt_path} is kept")

    def save(self, loop: "Loop") -> None:
        if not weights_finite(loop.base):  # same weights on every rank: all raise alike
            raise TrainingDivergedError(
                f"training diverged {loop.where()}: the weights are no longer finite. {keep_msg(loop)} "
                f"{lower_lr_msg(loop.tcfg.lr)}", epoch=loop.pos.epoch + 1, step=loop.pos.step or None)
        if loop.main:
            save_checkpoint(loop.ckpt_path, checkpoint_state(
                loop.base, loop.optimizer, loop.scheduler, position=loop.position_dict(),
                sampler_rng=loop.sampler_rng, fingerprint=loop.fingerprint, sampler=loop.arch_sampler))
        distributed.barrier()
        self._last = time.monotonic()


class FinalWeights(Hook):
    """The final weights (``run_dir/<name>``, a state dict on CPU) and then ``train_done.json``
    (the summary, with ``"weights": name``), both atomic, rank 0 only; every rank returns once
    they exist. Without this hook a training writes neither (a caller keeping the weights
    itself), and :func:`~rankbench.train.fit` cannot tell later that it finished."""

    def __init__(self, name: str = RunDir.SUPERNET):
        self.name = name

    def on_end(self, loop: "Loop", summary: dict[str, Any]) -> None:
        summary["weights"] = self.name
        if loop.main:
            state = {k: v.detach().cpu() for k, v in loop.base.state_dict().items()}
            with atomic_path(loop.run_dir / self.name, suffix=".pt") as tmp:
                torch.save(state, tmp)
            write_json(loop.run_dir / RunDir.DONE, summary)
        distributed.barrier()  # the others return once the weights exist


class Callbacks(Hook):
    """``fit``'s ``on_step(epoch, step)`` and ``on_epoch_end(epochs_done, row)`` functions."""

    def __init__(self, on_step: Callable[[int, int], None] | None = None,
                 on_epoch_end: Callable[[int, dict[str, float]], None] | None = None):
        self.step_fn, self.epoch_fn = on_step, on_epoch_end

    def on_step(self, loop: "Loop") -> None:
        if self.step_fn is not None:
            self.step_fn(loop.pos.epoch, loop.pos.step)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        if self.epoch_fn is not None:
            self.epoch_fn(loop.pos.epoch, row)


class Interrupts(Hook):
    """SIGINT / SIGTERM become a KeyboardInterrupt at the next step boundary (last in the
    hook list, so the others have seen the step); a second signal raises at once. Under DDP
    a signal is acted on once every rank knows of it (agreed at the next loss sync), so all
    ranks stop after the same step. Handlers are installed only in the main thread
    (Python's rule) and restored at the end."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._old: dict[int, Any] = {}

    def on_start(self, loop: "Loop") -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    self._old[sig] = signal.signal(sig, self._handle)
        loop.vote("stop", lambda: self.pending is not None)

    def _handle(self, signum, frame) -> None:
        if self.pending is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.pending = signum

    def _check(self, loop: "Loop") -> None:
        if loop.agreed("stop", self.pending is not None):
            raise KeyboardInterrupt(signal.Signals(self.pending).name if self.pending is not None else "signal")

    def on_step(self, loop: "Loop") -> None:
        self._check(loop)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        self._check(loop)

    def close(self, loop: "Loop") -> None:
        for sig, old in self._old.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)
        self._old.clear()


def standard_hooks(cfg: Any, run_dir: Any, *, progress: bool = True, space: Any = None, extra: Sequence[Hook] = (),
                   on_step: Callable[[int, int], None] | None = None,
                   on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
                   weights_name: str = RunDir.SUPERNET) -> list[Hook]:
    """The hooks of a rankbench training, in order: divergence guard, progress (rank 0 only),
    CSV log, checkpoints (``cfg.train`` cadence), the final weights (``weights_name``) and
    train_done.json, TensorBoard (``cfg.train.tensorboard``; the sampled archs counted by
    ``space``), then ``extra``, then the callbacks ``on_step`` / ``on_epoch_end`` and the signal
    handling. What :func:`rankbench.train.fit` runs when its caller passes no hooks of its own."""
    hooks: list[Hook] = [DivergenceGuard(), Progress(progress and distributed.is_main()), CsvLog(),
                         Checkpointer(cfg.train.checkpoint_every, cfg.train.checkpoint_interval_s),
                         FinalWeights(weights_name)]
    if cfg.train.tensorboard:
        from rankbench.training.tensorboard import TensorBoard  # optional dependency

        hooks.append(TensorBoard(RunDir(run_dir).tensorboard_dir, space))
    return hooks + [*extra, Callbacks(on_step, on_epoch_end), Interrupts()]
