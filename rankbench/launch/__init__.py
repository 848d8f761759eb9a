"""Every training of an ablation or a multi-seed run, and every shard of a measured truth, as
one job on a real scheduler, through submitit (``pip install 'rankbench[cluster]'``):
``local`` (its LocalExecutor: N jobs at once on this machine, one per GPU or CPU processes)
or ``slurm`` (one job array).

The plan decides: finished runs are reused, unfinished ones become jobs that resume from
their checkpoint, new ones become jobs (:func:`train_missing`). submitit submits, waits,
keeps each job's logs and requeues a preempted or timed-out job (whose ``__call__`` resumes).
Scoring, tables and figures stay in the calling process, as without a launcher, so the
numbers are those of a sequential run with the same seeds.

Importing this package imports neither submitit nor torch.
"""
from __future__ import annotations

from rankbench.launch.jobs import Job, TrainJob, TruthShardJob
from rankbench.launch.options import LAUNCHERS, LauncherOptions, MissingSubmitit, require_submitit
from rankbench.launch.results import JobResult, JobsFailedError
from rankbench.launch.submit import PlannedRun, describe_plan, job_folder, plan_training, submit, train_missing

__all__ = [
    "LAUNCHERS", "LauncherOptions", "MissingSubmitit", "require_submitit", "Job", "TrainJob", "TruthShardJob",
    "JobResult", "JobsFailedError", "PlannedRun", "plan_training", "describe_plan", "submit", "train_missing",
    "job_folder",
]
