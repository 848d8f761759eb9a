"""The jobs: one supernet training (:class:`TrainJob`) or one shard of a measured truth
(:class:`TruthShardJob`), each a picklable, callable dataclass that submitit runs in its own
process (locally or on a Slurm node).

Calling a job again continues it: training resumes from the run's checkpoint and a truth
shard skips its finished trainings, so a requeued job (preemption, timeout) and a job
submitted again after a crash or a ``kill -9`` pick up where the last one stopped.

Preemption: submitit signals a job (``USR2`` by default) before Slurm stops it for a timeout
or a preemption, and its handler checkpoints the job object and requeues it. Here that
signal first stops the training at the next step boundary with a checkpoint (the training's
own Ctrl-C / SIGTERM path), then hands over to submitit's handler; so a requeued job loses no
step. A plain ``SIGTERM`` (Slurm's preemption without submitit's signal) also stops at a step
boundary with a checkpoint; Slurm's own requeue then starts the job again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, cast

from rankbench.config import RunConfig

__all__ = ["Job", "TrainJob", "TruthShardJob"]


@dataclass(frozen=True, kw_only=True)
class Job:
    """What every job has: its config, and the device the launcher gives it (it overrides
    ``train.device``; the run directory depends only on the device type, which the launcher
    keeps). Nothing else of the config changes: thread count and platform are what the calling
    process would use, so the weights are the ones it would train."""

    cfg: RunConfig
    device: str | None = None

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def target(self) -> Path:
        """The file or folder the job produces."""
        raise NotImplementedError

    def _run(self, cfg: RunConfig) -> Any:
        raise NotImplementedError

    def __call__(self) -> str:
        cfg = self.cfg
        if self.device is not None:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=self.device))
        with _distributed_job(cfg.train.device), _preemption_stops_training():
            print(f"rankbench job: {self.name} -> {self.target} (device {cfg.train.device})", flush=True)
            self._run(cfg)
        print(f"rankbench job: {self.name} finished", flush=True)
        return str(self.target)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit calls this when the job is preempted or times out: requeue the same job
        (it resumes from what the stopped one saved)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


@dataclass(frozen=True, kw_only=True)
class TrainJob(Job):
    """Train (or finish) the supernet of ``cfg`` in ``run_dir``; ``cfg`` is the effective config
    (protocol applied) and ``run_dir`` the directory the ablation will read, as
    :func:`rankbench.pipeline.planned_run_dirs` gives them."""

    run_dir: Path

    @property
    def name(self) -> str:
        return f"train {self.cfg.model.variant} seed {self.cfg.train.seed}"

    @property
    def target(self) -> Path:
        return Path(self.run_dir)

    def _run(self, cfg: RunConfig) -> Any:
        from rankbench.rundir import RunDir
        from rankbench.train import train_supernet

        rd = RunDir(self.run_dir)
        if rd.checkpoint.exists() and not rd.is_finished():
            print(f"rankbench job: resuming from the checkpoint {rd.checkpoint}", flush=True)
        return train_supernet(cfg, self.run_dir, resume=True, progress=False)


@dataclass(frozen=True, kw_only=True)
class TruthShardJob(Job):
    """Measure shard ``k`` of ``n`` of a truth (hash classes whose index % n == k) into its own
    CSV ``out``, with its own work directory (no other shard touches either)."""

    out: Path
    seeds: int
    shard: tuple[int, int]
    work_dir: Path
    keep_runs: bool = False

    @property
    def name(self) -> str:
        return f"truth shard {self.shard[0]}/{self.shard[1]}"

    @property
    def target(self) -> Path:
        return Path(self.out)

    def _run(self, cfg: RunConfig) -> Any:
        from rankbench.spaces import space_from_config
        from rankbench.truth import measure_truth

        return measure_truth(space_from_config(cfg), cfg, self.out, seeds=self.seeds, progress=False,
                             work_dir=self.work_dir, keep_runs=self.keep_runs,
                             shard=cast("tuple[int, int]", tuple(self.shard)))


@contextlib.contextmanager
def _distributed_job(device: str) -> Iterator[None]:
    """A Slurm job with several tasks (``gpus_per_job`` > 1) trains with DDP: each task is a
    rank (submitit's TorchDistributedEnvironment exports what torchrun would)."""
    env = None
    if os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        env = submitit.JobEnvironment()
    if env is None or env.num_tasks <= 1:
        yield
        return
    from submitit.helpers import TorchDistributedEnvironment

    from rankbench import distributed

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    distributed.init_from_env(device)
    try:
        yield
    finally:
        distributed.cleanup()


def _preemption_signal() -> int | None:
    name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, name, None)


@contextlib.contextmanager
def _preemption_stops_training() -> Iterator[None]:
    """Inside a submitit job: the preemption signal stops a running training at the next step
    boundary (with a checkpoint) before submitit's own handler requeues the job."""
    sig = _preemption_signal()
    requeue = signal.getsignal(sig) if sig is not None else None
    if (sig is None or not callable(requeue) or not os.environ.get("SUBMITIT_EXECUTOR")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    from rankbench.training.hooks import Interrupts

    caught: list[int] = []

    def stop_then_requeue(signum, frame) -> None:
        training = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
        if isinstance(training, Interrupts) and not caught:
            caught.append(signum)
            print("rankbench job: preemption signal: stopping at the next step with a checkpoint",
                  file=sys.stderr, flush=True)
            stop = cast("Callable[[int, Any], Any]", signal.getsignal(signal.SIGTERM))  # Interrupts' bound method
            stop(signal.SIGTERM, frame)  # the training's own graceful stop
        else:  # not training right now (loading data, evaluating): nothing to save first
            requeue(signum, frame)

    signal.signal(sig, stop_then_requeue)
    try:
        yield
    except KeyboardInterrupt:
        if not caught:
            raise
        requeue(caught[0], None)  # checkpoint this job object, requeue it, exit
        raise
    finally:
        signal.signal(sig, requeue)
