"""Checkpoints: everything needed to continue a training exactly, written atomically.

A checkpoint holds the weights, the optimizer (momentum), the scheduler, the position
(epochs done, steps into the next epoch, the epoch's loss / accuracy sums, the log) and every
RNG state (python, numpy, torch, CUDA, the architecture sampler). The data order needs no
state: the loader's order and augmentation are functions of (seed, epoch, batch).
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from rankbench._io import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "Position", "unwrap", "checkpoint_state", "restore_checkpoint", "save_checkpoint",
           "load_checkpoint", "weights_finite"]

CHECKPOINT_FORMAT = 1


@dataclass
class Position:
    """Where training stands: ``epoch`` epochs done, ``step`` steps into the next one."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0  # over the current epoch's synced steps
    correct: int = 0
    seen: int = 0
    elapsed: float = 0.0  # seconds spent in the current epoch by earlier sessions
    log: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "loss_sum": self.loss_sum, "correct": self.correct,
                "seen": self.seen, "elapsed": self.elapsed, "log": [dict(r) for r in self.log]}


_WRAPPERS = {"OptimizedModule": "_orig_mod", "DistributedDataParallel": "module", "DataParallel": "module"}


def unwrap(model: nn.Module) -> nn.Module:
    """The module that owns the weights, under torch.compile's / DDP's wrapper: checkpoints
    and final weights hold its state_dict (no wrapper prefixes)."""
    while type(model).__name__ in _WRAPPERS:
        model = getattr(model, _WRAPPERS[type(model).__name__])
    return model


def _rng_states(sampler_rng: random.Random) -> dict[str, Any]:
    # legacy=True (the default) returns the tuple; numpy's stubs only type it as tuple-or-dict
    np_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
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
                     sampler_rng: random.Random, fingerprint: str, sampler: Any = None) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimizer (momentum), scheduler,
    position (epochs done, steps into the next, epoch accumulators, log), RNG states, and the
    training sampler's own state when it keeps one (``state_dict()``: FairNAS's position in its
    group of steps)."""
    extra = {"sampler_state": sampler.state_dict()} if hasattr(sampler, "state_dict") else {}
    return {**extra,
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "position": position,
        "rng": _rng_states(sampler_rng),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def restore_checkpoint(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                       sampler_rng: random.Random, sampler: Any = None) -> dict[str, Any]:
    """Load a :func:`checkpoint_state` into live objects (the sampler's state too, when it
    keeps one and the checkpoint holds it); returns its position dict."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}; "
                         f"it was written by another rankbench version")
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"], sampler_rng)
    if "sampler_state" in state and hasattr(sampler, "load_state_dict"):
        sampler.load_state_dict(state["sampler_state"])
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


def weights_finite(model: nn.Module) -> bool:
    flags = [t.isfinite().all() for t in unwrap(model).state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True
