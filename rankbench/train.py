"""Resumable training of one-shot supernets (and of stand-alone networks, with the same loop).

:func:`fit` is the loop. It trains any ``model(x, arch)`` whose architecture for a step is
drawn by ``arch_sampler(rng)`` from a seeded :class:`random.Random`:

- a supernet: ``fit(net, lambda rng: net.space.sample_arch(rng, net.num_cells, per_cell), ...)``;
- a stand-alone network: wrap it so that it ignores ``arch`` and pass
  ``arch_sampler=lambda rng: None``. Give every training its own ``run_dir`` (the checkpoint
  and ``train_done.json`` are per directory); ``weights_name`` names the final weights.

Hyper-parameters (``cfg.train``, the public MixPath code's): SGD with momentum (no Nesterov),
weight decay on conv / linear weights only (not on BN parameters, not on biases), cosine
annealing of the learning rate to 0 over ``epochs``, stepped once per epoch (as the public
code, DARTS style), gradient-norm clipping, cross-entropy. Batches come from
:class:`rankbench.data.BatchLoader` (crop / flip / cutout from ``cfg.data``).

Gradients are reset with ``zero_grad(set_to_none=True)``: a parameter the sampled subnet does
not use keeps ``grad = None``, and SGD skips it entirely (no momentum, no weight decay). For a
supernet (a model with ``used_parameters(arch)``) the step zeroes, clips and steps only the
subnet's parameters: the same update without iterating thousands of unused tensors.

Determinism: the weights are initialised by the caller (``train_supernet`` seeds torch
first); the loop seeds torch / python / numpy, draws architectures from
``random.Random(seed)``, and the loader's order and augmentation are functions of
(seed, epoch, batch). Same seed, same device, same software -> identical weights.

Checkpoints (``checkpoints/last.pt``, written atomically) hold model, optimizer, scheduler,
position (epoch, step within the epoch), every RNG state, the epoch accumulators and the log.
They are written every ``checkpoint_every`` epochs and when training is interrupted (Ctrl-C,
SIGTERM). A signal is acted on at the next step boundary, so the saved state is always
consistent and a resumed run ends with weights identical to an uninterrupted one, also when
it was stopped mid-epoch. A second signal stops at once and keeps the previous checkpoint.

A NaN / inf loss (or non-finite weights at a checkpoint) raises
:class:`TrainingDivergedError`; the last good checkpoint is never overwritten.

The step (:func:`train_step`) and the checkpoint I/O (:func:`save_checkpoint`,
:func:`load_checkpoint`, :func:`checkpoint_state`, :func:`restore_checkpoint`) are small
functions so that a distributed (DDP) driver can reuse them; only rank 0 should write.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rankbench import distributed, rundir
from rankbench._io import atomic_path, write_json
from rankbench.config import RunConfig, TrainConfig

__all__ = [
    "fit", "train_supernet", "load_supernet", "TrainingDivergedError", "resolve_device",
    "describe_device", "param_groups", "make_optimizer", "make_scheduler", "make_train_loader",
    "train_step", "checkpoint_state", "restore_checkpoint", "save_checkpoint", "load_checkpoint",
    "read_log", "CHECKPOINT", "DONE", "WEIGHTS", "LOG", "LOG_COLUMNS",
]

log = logging.getLogger(__name__)

#: run-directory file names (see rankbench.rundir)
CHECKPOINT = Path("checkpoints") / "last.pt"
DONE = "train_done.json"
WEIGHTS = "supernet.pt"
LOG = "train_log.csv"
#: train_log.csv columns: 1-based epoch, its learning rate, mean loss and accuracy (fraction)
#: over the epoch's training batches, throughput, and the epoch's wall-clock seconds
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "images_per_s", "wall_s")
CHECKPOINT_FORMAT = 1

#: an architecture sampler: draws one step's architecture from a seeded Random
ArchSampler = Callable[[random.Random], Any]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, message: str, *, epoch: int, step: int | None):
        super().__init__(message)
        self.epoch, self.step = epoch, step


# ---------------------------------------------------------------------------------------------
# device, optimizer, schedule, data


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available here; use auto or cpu")
    return dev


def describe_device(device: torch.device) -> str:
    """A human-readable device name for versions.json, e.g. ``cuda:0 (NVIDIA H100)``."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD groups: weights of conv / linear layers get ``weight_decay``; everything else
    (BatchNorm gamma / beta, biases, any other parameter) gets none."""
    decay_ids: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)) and mod.weight is not None:
            decay_ids.add(id(mod.weight))
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if id(p) in decay_ids else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, tcfg: TrainConfig) -> torch.optim.SGD:
    """SGD(lr, momentum, nesterov=False) over :func:`param_groups`."""
    return torch.optim.SGD(param_groups(model, tcfg.weight_decay), lr=tcfg.lr, momentum=tcfg.momentum,
                           nesterov=False)


def make_scheduler(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from ``lr`` to 0 over ``epochs``, stepped once per epoch."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=0.0)


def make_train_loader(images_set, cfg: RunConfig, device: torch.device):
    """The training BatchLoader: shuffled, augmented per ``cfg.data``, seeded by ``cfg.train.seed``;
    on CUDA the uint8 images live on the GPU and are augmented there."""
    from rankbench.data import BatchLoader

    d = cfg.data
    cuda = device.type == "cuda"
    return BatchLoader(images_set.images, images_set.labels, d.batch_size, shuffle=True, augment=True,
                       crop_padding=d.crop_padding, flip=d.flip, cutout=d.cutout, seed=cfg.train.seed,
                       drop_last=False, device=device, pin_memory=cuda, preload=cuda)


# ---------------------------------------------------------------------------------------------
# one step


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, arch: Any,
               *, grad_clip: float = 0.0, autocast: contextlib.AbstractContextManager | None = None,
               params: list[nn.Parameter] | None = None, loss_scale: float = 1.0,
               used: list[nn.Parameter] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``arch`` on a batch, backward, clip, SGD step. Returns (loss, number correct)
    as detached 0-d tensors (no host sync). Unused parameters keep ``grad = None``.

    ``loss_scale`` multiplies the loss before backward only (a data-parallel rank's weight).
    ``used``: the parameters ``arch`` uses (a supernet's ``used_parameters``). Then only they
    are zeroed, clipped and stepped (and, under :func:`~rankbench.distributed.wrap_ddp`,
    all-reduced), and their gradients are released after the step: the
    same update, but its cost no longer grows with the supernet's unused parameter tensors
    (spos with 9 cells has ~5,600; iterating them costs ~15 ms per step)."""
    if used is None:
        optimizer.zero_grad(set_to_none=True)
    else:
        for p in used:
            p.grad = None
    reducer = distributed.grad_reducer(model)
    if reducer is not None:  # under DDP: all-reduce only the gradients of ``used``
        reducer.set_used(used)
    with autocast if autocast is not None else contextlib.nullcontext():
        logits = model(x, arch)
    loss = F.cross_entropy(logits.float(), y)
    (loss * loss_scale if loss_scale != 1.0 else loss).backward()
    if grad_clip > 0:
        clip = used if used is not None else params if params is not None else model.parameters()
        torch.nn.utils.clip_grad_norm_(clip, grad_clip)
    if used is None:
        optimizer.step()
    else:
        _step_only(optimizer, used)
        for p in used:
            p.grad = None
    correct = (logits.detach().argmax(1) == y).sum()
    return loss.detach(), correct


_GROUP_OF: "weakref.WeakKeyDictionary[torch.optim.Optimizer, dict[int, int]]" = weakref.WeakKeyDictionary()


def _step_only(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    """``optimizer.step()`` over ``params`` only: each group's list is narrowed for the call
    and put back (the optimizer's state is per parameter, so nothing else changes)."""
    group_of = _GROUP_OF.get(optimizer)
    n = sum(len(g["params"]) for g in optimizer.param_groups)
    if group_of is None or len(group_of) != n:
        group_of = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
        _GROUP_OF[optimizer] = group_of
    narrowed: list[list[nn.Parameter]] = [[] for _ in optimizer.param_groups]
    for p in params:
        i = group_of.get(id(p))
        if i is not None:
            narrowed[i].append(p)
    full = [g["params"] for g in optimizer.param_groups]
    try:
        for g, ps in zip(optimizer.param_groups, narrowed):
            g["params"] = ps
        optimizer.step()
    finally:
        for g, ps in zip(optimizer.param_groups, full):
            g["params"] = ps


# ---------------------------------------------------------------------------------------------
# checkpoints


@dataclass
class _Position:
    """Where training stands: ``epoch`` epochs done, ``step`` steps into the next one."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0  # over the current epoch's checked steps
    correct: int = 0
    seen: int = 0
    elapsed: float = 0.0  # seconds spent in the current epoch by earlier sessions
    log: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "loss_sum": self.loss_sum, "correct": self.correct,
                "seen": self.seen, "elapsed": self.elapsed, "log": [dict(r) for r in self.log]}


_WRAPPERS = {"OptimizedModule": "_orig_mod", "DistributedDataParallel": "module", "DataParallel": "module"}


def _unwrap(model: nn.Module) -> nn.Module:
    """The module that owns the weights, under torch.compile's / DDP's wrapper: checkpoints
    and final weights hold its state_dict (no wrapper prefixes)."""
    while type(model).__name__ in _WRAPPERS:
        model = getattr(model, _WRAPPERS[type(model).__name__])
    return model


def _rng_states(sampler_rng: random.Random) -> dict[str, Any]:
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], [int(v) for v in np_state[1]], int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
        "sampler": sampler_rng.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any], sampler_rng: random.Random) -> None:
    random.setstate(_tuples(states["python"]))
    n = states["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(states["torch"])
    sampler_rng.setstate(_tuples(states["sampler"]))
    if "cuda" in states and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs now: keep the fresh seeds
            torch.cuda.set_rng_state_all(states["cuda"])


def _tuples(x: Any) -> Any:
    """random.setstate wants tuples all the way down."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, *, position: dict[str, Any],
                     sampler_rng: random.Random, fingerprint: str) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimizer (momentum), scheduler,
    position (epochs done, steps into the next, epoch accumulators, log) and RNG states."""
    return {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "position": position,
        "rng": _rng_states(sampler_rng),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def restore_checkpoint(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                       sampler_rng: random.Random) -> dict[str, Any]:
    """Load a :func:`checkpoint_state` into live objects; returns its position dict."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}; "
                         f"it was written by another rankbench version")
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"], sampler_rng)
    return state["position"]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """torch.save to a temporary file beside ``path``, then rename: never half-written."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); it is damaged: "
                         f"delete it to start that training again") from None


def _weights_finite(model: nn.Module) -> bool:
    flags = [t.isfinite().all() for t in _unwrap(model).state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


# ---------------------------------------------------------------------------------------------
# the log


def _fmt(col: str, v: float) -> str:
    if col == "epoch":
        return str(int(v))
    return {"lr": "{:.6g}", "train_loss": "{:.6f}", "train_acc": "{:.6f}", "images_per_s": "{:.1f}",
            "wall_s": "{:.3f}"}[col].format(v)


def _write_log(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LOG_COLUMNS)
        for r in rows:
            w.writerow([_fmt(c, r[c]) for c in LOG_COLUMNS])


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """train_log.csv as a list of {column: number}."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------
# signals


class _Interrupts:
    """Turn SIGINT / SIGTERM into a KeyboardInterrupt at the next step boundary (``check``).

    A second signal before that raises at once. Handlers are installed only in the main
    thread (Python's rule) and restored on exit.
    """

    def __init__(self) -> None:
        self.pending: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)

    def _handle(self, signum, frame) -> None:
        if self.pending is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.pending = signum

    def check(self) -> None:
        if self.pending is not None:
            raise KeyboardInterrupt(signal.Signals(self.pending).name)


# ---------------------------------------------------------------------------------------------
# the loop


def fit(model: nn.Module, arch_sampler: ArchSampler, splits, cfg: RunConfig, run_dir: str | os.PathLike, *,
        resume: bool = False, progress: bool = True, log_name: str = LOG, weights_name: str = WEIGHTS,
        on_step: Callable[[int, int], None] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train ``model`` on ``splits.train`` for ``cfg.train.epochs`` epochs; return the summary
    also written to ``run_dir/train_done.json``.

    ``model(x, arch)`` with ``arch = arch_sampler(rng)`` drawn per step (a stand-alone network:
    a wrapper that ignores ``arch``, and ``lambda rng: None``). The model is moved to the
    training device and trained in place.

    ``resume=True`` continues from ``run_dir/checkpoints/last.pt`` (or starts afresh when there
    is none); a finished run is not trained again: its weights are loaded and its summary
    returned with ``"reused": True``. ``resume=False`` refuses a directory that already holds
    a checkpoint or finished weights.

    ``on_step(epoch, step)`` is called after every step (0-based epoch, steps done in it) and
    ``on_epoch_end(epochs_done, log_row)`` after every epoch, both at points where the state
    is consistent: raising KeyboardInterrupt from them behaves exactly like Ctrl-C (a
    checkpoint is written, then the interrupt propagates). Tests use them to simulate
    interruptions.

    Under ``torch.distributed`` (``torchrun``; see :mod:`rankbench.distributed`) every rank
    calls ``fit`` alike: the model is wrapped in DDP, each rank trains on its slice of every
    global batch (``data.batch_size`` is the global batch), the log holds global-batch
    figures, and only rank 0 writes files.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.train
    if tcfg.epochs < 1:
        raise ValueError(f"train.epochs must be >= 1, got {tcfg.epochs}")
    if tcfg.checkpoint_every < 1:
        raise ValueError(f"train.checkpoint_every must be >= 1, got {tcfg.checkpoint_every}")
    ckpt_path, done_path = run_dir / CHECKPOINT, run_dir / DONE
    weights_path, log_path = run_dir / weights_name, run_dir / log_name
    fingerprint = cfg.training_fingerprint()
    base = _unwrap(model)
    ddp = distributed.is_distributed()
    main = distributed.is_main()
    progress = progress and main
    say = _sayer(progress)

    if done_path.exists() and weights_path.exists():
        done = json.loads(done_path.read_text())
        if done.get("fingerprint", fingerprint) != fingerprint:
            raise ValueError(f"{run_dir} holds a finished training of another config (fingerprint "
                             f"{done.get('fingerprint')} vs {fingerprint}); use another directory")
        if not resume:
            raise ValueError(f"{run_dir} already holds a finished training; pass resume=True "
                             f"(rankbench train --resume) to reuse it, or use another directory")
        base.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        say(f"training in {run_dir} already finished ({done.get('epochs')} epochs): nothing to do")
        return {**done, "reused": True}
    if ckpt_path.exists() and not resume:
        raise ValueError(f"{run_dir} holds an interrupted training ({ckpt_path}); pass resume=True "
                         f"(rankbench train --resume) to continue it, or use another directory")

    device = resolve_device(tcfg.device)
    cuda = device.type == "cuda"
    if not cuda and tcfg.num_threads > 0:
        torch.set_num_threads(tcfg.num_threads)
    torch.manual_seed(tcfg.seed)
    random.seed(tcfg.seed)
    np.random.seed(tcfg.seed % 2**32)
    sampler_rng = random.Random(tcfg.seed)

    model.to(device)
    channels_last = tcfg.channels_last  # also on CPU: ~1.6x faster steps for these small-channel nets
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, tcfg)
    scheduler = make_scheduler(optimizer, tcfg.epochs)
    loader = make_train_loader(splits.train, cfg, device)
    if ddp:  # this rank's slice of every global batch, with its loss weight
        loader = distributed.ShardedBatchLoader(loader)
    steps_per_epoch = len(loader)

    pos = _Position()
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state.get("fingerprint") != fingerprint:
            raise ValueError(f"checkpoint {ckpt_path} belongs to another training config (fingerprint "
                             f"{state.get('fingerprint')} vs {fingerprint}); use another directory")
        p = restore_checkpoint(state, base, optimizer, scheduler, sampler_rng)
        del state
        pos = _Position(**p)
        say(f"resuming {run_dir} {_where(pos, tcfg.epochs, steps_per_epoch)}")
        if main:
            _write_log(log_path, pos.log)  # drop rows written after the checkpoint

    net = model  # forward through the caller's module (a DDP wrapper must see the forward)
    if ddp:
        net = distributed.wrap_ddp(model)
    if cuda and tcfg.compile:
        # one graph per distinct subnet: expect recompiles during the first epoch(s)
        net = torch.compile(net)
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda and tcfg.amp else None)
    params = [p for p in model.parameters() if p.requires_grad]
    used_of = getattr(base, "used_parameters", None)  # a supernet: step only the subnet's weights
    check_every = 20 if cuda else 1  # steps between host syncs (NaN check, progress bar)
    model.train()

    def save(position: _Position) -> None:
        if not _weights_finite(base):  # same weights on every rank: all raise alike
            raise TrainingDivergedError(
                f"training diverged before epoch {position.epoch + 1}: the weights are no longer finite. "
                f"{_keep_msg(ckpt_path, run_dir)} {_lower_lr_msg(tcfg.lr)}", epoch=position.epoch + 1, step=None)
        if main:
            save_checkpoint(ckpt_path, checkpoint_state(base, optimizer, scheduler, position=position.to_dict(),
                                                        sampler_rng=sampler_rng, fingerprint=fingerprint))
        distributed.barrier()

    pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []
    stop_agreed = False  # distributed: some rank got a signal (agreed at the last flush)

    def flush() -> None:
        """Sync the pending steps' losses: check them, add them to the epoch's totals.
        Distributed: sums them over the ranks (global batch) together with a stop flag."""
        nonlocal stop_agreed
        if not pending:
            return
        if ddp:
            stats = torch.stack([torch.stack([p[0].double() * p[2], p[1].double(),
                                              torch.full((), float(p[2]), dtype=torch.float64, device=p[0].device)])
                                 for p in pending])
            flag = float(interrupts.pending is not None)
            stats = torch.cat([stats.flatten(), torch.full((1,), flag, dtype=torch.float64, device=stats.device)])
            stats = distributed.all_reduce_sum(stats).cpu()
            stop_agreed = bool(stats[-1] > 0)
            stats = stats[:-1].view(-1, 3)
            sizes = stats[:, 2].round().long().tolist()
            losses = (stats[:, 0] / stats[:, 2]).tolist()
            correct = stats[:, 1].round().long().tolist()
            pending[:] = [(None, None, n) for n in sizes]
        else:
            losses = torch.stack([p[0] for p in pending]).float().tolist()
            correct = torch.stack([p[1] for p in pending]).tolist()
        first = pos.step - len(pending)
        for i, (v, c, (_, _, n)) in enumerate(zip(losses, correct, pending)):
            if not math.isfinite(v):
                pending.clear()
                lr = optimizer.param_groups[0]["lr"]
                raise TrainingDivergedError(
                    f"training diverged: the loss is {v} at epoch {pos.epoch + 1}/{tcfg.epochs}, step "
                    f"{first + i + 1}/{steps_per_epoch} (lr {lr:.4g}). {_keep_msg(ckpt_path, run_dir)} "
                    f"{_lower_lr_msg(tcfg.lr)}", epoch=pos.epoch + 1, step=first + i + 1)
            pos.loss_sum += v * n
            pos.correct += int(c)
            pos.seen += n
        pending.clear()

    def check_interrupts() -> None:
        # distributed: act on a signal only once every rank knows of it (flush), so that all
        # ranks stop after the same step
        if not ddp:
            interrupts.check()
        elif stop_agreed:
            raise KeyboardInterrupt("signal")

    at_safe_point = False
    t_seg = time.perf_counter()
    bar = None
    interrupts = _Interrupts()
    try:
        with interrupts:
            while pos.epoch < tcfg.epochs:
                loader.set_epoch(pos.epoch)
                lr = optimizer.param_groups[0]["lr"]
                bar = _bar(progress, steps_per_epoch, pos, tcfg.epochs)
                t_seg = time.perf_counter()
                for batch in loader.batches(pos.step):
                    x, y = batch[0], batch[1]
                    loss_scale = batch[2] if ddp else 1.0
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    arch = arch_sampler(sampler_rng)
                    used = [p for _, p in used_of(arch) if p.requires_grad] if used_of is not None else None
                    loss, correct = train_step(net, optimizer, x, y, arch, grad_clip=tcfg.grad_clip,
                                               autocast=autocast, params=params, loss_scale=loss_scale, used=used)
                    pending.append((loss, correct, int(y.shape[0])))
                    pos.step += 1
                    if len(pending) >= check_every or pos.step == steps_per_epoch:
                        n_new = len(pending)
                        flush()
                        if bar is not None:
                            bar.update(n_new)
                            elapsed = pos.elapsed + time.perf_counter() - t_seg
                            bar.set_postfix(loss=f"{pos.loss_sum / max(pos.seen, 1):.3f}",
                                            acc=f"{pos.correct / max(pos.seen, 1):.3f}",
                                            img_s=f"{pos.seen / max(elapsed, 1e-9):.0f}", refresh=False)
                    at_safe_point = True
                    if on_step is not None:
                        on_step(pos.epoch, pos.step)
                    check_interrupts()
                    at_safe_point = False
                flush()
                wall = pos.elapsed + time.perf_counter() - t_seg
                row = {"epoch": pos.epoch + 1, "lr": lr, "train_loss": pos.loss_sum / max(pos.seen, 1),
                       "train_acc": pos.correct / max(pos.seen, 1), "images_per_s": pos.seen / max(wall, 1e-9),
                       "wall_s": wall}
                if bar is not None:
                    bar.close()
                    bar = None
                scheduler.step()
                pos = _Position(epoch=pos.epoch + 1, log=pos.log + [row])
                t_seg = time.perf_counter()
                if main:
                    _write_log(log_path, pos.log)
                if pos.epoch % tcfg.checkpoint_every == 0 or pos.epoch == tcfg.epochs:
                    save(pos)
                if progress and not _isatty():
                    print(_row_line(row, tcfg.epochs), file=sys.stderr, flush=True)
                at_safe_point = True
                if on_epoch_end is not None:
                    on_epoch_end(pos.epoch, row)
                check_interrupts()
                at_safe_point = False
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if at_safe_point:
            flush()  # raises TrainingDivergedError (and saves nothing) on a bad loss
            pos.elapsed += time.perf_counter() - t_seg
            save(pos)
            say(f"interrupted: checkpoint saved {_where(pos, tcfg.epochs, steps_per_epoch)} in {ckpt_path}")
        else:
            say(f"interrupted mid-step: the previous checkpoint in {ckpt_path} is kept")
        raise
    finally:
        if bar is not None:
            bar.close()

    # finished: final weights and the summary
    if main:
        state = {k: v.detach().cpu() for k, v in base.state_dict().items()}
        with atomic_path(weights_path, suffix=".pt") as tmp:
            torch.save(state, tmp)
    wall = sum(r["wall_s"] for r in pos.log)
    images = sum(r["images_per_s"] * r["wall_s"] for r in pos.log)
    last = pos.log[-1]
    data_info = splits.describe() if hasattr(splits, "describe") else {}
    data_info["resolution"] = int(splits.train.images.shape[-1])
    done = {
        "epochs": tcfg.epochs,
        "steps_per_epoch": steps_per_epoch,
        "wall_s": round(wall, 3),
        "train_loss": last["train_loss"],
        "train_acc": last["train_acc"],
        "images_per_s": round(images / max(wall, 1e-9), 1),
        "epoch_s": round(wall / len(pos.log), 3),
        "device": describe_device(device),
        "parameters": sum(p.numel() for p in base.parameters()),
        "fingerprint": fingerprint,
        "weights": weights_name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": data_info,
    }
    if ddp:
        done["distributed"] = {"world_size": distributed.world_size(), "backend": distributed.backend(),
                               "global_batch": cfg.data.batch_size}
    if main:
        write_json(done_path, done)
    distributed.barrier()  # the others return once the weights exist
    return done


def _sayer(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        log.info(msg)
        if progress:
            print(msg, file=sys.stderr, flush=True)

    return say


def _where(pos: _Position, epochs: int, steps: int) -> str:
    if pos.step:
        return f"in epoch {pos.epoch + 1}/{epochs} after step {pos.step}/{steps}"
    return f"after epoch {pos.epoch}/{epochs}"


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _bar(progress: bool, total: int, pos: _Position, epochs: int):
    if not progress or not _isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=pos.step, desc=f"epoch {pos.epoch + 1}/{epochs}", unit="step",
                leave=True, dynamic_ncols=True, mininterval=0.5)


def _row_line(row: dict[str, float], epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}: lr {row['lr']:.4g}  loss {row['train_loss']:.4f}  "
            f"acc {row['train_acc']:.4f}  {row['images_per_s']:.0f} img/s  {row['wall_s']:.1f} s")


def _keep_msg(ckpt_path: Path, run_dir: Path) -> str:
    if ckpt_path.exists():
        return f"The last good checkpoint is kept: {ckpt_path}."
    return f"No checkpoint had been written yet in {run_dir}."


def _lower_lr_msg(lr: float) -> str:
    return (f"Lower the learning rate (e.g. --set train.lr={lr / 10:g}) or keep gradient clipping on "
            f"(train.grad_clip), and train again in a fresh run directory.")


# ---------------------------------------------------------------------------------------------
# supernets


def _check_sampling(sampling: str) -> bool:
    if sampling not in ("shared", "per_cell"):
        raise ValueError(f"train.sampling must be 'shared' or 'per_cell', got {sampling!r}")
    return sampling == "per_cell"


def train_supernet(cfg: RunConfig, run_dir: str | os.PathLike | None = None, *, resume: bool = False,
                   progress: bool = True, runs_root: str | os.PathLike | None = None) -> Path:
    """Train the supernet ``cfg.model`` describes into ``run_dir`` (default
    ``rundir.run_dir_for(cfg, runs_root)``) and return that directory.

    A directory that already holds a finished training with the same training fingerprint is
    returned at once (reused). ``resume=True`` continues an interrupted one.
    """
    from rankbench.data.splits import load_splits
    from rankbench.supernet import supernet_from_config

    run_dir = Path(run_dir) if run_dir is not None else rundir.run_dir_for(cfg, runs_root)
    if rundir.is_finished(run_dir):
        old = rundir.load_config(run_dir)
        if old.training_fingerprint() != cfg.training_fingerprint():
            raise ValueError(f"{run_dir} holds a finished training of another config (fingerprint "
                             f"{old.training_fingerprint()} vs {cfg.training_fingerprint()}); use another "
                             f"--out or delete that directory")
        _sayer(progress)(f"reusing finished run {run_dir} (same training config)")
        return run_dir
    if (run_dir / CHECKPOINT).exists() and not resume:
        raise ValueError(f"{run_dir} holds an interrupted training; add --resume (resume=True) to continue "
                         f"it, or delete that directory to start again")
    per_cell = _check_sampling(cfg.train.sampling)
    device = resolve_device(cfg.train.device)
    if device.type == "cpu" and cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    torch.manual_seed(cfg.train.seed)  # the initial weights
    net = supernet_from_config(cfg.model)
    main = distributed.is_main()
    with distributed.main_first():  # rank 0 decodes (and caches) the data, writes the run dir
        splits = load_splits(cfg.data, progress=progress and main)
        if main:
            where = describe_device(device) + (f", {distributed.describe()}" if distributed.is_distributed() else "")
            rundir.init_run_dir(run_dir, cfg, device=where)
    space, num_cells = net.space, net.num_cells
    fit(net, lambda rng: space.sample_arch(rng, num_cells, per_cell), splits, cfg, run_dir,
        resume=resume, progress=progress)
    return run_dir


def load_supernet(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """(trained supernet in eval mode on ``map_location``, its RunConfig) from a finished run."""
    from rankbench.supernet import supernet_from_config

    run_dir = Path(run_dir)
    cfg = rundir.load_config(run_dir)
    weights = run_dir / WEIGHTS
    if not weights.exists():
        if (run_dir / CHECKPOINT).exists():
            done = len(read_log(run_dir / LOG)) if (run_dir / LOG).exists() else "?"
            raise FileNotFoundError(
                f"training in {run_dir} has not finished ({done} of {cfg.train.epochs} epochs); finish it "
                f"with `rankbench train --out {run_dir} --resume` (same preset and options)")
        raise FileNotFoundError(f"{run_dir} has no trained supernet ({WEIGHTS}); train it with `rankbench train`")
    net = supernet_from_config(cfg.model)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.to(map_location).eval(), cfg
