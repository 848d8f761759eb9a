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
They are written every ``checkpoint_every`` epochs, within an epoch every
``checkpoint_interval_s`` seconds (at the first step boundary after the interval; default
300 s, 0 = only at epoch ends), and when training is interrupted (Ctrl-C, SIGTERM). A signal
is acted on at the next step boundary. Every checkpoint is taken at a step boundary, so a
resumed run ends with weights identical to an uninterrupted one, also when it stopped
mid-epoch. A second signal stops at once and keeps the previous checkpoint. A SIGKILL (the
OOM killer, a preempted node) loses the training since the last checkpoint: at most
``checkpoint_interval_s`` seconds plus one step (plus the checkpoint write it interrupts);
under DDP on CUDA, where the ranks agree on the time every 20 steps, plus 20 steps.

A NaN / inf loss (or non-finite weights at a checkpoint) raises
:class:`TrainingDivergedError`; the last good checkpoint is never overwritten.

The loop's concerns (divergence guard, progress, CSV log, checkpoints, final weights,
TensorBoard, tau over training, callbacks, signals) are hooks the caller passes:
:mod:`rankbench.training.hooks`, :mod:`rankbench.training.tau_tracking`. The step
(:func:`train_step`) and the checkpoint I/O (:func:`save_checkpoint`, :func:`load_checkpoint`,
:func:`checkpoint_state`, :func:`restore_checkpoint`) are small functions so that a
distributed (DDP) driver or a benchmark can reuse them; only rank 0 should write.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch

from rankbench import distributed, rundir
from rankbench.config import RunConfig
from rankbench.data.splits import load_splits
from rankbench.training.checkpoint import (CHECKPOINT_FORMAT, checkpoint_state, load_checkpoint, restore_checkpoint,
                                           save_checkpoint)
from rankbench.training.csvlog import LOG_COLUMNS, read_log
from rankbench.training.hooks import FinalWeights, Hook, TrainingDivergedError, standard_hooks
from rankbench.numerics import check_same_platform, setup_compute
from rankbench.supernet import supernet_from_config
from rankbench.training.loop import CHECKPOINT, DONE, LOG, WEIGHTS, ArchSampler, fit
from rankbench.training.samplers import make_sampler
from rankbench.training.step import (describe_device, make_optimizer, make_scheduler, make_train_loader, param_groups,
                                     resolve_device, train_step)
from rankbench.training.tau_tracking import tau_tracker
from rankbench.training.tensorboard import log_ranking_metrics, require_tensorboard

__all__ = [
    "fit", "train_supernet", "load_supernet", "TrainingDivergedError", "resolve_device",
    "describe_device", "param_groups", "make_optimizer", "make_scheduler", "make_train_loader",
    "train_step", "checkpoint_state", "restore_checkpoint", "save_checkpoint", "load_checkpoint",
    "read_log", "log_ranking_metrics", "require_tensorboard", "Hook", "FinalWeights", "standard_hooks", "ArchSampler",
    "CHECKPOINT",
    "DONE", "WEIGHTS", "LOG", "LOG_COLUMNS", "CHECKPOINT_FORMAT",
]


log = logging.getLogger(__name__)


def _say(msg: str, progress: bool) -> None:
    log.info(msg)
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _check_sampling(sampling: str) -> bool:
    if sampling not in ("shared", "per_cell"):
        raise ValueError(f"train.sampling must be 'shared' or 'per_cell', got {sampling!r}")
    return sampling == "per_cell"


def train_supernet(cfg: RunConfig, run_dir: str | os.PathLike | None = None, *, resume: bool = False,
                   progress: bool = True, runs_root: str | os.PathLike | None = None,
                   fingerprint: str | None = None) -> Path:
    """Train the supernet ``cfg.model`` describes into ``run_dir`` (default
    ``rundir.run_dir_for(cfg, runs_root)``) and return that directory. ``train.sampler`` says which
    subnet each step trains (:mod:`rankbench.training.samplers`; uniform by default).
    ``fingerprint``: ``cfg``'s training fingerprint, when the caller computed it (a plan);
    passed on to :func:`fit`. ``train.eval_every`` > 0 adds the tau-over-training hook
    (:mod:`rankbench.training.tau_tracking`; ``tau_over_training.csv`` in the run directory).

    A directory that already holds a finished training with the same training fingerprint is
    returned at once (reused). ``resume=True`` continues an interrupted one.
    """
    run_dir = Path(run_dir) if run_dir is not None else rundir.run_dir_for(cfg, runs_root)
    device = resolve_device(cfg.train.device)
    platform = setup_compute(cfg.train, device)  # portable dispatch and threads, before any kernel
    if rundir.RunDir(run_dir).finished_with(cfg, fingerprint):  # a finished run of another config raises
        note = check_same_platform(f"the finished run {run_dir}", rundir.RunDir(run_dir).platform(), platform)
        _say(note or f"reusing finished run {run_dir} (same training config, same platform)", progress)
        return run_dir
    if (run_dir / CHECKPOINT).exists() and not resume:
        raise ValueError(f"{run_dir} holds an interrupted training; add --resume (resume=True) to continue "
                         f"it, or delete that directory to start again")
    recorded = rundir.RunDir(run_dir).platform()
    if (run_dir / CHECKPOINT).exists() and recorded is not None:  # extending a training made elsewhere
        note = check_same_platform(f"the interrupted run {run_dir}", recorded, platform)  # would mix two
        if note:
            _say(note, progress)
    per_cell = _check_sampling(cfg.train.sampling)
    if cfg.train.tensorboard:
        require_tensorboard()  # before anything is created
    torch.manual_seed(cfg.train.seed)  # the initial weights
    net = supernet_from_config(cfg)
    arch_sampler = make_sampler(cfg.train.sampler, net.space, net.num_cells, per_cell=per_cell)  # before the run dir
    main = distributed.is_main()
    with distributed.main_first():  # rank 0 decodes (and caches) the data, writes the run dir
        splits = load_splits(cfg.data, progress=progress and main)
        tracker = tau_tracker(cfg, run_dir, splits)  # train.eval_every; its truth checked before the run dir
        if main:
            where = describe_device(device) + (f", {distributed.describe()}" if distributed.is_distributed() else "")
            rundir.init_run_dir(run_dir, cfg, device=where, platform=platform, fingerprint=fingerprint)
    fit(net, arch_sampler, splits, cfg, run_dir, resume=resume, progress=progress, space=net.space,
        hooks=standard_hooks(cfg, run_dir, progress=progress, space=net.space,
                             extra=[tracker] if tracker is not None else []),
        fingerprint=fingerprint)
    return run_dir


def load_supernet(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """(trained supernet in eval mode on ``map_location``, its RunConfig) from a finished run."""
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
    net = supernet_from_config(cfg)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.to(map_location).eval(), cfg
