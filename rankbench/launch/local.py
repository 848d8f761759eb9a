"""``--launcher local``: submitit's LocalExecutor, ``parallel`` jobs at once on this machine.

submitit starts, logs and requeues each job (one process each, its own log files); the loop
here only keeps at most ``parallel`` of them running and hands each a device: a CUDA device
becomes the job's only visible GPU (so the job trains on ``cuda``); CPU jobs share the cores,
each with the config's ``train.num_threads`` (0: torch's default, all cores: give
``--set train.num_threads=K`` to run several CPU jobs side by side).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from rankbench.launch.jobs import Job
from rankbench.launch.options import LauncherOptions, require_submitit
from rankbench.launch.results import JobResult, failure_of, job_logs

__all__ = ["run_local", "local_executor", "physical_gpu"]


def physical_gpu(device: str) -> int:
    """The GPU index submitit must expose for ``cuda:k``: entry ``k`` of this process's
    ``CUDA_VISIBLE_DEVICES`` when set (submitit replaces that variable in the job)."""
    k = int(device.split(":")[1])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or visible.strip() == "":
        return k
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if k >= len(entries):
        raise ValueError(f"--devices {device}: CUDA_VISIBLE_DEVICES={visible} shows {len(entries)} GPU(s)")
    if not entries[k].isdigit():
        raise ValueError(f"--devices {device}: CUDA_VISIBLE_DEVICES={visible} names GPUs by UUID; use indices "
                         f"there, or unset it and give --devices by index")
    return int(entries[k])


def local_executor(folder: str | Path, device: str | None, opts: LauncherOptions):
    """A LocalExecutor whose jobs see ``device`` (``cuda:k``: that GPU alone; else no GPU)."""
    submitit = require_submitit()
    ex = submitit.LocalExecutor(folder=str(folder), max_num_timeout=opts.max_requeues)
    params: dict = {"timeout_min": opts.timeout_min}
    if device is not None and device.startswith("cuda:"):
        params.update(gpus_per_node=1, visible_gpus=(physical_gpu(device),))
    ex.update_parameters(**params)
    return ex


def _placed(job: Job, device: str | None) -> Job:
    if device is None:
        return job
    return dataclasses.replace(job, device="cuda" if device.startswith("cuda") else "cpu")


def run_local(jobs: Sequence[Job], opts: LauncherOptions, folder: str | Path, *,
              echo: Callable[[str], None] | None = print) -> list[JobResult]:
    """Run ``jobs`` through submitit's LocalExecutor, at most ``opts.parallel`` at once, slot
    ``i`` on ``opts.devices[i % len]`` (none: the job's config decides, CPU). Returns one
    result per job, in order. Ctrl-C stops the running jobs, each at a step with a checkpoint
    (from a terminal, whose Ctrl-C reaches the jobs too, each keeps its last checkpoint)."""
    say = echo or (lambda s: None)
    n, devices = opts.parallel, opts.devices
    slots = [devices[i % len(devices)] if devices else None for i in range(n)]
    executors = [local_executor(folder, d, opts) for d in slots]
    pending = list(enumerate(jobs))
    running: dict[int, tuple[int, Job, Any]] = {}  # slot -> (job index, job, submitit job)
    results: list[JobResult | None] = [None] * len(jobs)
    try:
        while pending or running:
            for s in range(n):
                if s not in running and pending:
                    i, job = pending.pop(0)
                    job = _placed(job, slots[s])
                    sj = executors[s].submit(job)
                    running[s] = (i, job, sj)
                    out, err = job_logs(sj)
                    say(f"job {sj.job_id} started: {job.name}{f' on {slots[s]}' if slots[s] else ''} (log {out})")
            for s, (i, job, sj) in list(running.items()):
                if sj.done():
                    result = _collect(job, sj)
                    results[i] = result
                    del running[s]
                    say(result.line())
            if running:
                time.sleep(opts.poll_s)
    except KeyboardInterrupt:
        for _i, _job, sj in running.values():
            _stop(sj)
        raise
    return [r for r in results if r is not None]


def _stop(sj) -> None:
    """SIGTERM to a local job's controller (its id is the controller's pid), which forwards it
    once to the job: the training stops at the next step with a checkpoint. (submitit's
    ``cancel`` sends SIGINT, and the controller then kills the job a second later.)"""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(sj.job_id), signal.SIGTERM)


def _collect(job: Job, sj) -> JobResult:
    out, err = job_logs(sj)
    if not sj.paths.result_pickle.exists():  # killed (kill -9, out of memory) or gave up requeueing
        tail = _last_line(err)
        return JobResult(job, str(sj.job_id), False, out, err,
                         f"ended without a result (state {sj.state}; killed, out of memory?)"
                         + (f"; last log line: {tail}" if tail else ""))
    try:
        sj.result()
    except Exception as e:  # the job raised: submitit carries its traceback
        return JobResult(job, str(sj.job_id), False, out, err, failure_of(e))
    return JobResult(job, str(sj.job_id), True, out, err)


def _last_line(path: Path | None) -> str:
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()] if path else []
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""
