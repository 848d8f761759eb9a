"""``--launcher slurm``: submitit's Slurm executor. All jobs of one command go out as one job
array (``array_parallelism`` running at once); submitit writes the sbatch script, logs each
job under its folder, asks Slurm to signal a job before its time limit and requeues it
(the job checkpoints first: :mod:`rankbench.launch.jobs`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

from rankbench.launch.jobs import Job
from rankbench.launch.options import LauncherOptions, require_submitit
from rankbench.launch.results import JobResult, failure_of, job_logs

__all__ = ["slurm_parameters", "slurm_executor", "run_slurm", "SIGNAL_DELAY_S"]

#: seconds between submitit's preemption signal and the end of a job's time: enough for a
#: paper-scale step and checkpoint write
SIGNAL_DELAY_S = 120


def slurm_parameters(opts: LauncherOptions) -> dict[str, Any]:
    """submitit (AutoExecutor) parameters for ``opts``: one task per GPU (DDP within a job when
    ``gpus_per_job`` > 1), ``cpus_per_job`` split between the tasks."""
    tasks = max(1, opts.gpus_per_job)
    p: dict[str, Any] = {
        "name": "rankbench", "timeout_min": opts.timeout_min, "nodes": 1, "tasks_per_node": tasks,
        "gpus_per_node": opts.gpus_per_job, "slurm_array_parallelism": opts.array_parallelism,
        "slurm_signal_delay_s": SIGNAL_DELAY_S,
    }
    if opts.cpus_per_job:
        p["cpus_per_task"] = max(1, opts.cpus_per_job // tasks)
    if opts.mem_gb:
        p["mem_gb"] = opts.mem_gb
    for name in ("partition", "account", "qos", "constraint"):
        if getattr(opts, name):
            p[f"slurm_{name}"] = getattr(opts, name)
    if opts.setup:
        p["slurm_setup"] = list(opts.setup)
    if opts.additional:
        p["slurm_additional_parameters"] = dict(opts.additional)
    return p


def slurm_executor(folder: str | Path, opts: LauncherOptions):
    """submitit's AutoExecutor on Slurm with :func:`slurm_parameters`; a clear error where
    there is no Slurm."""
    submitit = require_submitit()
    try:
        ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm", slurm_max_num_timeout=opts.max_requeues)
    except RuntimeError as e:
        raise ValueError(f"--launcher slurm: no Slurm here ({e}); run on a Slurm login node, or use "
                         f"--launcher local") from None
    ex.update_parameters(**slurm_parameters(opts))
    return ex


def _placed(job: Job, opts: LauncherOptions) -> Job:
    if opts.gpus_per_job:
        return dataclasses.replace(job, device="cuda")
    return dataclasses.replace(job, device="cpu")


def run_slurm(jobs: Sequence[Job], opts: LauncherOptions, folder: str | Path, *,
              echo: Callable[[str], None] | None = print) -> list[JobResult]:
    """Submit ``jobs`` as one job array and wait for them; one result per job, in order. On
    Ctrl-C the jobs keep running on the cluster (the message says how to stop them)."""
    submitit = require_submitit()
    say = echo or (lambda s: None)
    ex = slurm_executor(folder, opts)
    placed = [_placed(j, opts) for j in jobs]
    with submitit.helpers.clean_env(), ex.batch():  # a driver inside an allocation: no SLURM_* leaks in
        sjobs = [ex.submit(j) for j in placed]
    for j, sj in zip(placed, sjobs):
        say(f"job {sj.job_id} submitted: {j.name} (log {job_logs(sj)[0]})")
    results: dict[int, JobResult] = {}
    index = {id(sj): i for i, sj in enumerate(sjobs)}
    try:
        for sj in submitit.helpers.as_completed(sjobs, poll_frequency=max(opts.poll_s, 5.0)):
            i = index[id(sj)]
            out, err = job_logs(sj)
            try:
                sj.results()
                results[i] = JobResult(placed[i], str(sj.job_id), True, out, err)
            except Exception as e:
                results[i] = JobResult(placed[i], str(sj.job_id), False, out, err, failure_of(e))
            say(results[i].line())
    except KeyboardInterrupt:
        ids = " ".join(str(sj.job_id) for i, sj in enumerate(sjobs) if i not in results)
        say(f"stopped waiting; the jobs keep running on the cluster (scancel {ids} to stop them). "
            f"Rerun the same command once they have ended: finished runs are reused")
        raise
    return [results[i] for i in range(len(sjobs))]
