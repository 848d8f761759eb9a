"""The launcher options of ``run``, ``ablation`` and ``truth`` (standard library only at parse
time), and the options they resolve to."""
from __future__ import annotations

import argparse
import os

from rankbench.cli import CLIError
from rankbench.launch.options import LAUNCHERS, LauncherOptions, MissingSubmitit, parse_time_min, require_submitit

__all__ = ["add_launcher_options", "launcher_from_args", "dry_run_jobs", "train_runs_first"]


def add_launcher_options(p: argparse.ArgumentParser, *, truth: bool = False) -> None:
    what = "each truth shard" if truth else "each training"
    g = p.add_argument_group(
        "launcher", f"run {what} as one job through submitit (pip install 'rankbench[cluster]'); finished "
                    "work is reused, a rerun submits only what is missing, scoring and tables stay here")
    g.add_argument("--launcher", choices=LAUNCHERS,
                   help="local: submitit's LocalExecutor on this machine; slurm: one Slurm job array")
    g.add_argument("--launcher-config", metavar="FILE.toml",
                   help="a TOML file whose [launcher] table sets any option below (options given here win)")
    g.add_argument("--jobs", type=int, help="local: jobs at once (default: one per --devices entry, else 1)")
    g.add_argument("--devices", type=lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
                   metavar="cuda:0,cuda:1,...", help="local: a GPU (or cpu) per job, handed out round robin")
    g.add_argument("--partition", help="slurm: partition")
    g.add_argument("--time", type=_time, metavar="MIN|H:MM:SS",
                   help="wall-clock limit per job; a job signalled before it checkpoints and is requeued")
    g.add_argument("--gpus-per-job", type=int, help="slurm: GPUs per job (default 1; > 1: DDP within the job; "
                                                    "0: CPU jobs)")
    g.add_argument("--cpus-per-job", type=int, help="slurm: CPUs per job")
    g.add_argument("--array-parallelism", type=int, help="slurm: jobs of the array running at once (default 64)")
    g.add_argument("--launcher-dir", metavar="DIR", help="submitit's folder of logs and pickles "
                                                         "(default <runs root>/submitit)")
    if truth:
        g.add_argument("--shards", type=int, help="jobs the truth is split into (default: --jobs locally, "
                                                  "one per hash class on Slurm)")


def _time(s: str) -> int:
    try:
        return parse_time_min(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def launcher_from_args(args: argparse.Namespace) -> LauncherOptions | None:
    """The launcher options, or None without ``--launcher``; exit 2 (CLIError) when they are
    invalid or submitit is not installed."""
    if not getattr(args, "launcher", None):
        given = [f"--{k.replace('_', '-')}" for k in ("launcher_config", "jobs", "devices", "partition",
                                                       "gpus_per_job", "array_parallelism", "shards")
                 if getattr(args, k, None) is not None]
        if given:
            raise CLIError(f"{', '.join(given)} needs --launcher local|slurm")
        return None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise CLIError("--launcher starts its own processes: run the command as one process, not under torchrun")
    if getattr(args, "shard", None):
        raise CLIError("--shard K/N is for one process; with --launcher, give --shards N")
    try:
        require_submitit()
        return LauncherOptions.build(
            args.launcher, args.launcher_config, jobs=args.jobs, devices=args.devices, time_min=args.time,
            partition=args.partition, gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
            array_parallelism=args.array_parallelism, folder=args.launcher_dir)
    except MissingSubmitit as e:
        raise CLIError(str(e)) from None
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None


def dry_run_jobs(planned, launcher: LauncherOptions | None) -> list[tuple[str, object]]:
    """``--dry-run`` lines: each job the launcher would submit and each run it would reuse."""
    if launcher is None:
        return []
    from rankbench.launch.submit import describe_plan, plan_training

    return describe_plan(plan_training(planned), launcher)


def train_runs_first(cfg, planned, launcher: LauncherOptions | None, *, runs_root=None, echo=print) -> None:
    """``run --seeds N --launcher``: every missing training of ``planned`` (a plan's, whose
    truth coverage was checked when it was resolved: :func:`rankbench.plan.resolve`) as one job;
    the sequential pipeline then reuses them and scores here."""
    if launcher is None:
        return
    from rankbench.launch.submit import train_missing

    train_missing(planned, launcher, runs_root=runs_root, echo=echo, needed_by="this run")
