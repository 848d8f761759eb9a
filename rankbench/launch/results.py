"""What a launched job came to (:class:`JobResult`), and the error that names the missing
runs when some failed (:class:`JobsFailedError`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rankbench.launch.jobs import Job

__all__ = ["JobResult", "JobsFailedError", "failure_of", "job_logs"]


@dataclass(frozen=True)
class JobResult:
    """One submitted job: its id, whether it succeeded, its log files, and why it failed."""

    job: Job
    job_id: str
    ok: bool
    stdout: Path | None
    stderr: Path | None
    error: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"job {self.job_id} done: {self.job.name}"
        return f"job {self.job_id} FAILED: {self.job.name}: {self.error} (log: {self.stderr})"


class JobsFailedError(RuntimeError):
    """Some jobs failed: which results are missing, and each job's log."""

    def __init__(self, failed: Sequence[JobResult], *, what: str = "runs", needed_by: str = "the ablation"):
        self.failed = list(failed)
        lines = [f"{len(self.failed)} job(s) failed; these {what} are missing ({needed_by} needs them):"]
        for r in self.failed:
            lines.append(f"  {r.job.name}: {r.job.target}")
            lines.append(f"    job {r.job_id}: {r.error}")
            lines.append(f"    log: {r.stderr}  (stdout: {r.stdout})")
        lines.append("Rerun the same command: finished work is reused, only what is missing is submitted "
                     "(an interrupted training resumes from its checkpoint).")
        super().__init__("\n".join(lines))


def job_logs(sj) -> tuple[Path | None, Path | None]:
    """(stdout, stderr) of a submitit job (task 0)."""
    try:
        return Path(sj.paths.stdout), Path(sj.paths.stderr)
    except Exception:  # a job whose id is not known yet
        return None, None


_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def failure_of(e: BaseException) -> str:
    """The line of a job's exception that says what went wrong (submitit's own message holds the
    whole remote traceback)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    hits = [ln for ln in lines if _EXC_LINE.match(ln)]
    msg = hits[-1] if hits else (lines[-1] if lines else type(e).__name__)
    return msg[:500]
