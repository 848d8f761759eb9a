"""Kendall tau over training (``train.eval_every``): how well the supernet ranks a fixed subset of
the run's candidates as it trains.

Every ``train.eval_every`` epochs, and at the last, :class:`TauTracker` (a training hook) scores
``train.eval_candidates`` of the run's distinct candidates (drawn with ``score.seed``:
:func:`tracked_candidates`) with the run's scoring code
(:func:`rankbench.scoring.score_candidates`: ``score.*``, the protocol's calibration data and
reset rule; ``train.eval_images`` > 0: on that many images of the evaluation split instead of
``score.eval_size``), without and with BN calibration, and ranks them against the run's truth
(:func:`rankbench.truth.load_truth`): Kendall tau with its 95% interval (the class bootstrap,
with the truth's repeats, of :func:`rankbench.metrics.rank_metrics`) and Spearman's rho. The
reference rankers (:func:`rankbench.references.reference_scores`: parameters, FLOPs, ...) are
ranked once on the same subset, as horizontal lines. The protocol's drop rule
(``score.drop_lowest``) is not applied: every candidate with a truth is ranked.

Rows go to ``<run dir>/tau_over_training.csv`` (:data:`TAU_COLUMNS`; a reference's row has no
epoch), rewritten atomically after each evaluation, and with ``train.tensorboard`` to
``<run dir>/tensorboard/tau_over_training/`` (tags ``tau/<setting>``, with ``_ci_low`` /
``_ci_high``, against the global step; the references repeated at every evaluation).

The training is not changed: the weights, buffers, module modes and the python / numpy / torch
random states are saved before an evaluation and restored after it (also when it fails), so the
trained weights are bit-identical with and without ``eval_every``; neither field enters the
training fingerprint. A resumed training keeps the rows of the epochs its checkpoint holds,
drops those written after it (they are computed again, identically), and evaluates the
checkpoint's own epoch when an interruption came between its checkpoint and its evaluation.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from rankbench.config import RunConfig
from rankbench.metrics import rank_metrics
from rankbench.references import reference_scores
from rankbench.rundir import RunDir
from rankbench.scoring import score_candidates
from rankbench.spaces import space_from_config
from rankbench.training.hooks import Hook
from rankbench.training.tau_table import (REFERENCE_PREFIX, SUPERNET_SETTINGS, TAU_COLUMNS, TAU_CSV, read_tau_table,
                                          write_tau_table)
from rankbench.training.tensorboard import summary_writer
from rankbench.truth import load_truth, truth_source

if TYPE_CHECKING:
    from rankbench.training.loop import Loop

__all__ = ["TAU_CSV", "TAU_COLUMNS", "TAU_TB_DIR", "TauSubset", "TauTracker", "tau_subset", "tau_tracker", "tau_row",
           "tracked_candidates", "write_tau_table", "read_tau_table", "is_due", "preserved_state"]

#: the TensorBoard folder (under the run's ``tensorboard/``)
TAU_TB_DIR = "tau_over_training"


def is_due(epoch: int, every: int, epochs: int) -> bool:
    """Whether epoch ``epoch`` (1-based, done) is evaluated: every ``every`` epochs and the last."""
    return every > 0 and epoch >= 1 and (epoch % every == 0 or epoch == epochs)


# -- what is ranked ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TauSubset:
    """The candidates tau is tracked on, with their truth (NaN where it has none), the truth's
    repeats (for the interval; None without), and the reference rankers' scores."""

    candidates: list
    hashes: list[str]
    truth: np.ndarray
    truth_repeats: np.ndarray | None
    references: dict[str, np.ndarray]
    truth_reduce: str = "mean"
    seed: int = 0

    @property
    def n_ranked(self) -> int:
        return int(np.isfinite(self.truth).sum())


def tracked_candidates(space: Any, n: int, run_candidates: int, seed: int) -> list:
    """``n`` of the run's distinct candidates, drawn with ``seed``: the space's own draw
    ``space.candidates(n, seed)`` when the run scores every candidate (``run_candidates`` 0), else
    a seeded sample of the run's ``space.candidates(run_candidates, seed)``, in their order (all
    of them when there are no more than ``n``)."""
    if run_candidates == 0:
        return list(space.candidates(n, seed))
    pool = list(space.candidates(run_candidates, seed))
    if len(pool) <= n:
        return pool
    return [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), n))]


def tau_subset(cfg: RunConfig, space: Any = None) -> TauSubset:
    """The seeded subset of ``cfg``'s candidates (``train.eval_candidates`` of them:
    :func:`tracked_candidates` from ``space``, default the config's), its truth and the reference
    rankers' scores. Raises
    a ValueError (before any training) when the truth ranks fewer than 3 of them."""
    space = space if space is not None else space_from_config(cfg)
    candidates = tracked_candidates(space, int(cfg.train.eval_candidates), int(cfg.score.candidates),
                                    int(cfg.score.seed))
    hashes = [c.hash for c in candidates]
    truth = load_truth(cfg, candidates)
    values, _ = truth.values(hashes, reduce=cfg.truth.reduce, seed=cfg.score.seed)
    repeats = truth.repeats_for(hashes) if hasattr(truth, "repeats_for") else None
    n_ok = int(np.isfinite(values).sum())
    if n_ok < 3:
        raise ValueError(f"train.eval_every: the truth ({cfg.truth.source}) covers {n_ok} of the "
                         f"{len(candidates)} candidates tau is tracked on (train.eval_candidates); it needs 3 or "
                         f"more: pick another truth (truth.source), or turn tau tracking off (train.eval_every=0)")
    source = truth_source(cfg)
    with source.reference_store() as store:
        refs, _desc = reference_scores([c.spec for c in candidates], source.network_size(), store=store,
                                       metric=cfg.truth.metric, seed=cfg.score.seed)
    return TauSubset(candidates=candidates, hashes=hashes, truth=np.asarray(values, dtype=np.float64),
                     truth_repeats=repeats, references={k: np.asarray(v, dtype=np.float64) for k, v in refs.items()},
                     truth_reduce=cfg.truth.reduce, seed=int(cfg.score.seed))


def tau_row(epoch: int | None, setting: str, scores: Sequence[float] | np.ndarray, subset: TauSubset, *,
            n_boot: int = 1000) -> dict[str, Any]:
    """One CSV row: ``scores`` (one per candidate of ``subset``) ranked against its truth; the
    candidates lacking a truth or a score are left out (``n`` says how many were ranked)."""
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(subset.truth)
    reps = subset.truth_repeats[ok] if subset.truth_repeats is not None else None
    m = rank_metrics(s[ok], subset.truth[ok], k=(), seed=subset.seed, n_boot=n_boot,
                     groups=np.asarray(subset.hashes, dtype=object)[ok], truth_repeats=reps,
                     truth_reduce=subset.truth_reduce)
    low, high = m.get("kendall_tau_ci") or (math.nan, math.nan)
    return {"epoch": epoch, "setting": setting, "kendall_tau": _num(m.get("kendall_tau")), "ci_low": _num(low),
            "ci_high": _num(high), "spearman": _num(m.get("spearman")), "n": int(m.get("n", int(ok.sum())))}


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


# -- the hook ------------------------------------------------------------------------------------
class TauTracker(Hook):
    """Tau of the supernet on ``subset`` every ``every`` epochs and at the last (see the module
    doc). ``splits``, ``cfg``: the training's data and config (``cfg.score`` and the protocol say
    how to score, ``cfg.train.eval_images`` on how many images); ``tensorboard_dir``: also write
    the rows there as scalars (None: not). Under DDP every rank scores (sharded) and rank 0
    writes."""

    def __init__(self, cfg: RunConfig, run_dir: str | os.PathLike, splits: Any, subset: TauSubset, *,
                 every: int | None = None, tensorboard_dir: str | os.PathLike | None = None, n_boot: int = 1000):
        self.cfg, self.splits, self.subset, self.n_boot = cfg, splits, subset, int(n_boot)
        images = int(cfg.train.eval_images)
        self.score_cfg = replace(cfg.score, eval_size=images) if images else cfg.score
        self.every = int(cfg.train.eval_every if every is None else every)
        if self.every < 1:
            raise ValueError(f"TauTracker: eval_every must be >= 1, got {self.every}")
        self.path = Path(run_dir) / TAU_CSV
        self.tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir is not None else None
        self.ref_rows = [tau_row(None, f"{REFERENCE_PREFIX}{name}", v, subset, n_boot=self.n_boot)
                         for name, v in subset.references.items()]
        self.rows: list[dict[str, Any]] = []
        self.eval_s: list[float] = []  # seconds of each evaluation (benchmarks)
        self.writer: Any = None

    # -- events ---------------------------------------------------------------------------------
    def on_start(self, loop: "Loop") -> None:
        self.rows = []
        if loop.resumed and self.path.exists():  # the rows of the epochs the checkpoint holds
            self.rows = [r for r in read_tau_table(self.path)
                         if r["epoch"] is not None and r["epoch"] <= loop.pos.epoch]
        if self.tensorboard_dir is not None and loop.main:
            self.writer = summary_writer(self.tensorboard_dir, loop)
        epoch = loop.pos.epoch
        if loop.pos.step == 0 and is_due(epoch, self.every, loop.epochs) and \
                not any(r["epoch"] == epoch for r in self.rows):
            self.evaluate(loop)  # interrupted between the checkpoint of this epoch and its evaluation
        else:
            self._write(loop)

    def on_epoch_end(self, loop: "Loop", row: dict[str, float]) -> None:
        if is_due(loop.pos.epoch, self.every, loop.epochs):
            self.evaluate(loop)

    def close(self, loop: "Loop") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- the evaluation -------------------------------------------------------------------------
    def evaluate(self, loop: "Loop") -> list[dict[str, Any]]:
        """Score the subset without and with calibration at the current weights; add and write
        the rows; the training's state is restored afterwards."""
        t0 = time.perf_counter()
        epoch = loop.pos.epoch
        accuracies = {}
        with preserved_state(loop.base):
            for setting in SUPERNET_SETTINGS:
                frame = score_candidates(loop.base, self.subset.candidates, self.splits, self.score_cfg,
                                         calibrate=setting == "calib", protocol=self.cfg.score.protocol,
                                         data_cfg=self.cfg.data, progress=False, channels_last=loop.channels_last)
                accuracies[setting] = frame["accuracy"].to_numpy(dtype=np.float64)
        new = [tau_row(epoch, setting, acc, self.subset, n_boot=self.n_boot) for setting, acc in accuracies.items()]
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + new
        self._write(loop)
        self._log(loop, new)
        self.eval_s.append(time.perf_counter() - t0)
        loop.say(f"tau after epoch {epoch} ({self.subset.n_ranked} candidates, {self.eval_s[-1]:.1f} s): "
                 + ", ".join(f"{r['setting']} {r['kendall_tau']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                             for r in new))
        return new

    def _write(self, loop: "Loop") -> None:
        if loop.main:
            write_tau_table(self.path, self.ref_rows + self.rows)

    def _log(self, loop: "Loop", rows: list[dict[str, Any]]) -> None:
        if self.writer is None:
            return
        step = loop.global_step
        for r in self.ref_rows + rows:
            for suffix, col in (("", "kendall_tau"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
                if math.isfinite(r[col]):
                    self.writer.add_scalar(f"tau/{r['setting']}{suffix}", r[col], step)
        self.writer.flush()


@contextlib.contextmanager
def preserved_state(module: torch.nn.Module) -> Iterator[None]:
    """Put back on exit, exactly, also after an exception: ``module``'s state dict (weights and
    buffers), every submodule's train/eval mode, and the python, numpy and torch (CPU and CUDA)
    random states."""
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    modes = [(sub, sub.training) for sub in module.modules()]
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        module.load_state_dict(state)
        for sub, training in modes:
            sub.training = training
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def tau_tracker(cfg: RunConfig, run_dir: str | os.PathLike, splits: Any, *, space: Any = None,
                n_boot: int = 1000) -> TauTracker | None:
    """The :class:`TauTracker` of a training of ``cfg`` into ``run_dir`` (None when
    ``train.eval_every`` is 0): its subset and truth resolved now, so that a truth that cannot
    rank it fails before any training."""
    if cfg.train.eval_every <= 0:
        return None
    tb = RunDir(run_dir).tensorboard_dir / TAU_TB_DIR if cfg.train.tensorboard else None
    return TauTracker(cfg, run_dir, splits, tau_subset(cfg, space), tensorboard_dir=tb, n_boot=n_boot)
