"""A measured truth as jobs: shard ``k`` of ``n`` (the hash classes whose index % n == k, as
``rankbench truth --shard k/n``) is one :class:`TruthShardJob` writing its own CSV and work
directory; when all are back the shards are merged into the truth CSV in the order a single
process writes it (seed by seed, classes in the space's order), so the file, its digest and
every number are those of a sequential measurement.

Shards whose trainings are all in the truth CSV or in their own CSV are not submitted again;
an interrupted shard resumes (finished trainings skipped, the unfinished one from its
checkpoint).
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from rankbench._io import atomic_path, write_json
from rankbench.config import RunConfig
from rankbench.launch.jobs import TruthShardJob
from rankbench.launch.options import LauncherOptions
from rankbench.launch.results import JobsFailedError
from rankbench.launch.submit import job_folder, submit, with_job_devices
from rankbench.truth import measured_classes

__all__ = ["ShardPlan", "plan_truth_shards", "describe_truth_plan", "measure_truth_launched", "shard_dir",
           "truth_dry_run_lines"]


@dataclass(frozen=True)
class ShardPlan:
    job: TruthShardJob
    todo: int  # trainings still missing
    total: int

    @property
    def state(self) -> str:
        return "finished" if not self.todo else f"{self.todo} of {self.total} trainings to run"


def shard_dir(out: Path) -> Path:
    """Where the shards of ``out`` keep their CSVs: ``<out stem>-shards/`` beside it."""
    return out.with_name(out.stem + "-shards")


def _work_root(cfg: RunConfig, work_dir: str | Path | None) -> Path:
    from rankbench.rundir import runs_root
    from rankbench.truth import _measure_fingerprint

    return Path(work_dir) if work_dir else runs_root() / "truth-work" / f"{cfg.preset}-{_measure_fingerprint(cfg)}"


def _read(path: Path) -> pd.DataFrame:
    from rankbench.truth import MEASURED_COLUMNS

    if not path.exists():
        return pd.DataFrame(columns=MEASURED_COLUMNS)
    return pd.read_csv(path, dtype={"hash": str, "adjacency": str, "ops": str})


def plan_truth_shards(space, cfg: RunConfig, out: Path, *, seeds: int, shards: int,
                      work_dir: str | Path | None = None, keep_runs: bool = False) -> list[ShardPlan]:
    """One plan per shard: its job and how many of its trainings are missing (counting the
    rows already in ``out`` or in the shard's own CSV)."""
    from rankbench.truth import _measure_fingerprint

    if shards < 1:
        raise ValueError(f"--shards must be >= 1, got {shards}")
    side = out.with_suffix(".json")
    if out.exists() and side.exists():  # the same check measure_truth makes, before any job
        old = json.loads(side.read_text()).get("config_fingerprint")
        if old and old != _measure_fingerprint(cfg):
            raise ValueError(f"{out} was measured with a different network/data/training config; use another "
                             f"--out, or delete {out} and {side} to start over")
    classes = list(measured_classes(space, cfg))
    seed_list = [cfg.train.seed + i for i in range(seeds)]
    have = _read(out)
    done_out = {(str(h), int(s)) for h, s in zip(have["hash"], have["seed"])}
    work, sdir = _work_root(cfg, work_dir), shard_dir(out)
    plans = []
    for k in range(shards):
        csv = sdir / f"shard-{k}-of-{shards}.csv"
        mine = _read(csv)
        done = done_out | {(str(h), int(s)) for h, s in zip(mine["hash"], mine["seed"])}
        want = [(h, s) for s in seed_list for i, h in enumerate(classes) if i % shards == k]
        job = TruthShardJob(cfg=cfg, out=csv, seeds=seeds, shard=(k, shards),
                            work_dir=work / f"shard-{k}-of-{shards}", keep_runs=keep_runs)
        plans.append(ShardPlan(job, sum((h, s) not in done for h, s in want), len(want)))
    return plans


def describe_truth_plan(plans: list[ShardPlan], opts: LauncherOptions) -> list[tuple[str, object]]:
    todo = [p for p in plans if p.todo]
    lines: list[tuple[str, object]] = [("launcher", opts.describe()),
                                       ("jobs to submit", f"{len(todo)} of {len(plans)} shards")]
    for i, p in enumerate(todo, 1):
        lines.append((f"job {i}/{len(todo)}: {p.job.name} ({p.state})", p.job.out))
    lines += [(f"finished: {p.job.name}", p.job.out) for p in plans if not p.todo]
    return lines


def measure_truth_launched(space, cfg: RunConfig, out: str | Path, opts: LauncherOptions, *, seeds: int,
                           shards: int | None = None, work_dir: str | Path | None = None, keep_runs: bool = False,
                           echo: Callable[[str], None] | None = print):
    """Measure the truth of every hash class of ``space`` with one job per shard, merge the
    shards into ``out`` (+ its JSON sidecar) and return the truth, as
    :func:`rankbench.truth.measure_truth` does in one process."""
    from rankbench.truth import measure_truth

    out = Path(out)
    opts = with_job_devices(cfg, opts)
    n = shards or _default_shards(opts, len(measured_classes(space, cfg)))
    plans = plan_truth_shards(space, cfg, out, seeds=seeds, shards=n, work_dir=work_dir, keep_runs=keep_runs)
    todo = [p for p in plans if p.todo]
    say = echo or (lambda s: None)
    say(f"{n} shard(s): {len(plans) - len(todo)} finished, {len(todo)} to run as jobs; {opts.describe()}")
    classes = list(measured_classes(space, cfg))
    _seed_from_out(out, plans, classes)
    results = submit([p.job for p in todo], opts, folder=job_folder(opts), echo=echo)
    failed = [r for r in results if not r.ok]
    if failed:
        raise JobsFailedError(failed, what="truth shards", needed_by="the truth")
    _merge(out, plans, classes, [cfg.train.seed + i for i in range(seeds)])
    truth = measure_truth(space, cfg, out, seeds=seeds, progress=False, work_dir=_work_root(cfg, work_dir),
                          keep_runs=keep_runs)
    if not keep_runs:
        shutil.rmtree(shard_dir(out), ignore_errors=True)
        work = _work_root(cfg, work_dir)
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
    return truth


def _default_shards(opts: LauncherOptions, n_classes: int) -> int:
    if opts.kind == "local":
        return min(n_classes, opts.parallel)
    return n_classes  # Slurm: one job per hash class, array_parallelism of them at once


def _seed_from_out(out: Path, plans: list[ShardPlan], classes: list[str]) -> None:
    """A new shard CSV starts with the rows ``out`` already has for its classes (the job skips
    them)."""
    have = _read(out)
    if not len(have):
        return
    index = {h: i for i, h in enumerate(classes)}
    for p in plans:
        k, n = p.job.shard
        if p.job.out.exists() or not p.todo:
            continue
        rows = have[[str(h) in index and index[str(h)] % n == k for h in have["hash"]]]
        if len(rows):
            p.job.out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(p.job.out, ".csv") as tmp:
                rows.to_csv(tmp, index=False)


def _merge(out: Path, plans: list[ShardPlan], classes: list[str], seed_list: list[int]) -> None:
    """The shards' rows (and ``out``'s own) in a single process's order, into ``out``; the
    sidecar gathers the shards' sessions, so that measure_truth can finish it."""
    from rankbench.truth import MEASURED_COLUMNS

    frames = [_read(out)] + [_read(p.job.out) for p in plans]
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True)
    rows = rows.drop_duplicates(["hash", "seed"], keep="first")
    index = {h: i for i, h in enumerate(classes)}
    seed_at = {s: i for i, s in enumerate(seed_list)}
    key = [(seed_at.get(int(s), len(seed_at) + int(s)), index.get(str(h), len(index)))
           for h, s in zip(rows["hash"], rows["seed"])]
    rows = rows.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k")[MEASURED_COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, ".csv") as tmp:
        rows.to_csv(tmp, index=False)
    side = out.with_suffix(".json")
    prov: dict[str, Any] = {}
    if side.exists():
        prov = json.loads(side.read_text())
    else:
        prov["command"] = " ".join(sys.argv)  # not the shard jobs' own command lines
    sessions = list(prov.get("sessions", []))
    for p in plans:
        s = p.job.out.with_suffix(".json")
        if s.exists():
            shard_prov = json.loads(s.read_text())
            for k, v in shard_prov.items():
                prov.setdefault(k, v)
            sessions += [{**x, "shard": f"{p.job.shard[0]}/{p.job.shard[1]}"} for x in shard_prov.get("sessions", [])]
    if prov:
        prov.update(sessions=sessions, finished=False, shards=len(plans))
        write_json(side, prov)


def truth_dry_run_lines(space, cfg: RunConfig, out: str | Path, opts: LauncherOptions, *, seeds: int,
                        shards: int | None = None, work_dir: str | Path | None = None) -> list[tuple[str, object]]:
    """``rankbench truth --launcher ... --dry-run``: the shards that would be submitted."""
    n = shards or _default_shards(opts, len(measured_classes(space, cfg)))
    return describe_truth_plan(plan_truth_shards(space, cfg, Path(out), seeds=seeds, shards=n, work_dir=work_dir),
                               opts)
