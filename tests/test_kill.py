"""Kill safety: a real SIGKILL of a training process loses at most ``checkpoint_interval_s``
of training plus one step, and ``resume`` then ends with the weights of an uninterrupted run.

A child process (forked from this one after it trained the reference, so it starts with
torch imported: a fresh interpreter spends ~2 s of CPU importing torch and torch._dynamo) trains
a tiny supernet on synthetic images (16 steps per epoch, 3 epochs) with
``train.checkpoint_interval_s = 0.25``; each step
is padded to at least ``STEP_S`` seconds by a sleep in ``on_step`` (which changes no number),
so that the interval spans at most ``ceil(0.25 / STEP_S)`` steps. The child reports its step
count through a file; the test sends SIGKILL once it passes step ``KILL_AT`` (in the second
epoch, ten steps past its start: checkpoints at epoch ends only would lose ten steps), then
resumes in this process and compares with the uninterrupted training.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from rankbench.config import apply_overrides, load_preset

STEPS_PER_EPOCH = 16
INTERVAL_S = 0.25
STEP_S = 0.05
KILL_AT = STEPS_PER_EPOCH + 10
PARK_AT = KILL_AT + 8  # the child waits here: the kill always comes before training ends
TINY = {
    "model.width": 4, "model.cells_per_stack": 1, "data.resolution": 16, "data.batch_size": 16,
    "train.epochs": 3, "train.num_threads": 1, "train.device": "cpu",
    "train.checkpoint_interval_s": INTERVAL_S,
}


def _cfg():
    return apply_overrides(load_preset("quick"), TINY)


def _splits():
    from rankbench.data import ImageSet
    from rankbench.data.cifar10 import CIFAR10Splits

    g = torch.Generator().manual_seed(0)

    def images(n):
        return ImageSet(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g))

    return CIFAR10Splits(train=images(16 * STEPS_PER_EPOCH), valid=images(16), test=images(16), source="synthetic",
                         kind="synthetic", split="random", nb101_split=False)


def train(run_dir: Path, *, resume: bool = False, on_step=None):
    """The training the child runs and this process repeats: returns the trained supernet."""
    from rankbench.supernet import supernet_from_config
    from rankbench.train import fit

    torch.set_num_threads(1)
    cfg = _cfg()
    torch.manual_seed(cfg.train.seed)
    net = supernet_from_config(cfg)
    fit(net, lambda rng: net.space.sample_arch(rng, net.num_cells), _splits(), cfg, run_dir, resume=resume,
        progress=False, on_step=on_step)
    return net


def child(run_dir: str, report: str) -> None:
    """Entry point of the killed process: reports the steps done after every step."""
    tmp = report + ".tmp"

    def on_step(epoch: int, step: int) -> None:
        done = epoch * STEPS_PER_EPOCH + step
        with open(tmp, "w") as f:
            f.write(str(done))
        os.replace(tmp, report)
        time.sleep(STEP_S)
        if done >= PARK_AT:
            time.sleep(600)

    train(Path(run_dir), on_step=on_step)


def _steps_done(report: Path) -> int:
    try:
        return int(report.read_text())
    except (FileNotFoundError, ValueError):
        return -1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks a torch process: Linux only")
def test_sigkill_loses_at_most_the_interval_and_resumes_exactly(tmp_path):
    from rankbench.train import CHECKPOINT, DONE, load_checkpoint

    reference = train(tmp_path / "reference")
    run_dir, report = tmp_path / "killed", tmp_path / "steps"
    proc = multiprocessing.get_context("fork").Process(target=child, args=(str(run_dir), str(report)), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while _steps_done(report) < KILL_AT:
            if not proc.is_alive():
                pytest.fail(f"the training process ended early (exit code {proc.exitcode})")
            if time.monotonic() > deadline:
                pytest.fail("the training process did not reach the kill point in 120 s")
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == -signal.SIGKILL
    reported = _steps_done(report)
    pos = load_checkpoint(run_dir / CHECKPOINT)["position"]
    saved = pos["epoch"] * STEPS_PER_EPOCH + pos["step"]
    assert not (run_dir / DONE).exists()
    # lost: the steps since the last checkpoint, at most the interval's worth plus one (a step's
    # checkpoint is written before its report: killed between the two, the report lags by one)
    assert -1 <= reported - saved <= math.ceil(INTERVAL_S / STEP_S) + 1, (reported, saved, pos)
    assert saved > STEPS_PER_EPOCH  # a checkpoint within the second epoch

    resumed = train(run_dir, resume=True)
    a, b = reference.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((run_dir / CHECKPOINT).parent.glob(".*"))  # no temporary file left behind
