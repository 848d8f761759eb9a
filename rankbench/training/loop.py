"""The training loop: :class:`Loop` holds the live state and runs one step; :func:`fit` is
the loop itself, and hands every other concern to hooks (:mod:`rankbench.training.hooks`)."""
from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from rankbench import distributed
from rankbench.numerics import setup_compute, weights_digest
from rankbench.config import RunConfig
from rankbench.rundir import RunDir
from rankbench.training.checkpoint import Position, load_checkpoint, restore_checkpoint, unwrap
from rankbench.training.hooks import FinalWeights, Hook, Synced, standard_hooks
from rankbench.training.step import (describe_device, make_optimizer, make_scheduler, make_train_loader,
                                     resolve_device, train_step)

__all__ = ["fit", "Loop", "ArchSampler", "CHECKPOINT", "DONE", "WEIGHTS", "LOG"]

log = logging.getLogger("rankbench.train")

#: run-directory file names (owned by rankbench.rundir.RunDir)
CHECKPOINT = RunDir.CHECKPOINT
DONE = RunDir.DONE
WEIGHTS = RunDir.SUPERNET
LOG = RunDir.TRAIN_LOG

#: an architecture sampler: draws one step's architecture from a seeded Random
ArchSampler = Callable[[random.Random], Any]


def fit(model: nn.Module, arch_sampler: ArchSampler, splits, cfg: RunConfig, run_dir: str | os.PathLike, *,
        resume: bool = False, progress: bool = True, log_name: str = LOG, weights_name: str | None = None,
        on_step: Callable[[int, int], None] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        space: Any = None, hooks: Sequence[Hook] | None = None, fingerprint: str | None = None) -> dict[str, Any]:
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
    checkpoint is written, then the interrupt propagates). ``hooks``: the loop's concerns, as
    the caller chooses them (:class:`~rankbench.training.hooks.Hook` objects, run in order);
    None: :func:`~rankbench.training.hooks.standard_hooks` (divergence guard, progress, CSV log,
    checkpoints, final weights, TensorBoard, ``on_step`` / ``on_epoch_end``, signals). Given
    hooks, the callbacks belong in them (``standard_hooks(..., on_step=...)``), and so does the
    saving of the final weights and train_done.json
    (:class:`~rankbench.training.hooks.FinalWeights`, whose name is then ``weights_name``'s
    default; without it nothing is saved at the end). ``weights_name``: the final weights'
    file (default ``supernet.pt``), by which a finished run is recognised. ``space``: the search
    space ``arch_sampler`` draws from, if any (TensorBoard counts the sampled archs by its
    ``group_column``). ``fingerprint``: ``cfg``'s training fingerprint on this device, when the
    caller computed it (a plan); else computed here.

    Under ``torch.distributed`` (``torchrun``; see :mod:`rankbench.distributed`) every rank
    calls ``fit`` alike: the model is wrapped in DDP, each rank trains on its slice of every
    global batch (``data.batch_size`` is the global batch), the log holds global-batch
    figures, and only rank 0 writes files.
    """
    run_dir = Path(run_dir)
    if hooks is not None and (on_step is not None or on_epoch_end is not None):
        raise ValueError("fit: with hooks given, pass on_step / on_epoch_end inside them "
                         "(standard_hooks(..., on_step=...))")
    savers = [h for h in hooks or () if isinstance(h, FinalWeights)]
    if weights_name is None:
        weights_name = savers[0].name if savers else WEIGHTS
    elif any(h.name != weights_name for h in savers):
        raise ValueError(f"fit: weights_name={weights_name!r}, but the FinalWeights hook given saves "
                         f"{savers[0].name!r}; pass one name")
    if fingerprint is None:
        fingerprint = cfg.training_fingerprint()  # train.device's type, as Loop resolves it
    finished = _finished_run(model, fingerprint, run_dir, resume, weights_name, progress)
    if finished is not None:
        return finished
    loop = Loop(model, arch_sampler, splits, cfg, run_dir, resume=resume, progress=progress, log_name=log_name,
                fingerprint=fingerprint)
    if hooks is None:
        hooks = standard_hooks(cfg, run_dir, progress=progress, space=space, on_step=on_step,
                               on_epoch_end=on_epoch_end, weights_name=weights_name)
    loop.hooks = list(hooks)
    try:
        loop.fire("on_start")
        while loop.pos.epoch < loop.epochs:
            loop.start_epoch()
            loop.fire("on_epoch_start")
            for batch in loop.loader.batches(loop.pos.step):
                loop.step(batch)
                loop.fire("on_step", safe=True)
            row = loop.end_epoch()
            loop.fire("on_epoch_end", row, safe=True)
        summary = loop.summary(splits, weights_name)
        loop.fire("on_end", summary)
    except KeyboardInterrupt:
        loop.fire("on_interrupt", safe=loop.safe)  # safe: raised where a checkpoint resumes exactly
        raise
    finally:
        loop.fire("close")
    return summary


def _finished_run(model: nn.Module, fingerprint: str, run_dir: Path, resume: bool, weights_name: str,
                  progress: bool) -> dict[str, Any] | None:
    """A finished run's summary (its weights loaded into ``model``) when ``resume``; refuses a
    finished or interrupted run without ``resume``; None when there is training to do."""
    done_path, weights_path, ckpt_path = run_dir / DONE, run_dir / weights_name, run_dir / CHECKPOINT
    if done_path.exists() and weights_path.exists():
        done = json.loads(done_path.read_text())
        if done.get("fingerprint", fingerprint) != fingerprint:
            raise ValueError(f"{run_dir} holds a finished training of another config (fingerprint "
                             f"{done.get('fingerprint')} vs {fingerprint}); use another directory")
        if not resume:
            raise ValueError(f"{run_dir} already holds a finished training; pass resume=True "
                             f"(rankbench train --resume) to reuse it, or use another directory")
        unwrap(model).load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        _sayer(progress and distributed.is_main())(
            f"training in {run_dir} already finished ({done.get('epochs')} epochs): nothing to do")
        return {**done, "reused": True}
    if ckpt_path.exists() and not resume:
        raise ValueError(f"{run_dir} holds an interrupted training ({ckpt_path}); pass resume=True "
                         f"(rankbench train --resume) to continue it, or use another directory")
    return None


def _sayer(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        log.info(msg)
        if progress:
            print(msg, file=sys.stderr, flush=True)

    return say


class Loop:
    """The live state of one :func:`fit` call, as hooks see it.

    Read: ``cfg``, ``tcfg`` (``cfg.train``), ``run_dir``, ``ckpt_path``, ``log_path``,
    ``fingerprint``, ``model`` (the caller's), ``base`` (the module owning the weights),
    ``optimizer``, ``scheduler``, ``loader``, ``sampler_rng``, ``device``, ``epochs``,
    ``steps_per_epoch``, ``pos`` (:class:`~rankbench.training.checkpoint.Position`), ``lr`` (the
    epoch's), ``arch`` (the last step's), ``global_step``, ``resumed``, ``main``, ``ddp``,
    ``safe``. Call: ``sync()``, ``epoch_wall()``, ``position_dict()``, ``where()``, ``say(msg)``,
    ``vote(name, fn)`` / ``agreed(name, local)``.
    """

    def __init__(self, model: nn.Module, arch_sampler: ArchSampler, splits, cfg: RunConfig, run_dir: Path, *,
                 resume: bool, progress: bool, log_name: str, fingerprint: str | None = None):
        tcfg = self.tcfg = cfg.train
        if tcfg.epochs < 1:
            raise ValueError(f"train.epochs must be >= 1, got {tcfg.epochs}")
        if tcfg.checkpoint_every < 1:
            raise ValueError(f"train.checkpoint_every must be >= 1, got {tcfg.checkpoint_every}")
        if not tcfg.checkpoint_interval_s >= 0:
            raise ValueError(f"train.checkpoint_interval_s must be >= 0 (0 = only at epoch ends), "
                             f"got {tcfg.checkpoint_interval_s}")
        if tcfg.tensorboard:  # fail before any training (on every rank alike)
            from rankbench.training.tensorboard import require_tensorboard

            require_tensorboard()
        run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg, self.run_dir, self.epochs = cfg, run_dir, tcfg.epochs
        self.ckpt_path, self.log_path = run_dir / CHECKPOINT, run_dir / log_name
        self.ddp, self.main = distributed.is_distributed(), distributed.is_main()
        self.progress = progress and self.main
        self.say = _sayer(self.progress)
        self.model, self.base = model, unwrap(model)
        self.hooks: list[Hook] = []
        self.device = device = resolve_device(tcfg.device)
        self.fingerprint = fingerprint or cfg.training_fingerprint(device.type)
        cuda = device.type == "cuda"
        self.platform = setup_compute(tcfg, device)  # portable dispatch and threads, before any kernel
        torch.manual_seed(tcfg.seed)
        random.seed(tcfg.seed)
        np.random.seed(tcfg.seed % 2**32)
        self.arch_sampler, self.sampler_rng = arch_sampler, random.Random(tcfg.seed)

        model.to(device)
        self.channels_last = tcfg.channels_last  # also on CPU: ~1.6x faster steps for these small-channel nets
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing in torch's stubs
        self.optimizer = make_optimizer(model, tcfg)
        self.scheduler = make_scheduler(self.optimizer, tcfg.epochs)
        loader = make_train_loader(splits.train, cfg, device)
        # under DDP: this rank's slice of every global batch, with its loss weight
        self.loader = distributed.ShardedBatchLoader(loader) if self.ddp else loader
        self.steps_per_epoch = len(self.loader)

        self.pos, self.resumed = Position(), False
        if resume and self.ckpt_path.exists():
            state = load_checkpoint(self.ckpt_path)
            if state.get("fingerprint") != self.fingerprint:
                raise ValueError(f"checkpoint {self.ckpt_path} belongs to another training config (fingerprint "
                                 f"{state.get('fingerprint')} vs {self.fingerprint}); use another directory")
            self.pos = Position(**restore_checkpoint(state, self.base, self.optimizer, self.scheduler,
                                                     self.sampler_rng, sampler=self.arch_sampler))
            del state
            self.resumed = True
            self.say(f"resuming {run_dir} {self.where()}")

        # amp and compile act where TrainConfig.takes_effect says (the fingerprint's rule too)
        compile_ = tcfg.compile and tcfg.takes_effect("compile", device.type)
        self.net = _forward_module(model, self.base, compile_=compile_, ddp=self.ddp)
        self.autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                         if tcfg.amp and tcfg.takes_effect("amp", device.type) else None)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.used_of = getattr(self.base, "used_parameters", None)  # a supernet: step only the subnet's weights
        self.check_every = 20 if cuda else 1  # steps between host syncs (NaN check, progress bar)
        self.pending: list[tuple[Any, Any, int]] = []
        self.arch: Any = None
        self.lr = self.optimizer.param_groups[0]["lr"]
        self._votes: dict[str, Callable[[], bool]] = {}
        self._agreed: dict[str, bool] = {}
        self._t_seg = time.perf_counter()
        self._safe = self._syncing = False
        model.train()

    # -- the loop's own work --------------------------------------------------------------
    def fire(self, event: str, *args: Any, safe: bool = False) -> None:
        """Call ``event`` on every hook in order; ``safe``: the state is consistent meanwhile.
        (An exception leaves ``safe`` as it was where it was raised, for ``on_interrupt``.)"""
        prev, self._safe = self._safe, safe
        for hook in self.hooks:
            getattr(hook, event)(self, *args)
        self._safe = prev

    def start_epoch(self) -> None:
        self.loader.set_epoch(self.pos.epoch)
        self.lr = self.optimizer.param_groups[0]["lr"]
        self._t_seg = time.perf_counter()

    def step(self, batch) -> None:
        """One training step on ``batch``; syncs the losses every ``check_every`` steps and at
        the epoch's last step."""
        self._agreed = {}
        x, y = batch[0], batch[1]
        loss_scale = batch[2] if self.ddp else 1.0
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.arch = arch = self.arch_sampler(self.sampler_rng)
        used = [p for _, p in self.used_of(arch) if p.requires_grad] if self.used_of is not None else None
        loss, correct = train_step(self.net, self.optimizer, x, y, arch, grad_clip=self.tcfg.grad_clip,
                                   autocast=self.autocast, params=self.params, loss_scale=loss_scale, used=used)
        self.pending.append((loss, correct, int(y.shape[0])))
        self.pos.step += 1
        if len(self.pending) >= self.check_every or self.pos.step == self.steps_per_epoch:
            self.sync()

    def sync(self) -> None:
        """Bring the pending steps' losses to the host, add them to the epoch's totals and
        fire ``on_sync``. Under DDP: summed over the ranks (global batch), together with the
        hooks' votes (every rank must call this at the same steps)."""
        if not self.pending:
            return
        self._syncing = True  # stays set if interrupted meanwhile: the totals may be half-added
        if self.ddp:
            losses, correct, sizes = self._reduce_pending()
        else:
            losses = torch.stack([p[0] for p in self.pending]).float().tolist()
            correct = [int(c) for c in torch.stack([p[1] for p in self.pending]).tolist()]
            sizes = [p[2] for p in self.pending]
        synced = Synced(self.pos.step - len(self.pending), losses, correct, sizes)
        self.pending.clear()
        for v, c, n in zip(losses, correct, sizes):
            self.pos.loss_sum += v * n
            self.pos.correct += c
            self.pos.seen += n
        self._syncing = False
        self.fire("on_sync", synced)

    def _reduce_pending(self) -> tuple[list[float], list[int], list[int]]:
        dev = self.pending[0][0].device
        f64 = torch.float64
        stats = torch.stack([torch.stack([loss.double() * n, correct.double(), torch.full((), float(n), dtype=f64,
                                                                                         device=dev)])
                             for loss, correct, n in self.pending]).flatten()
        names = sorted(self._votes)
        flags = torch.tensor([float(self._votes[k]()) for k in names], dtype=f64, device=dev)
        total = distributed.all_reduce_sum(torch.cat([stats, flags])).cpu()
        self._agreed = {k: bool(v > 0) for k, v in zip(names, total[len(stats):].tolist())}
        stats = total[:len(stats)].view(-1, 3)
        return ((stats[:, 0] / stats[:, 2]).tolist(), stats[:, 1].round().long().tolist(),
                stats[:, 2].round().long().tolist())

    def end_epoch(self) -> dict[str, float]:
        """Close the epoch: its log row; step the scheduler; the position moves to the next."""
        self.sync()
        pos, wall = self.pos, self.epoch_wall()
        row = {"epoch": pos.epoch + 1, "lr": self.lr, "train_loss": pos.loss_sum / max(pos.seen, 1),
               "train_acc": pos.correct / max(pos.seen, 1), "images_per_s": pos.seen / max(wall, 1e-9), "wall_s": wall}
        self.scheduler.step()
        self.pos = Position(epoch=pos.epoch + 1, log=pos.log + [row])
        self._t_seg = time.perf_counter()
        return row

    def summary(self, splits, weights_name: str) -> dict[str, Any]:
        """The finished training's summary (what train_done.json holds; written by the
        :class:`~rankbench.training.hooks.FinalWeights` hook with the weights)."""
        state = {k: v.detach().cpu() for k, v in self.base.state_dict().items()}
        rows = self.pos.log
        wall = sum(r["wall_s"] for r in rows)
        images = sum(r["images_per_s"] * r["wall_s"] for r in rows)
        data_info = splits.describe() if hasattr(splits, "describe") else {}
        data_info["resolution"] = int(splits.train.images.shape[-1])
        done = {
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "wall_s": round(wall, 3),
            "train_loss": rows[-1]["train_loss"],
            "train_acc": rows[-1]["train_acc"],
            "images_per_s": round(images / max(wall, 1e-9), 1),
            "epoch_s": round(wall / len(rows), 3),
            "device": describe_device(self.device),
            "parameters": sum(p.numel() for p in self.base.parameters()),
            "fingerprint": self.fingerprint,
            "weights": weights_name,
            "weights_digest": weights_digest(state),
            "platform": self.platform,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "data": data_info,
        }
        if self.ddp:
            done["distributed"] = {"world_size": distributed.world_size(), "backend": distributed.backend(),
                                   "global_batch": self.cfg.data.batch_size}
        return done

    # -- for hooks ------------------------------------------------------------------------
    @property
    def global_step(self) -> int:
        """Steps done since the start of training (all sessions)."""
        return self.pos.epoch * self.steps_per_epoch + self.pos.step

    @property
    def safe(self) -> bool:
        """Whether the state is consistent now (a checkpoint written now resumes exactly)."""
        return self._safe and not self._syncing

    def epoch_wall(self) -> float:
        """Seconds spent in the current epoch, earlier sessions included."""
        return self.pos.elapsed + time.perf_counter() - self._t_seg

    def position_dict(self) -> dict[str, Any]:
        """The position to checkpoint now (the epoch's time so far included)."""
        d = self.pos.to_dict()
        if self.pos.step:
            d["elapsed"] = self.epoch_wall()
        return d

    def where(self) -> str:
        if self.pos.step:
            return f"in epoch {self.pos.epoch + 1}/{self.epochs} after step {self.pos.step}/{self.steps_per_epoch}"
        return f"after epoch {self.pos.epoch}/{self.epochs}"

    def vote(self, name: str, local: Callable[[], bool]) -> None:
        """Register a decision that all ranks must take together: under DDP ``local()`` is
        evaluated at every sync and OR-ed over the ranks; see :meth:`agreed`."""
        self._votes[name] = local

    def agreed(self, name: str, local: bool) -> bool:
        """Single process: ``local``. DDP: whether any rank voted ``name`` at a sync during
        this step (the same answer on every rank)."""
        return self._agreed.get(name, False) if self.ddp else local


def _forward_module(model: nn.Module, base: nn.Module, *, compile_: bool, ddp: bool) -> nn.Module:
    """The module to forward through: the caller's (a DDP wrapper must see the forward), in
    DDP under ``torch.distributed``; ``compile_``: the supernet's static blocks compiled in
    place (:func:`rankbench.supernet.compile.compile_supernet`; every subnet shares the
    graphs), or, for a model without compilable blocks, ``torch.compile`` of the whole."""
    net = model
    if compile_:
        from rankbench.supernet.compile import compilable_blocks, compile_supernet

        if compilable_blocks(base):
            compile_supernet(base)
            compile_ = False
    if ddp:
        net = distributed.wrap_ddp(net)
    if compile_:
        net = torch.compile(net)  # type: ignore[assignment]  # a compiled module is called like one
    return net
