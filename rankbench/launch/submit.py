"""Plan which trainings are missing, submit each as one job, report what came back.

:func:`train_missing` is the hook of ``ablation`` and ``run --seeds N``: the planned run
directories (the same :func:`rankbench.pipeline.planned_run_dirs` gives the sequential
pipeline) that are not finished become :class:`TrainJob` s; finished ones are reused. When the
jobs are back, the caller's sequential loop finds every run finished and only scores, so the
numbers are those of a sequential run with the same seeds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, cast

from rankbench.config import RunConfig, device_type_of
from rankbench.launch.jobs import Job, TrainJob
from rankbench.launch.options import LauncherOptions
from rankbench.launch.results import JobResult, JobsFailedError

__all__ = ["PlannedRun", "plan_training", "submit", "train_missing", "job_folder", "job_devices",
           "with_job_devices", "describe_plan"]


@dataclass(frozen=True)
class PlannedRun:
    """One training of a plan: its effective config, run directory and state (``finished``:
    reused; ``unfinished``: a job resumes it from its checkpoint; ``new``: a job trains it)."""

    cfg: RunConfig
    run_dir: Path
    state: str

    @property
    def name(self) -> str:
        return f"{self.cfg.model.variant} seed {self.cfg.train.seed}"


def plan_training(planned: Sequence[tuple[RunConfig, Path]]) -> list[PlannedRun]:
    """The state of each planned (config, run directory); duplicates are planned once."""
    from rankbench.rundir import RunDir

    out, seen = [], set()
    for cfg, d in planned:
        if Path(d) in seen:
            continue
        seen.add(Path(d))
        rd = RunDir(d)
        state = "finished" if rd.is_finished() else "unfinished" if rd.checkpoint.exists() else "new"
        out.append(PlannedRun(cfg, Path(d), state))
    return out


def describe_plan(plan: Sequence[PlannedRun], opts: LauncherOptions) -> list[tuple[str, object]]:
    """(label, path) lines for ``--dry-run``: each job that would be submitted (the others are
    finished and reused)."""
    todo = [p for p in plan if p.state != "finished"]
    lines: list[tuple[str, object]] = [("launcher", opts.describe()),
                                       ("jobs to submit", f"{len(todo)} of {len(plan)} trainings")]
    for i, p in enumerate(todo, 1):
        how = "resumes from its checkpoint" if p.state == "unfinished" else "new"
        lines.append((f"job {i}/{len(todo)}: train {p.name} ({how})", p.run_dir))
    return lines


def job_folder(opts: LauncherOptions, runs_root: str | os.PathLike | None = None) -> Path:
    """submitit's folder (logs, pickles): ``opts.folder`` or ``<runs root>/submitit``; ``%j``
    (the job id) names each job's subfolder."""
    from rankbench import rundir

    base = Path(opts.folder).expanduser() if opts.folder else rundir.runs_root(runs_root) / "submitit"
    return base / "%j"


def job_devices(cfg: RunConfig, opts: LauncherOptions) -> tuple[str, ...]:
    """The devices local jobs get (none: CPU, the config's device), checked against the device
    type this process plans with: a run directory is named by a training fingerprint that
    depends on the device type, so the jobs must train on the type the caller will look for."""
    here = device_type_of(cfg.train.device)
    if opts.kind == "slurm":
        there = "cuda" if opts.gpus_per_job else "cpu"
        if there != here:
            fix = ("run it where a GPU is visible (e.g. inside `srun --gpus 1 ...`; the scoring after the "
                   "jobs runs there too), or --gpus-per-job 0 for CPU jobs") if there == "cuda" else \
                  "give --device cpu, or --gpus-per-job 1"
            raise ValueError(f"the Slurm jobs train on {there} (--gpus-per-job {opts.gpus_per_job}) but here "
                             f"train.device={cfg.train.device} means {here}: the run directories would differ; {fix}")
        return ()
    if opts.devices:
        there = opts.devices[0].partition(":")[0]
        if there != here:
            raise ValueError(f"--devices {','.join(opts.devices)} but train.device={cfg.train.device} means {here} "
                             f"here: the run directories depend on the device type; give --device {there}")
        return opts.devices
    if here == "cuda":  # every job gets a GPU of its own (submitit hides the GPUs from a job given none)
        if cfg.train.device.startswith("cuda:"):
            return (cfg.train.device,)
        import torch

        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ()


def submit(jobs: Sequence[Job], opts: LauncherOptions, *, folder: str | os.PathLike,
           echo: Callable[[str], None] | None = print) -> list[JobResult]:
    """Run ``jobs`` through the launcher ``opts.kind`` and wait for them: one
    :class:`JobResult` per job, in order, with its log files (never raises for a failed job).
    Local jobs run ``opts.parallel`` at once on ``opts.devices`` (see :func:`with_job_devices`)."""
    if not jobs:
        return []
    Path(folder).parent.mkdir(parents=True, exist_ok=True)
    where = cast("str | Path", folder)  # the executors only take str() of it
    if opts.kind == "local":
        from rankbench.launch.local import run_local

        return run_local(jobs, opts, where, echo=echo)
    from rankbench.launch.slurm import run_slurm

    return run_slurm(jobs, opts, where, echo=echo)


def with_job_devices(cfg: RunConfig, opts: LauncherOptions) -> LauncherOptions:
    """``opts`` with the devices its local jobs get (:func:`job_devices`) filled in."""
    devices = job_devices(cfg, opts)
    return replace(opts, devices=tuple(devices)) if devices != opts.devices else opts


def train_missing(planned: Sequence[tuple[RunConfig, Path]], opts: LauncherOptions, *,
                  runs_root: str | os.PathLike | None = None, echo: Callable[[str], None] | None = print,
                  needed_by: str = "the ablation") -> list[JobResult]:
    """Train every planned run that is not finished as one job (``opts``) and wait for them.
    Raises :class:`JobsFailedError` naming the missing runs and each failed job's log."""
    plan = plan_training(planned)
    todo = [p for p in plan if p.state != "finished"]
    if not plan:
        return []
    opts = with_job_devices(plan[0].cfg, opts)
    say = echo or (lambda s: None)
    resumed = sum(p.state == "unfinished" for p in todo)
    say(f"{len(plan)} training(s): {len(plan) - len(todo)} finished (reused), {len(todo)} to run as jobs"
        + (f" ({resumed} resume from a checkpoint)" if resumed else "") + f"; {opts.describe()}")
    if not todo:
        return []
    jobs = [TrainJob(cfg=p.cfg, run_dir=p.run_dir) for p in todo]
    results = submit(jobs, opts, folder=job_folder(opts, runs_root), echo=echo)
    from rankbench.rundir import is_finished

    failed = [r for r in results if not r.ok or not is_finished(r.job.target)]
    if failed:
        raise JobsFailedError([r if not r.ok else _not_finished(r) for r in failed], needed_by=needed_by)
    return results


def _not_finished(r: JobResult) -> JobResult:
    return replace(r, ok=False, error="the job ended but the run is not finished (interrupted?)")
