"""``rankbench runs [DIR]``: one line per run directory under the runs root, newest first —
variant, space, seed, status (finished / interrupted / training), epochs done, and each report
with its headline Kendall tau.

:func:`run_state` is what ``run --dry-run`` also uses to say whether a run would be reused. It
reads only the small JSON and CSV files of a run directory (no torch, no pandas).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankbench.cli import EXIT_NOT_FOUND, EXIT_OK, CLIError

__all__ = ["add_parser", "RunState", "run_state", "list_runs", "format_run"]

#: a run whose files changed less than this many seconds (plus twice its checkpoint cadence)
#: ago counts as still training
_GRACE_S = 60.0


@dataclass
class RunState:
    """What a run directory holds, from its files: ``status`` is ``finished``, ``training``
    (unfinished, its checkpoint or log written recently), ``interrupted`` (unfinished, quiet
    for longer than its checkpoint cadence) or ``new`` (no such directory yet)."""

    path: Path
    status: str
    epochs_done: int = 0
    epochs_total: int | None = None
    last_activity: float = 0.0  # seconds since the epoch: newest file of the run
    config: dict[str, Any] = field(default_factory=dict)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, metrics.json)

    @property
    def epochs(self) -> str:
        total = "?" if self.epochs_total is None else str(self.epochs_total)
        return f"{self.epochs_done}/{total}"


def _json(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _log_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def _mtime(*paths: Path) -> float:
    times = []
    for p in paths:
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def run_state(run_dir: str | os.PathLike, *, now: float | None = None, with_reports: bool = True) -> RunState:
    """The state of ``run_dir`` (see :class:`RunState`); ``new`` when it holds no run."""
    from rankbench.rundir import RunDir

    rd = RunDir(run_dir)
    if not rd.exists():
        return RunState(rd.path, "new")
    cfg = _json(rd.config_path)
    train = cfg.get("train") or {}
    total = train.get("epochs")
    rows = _log_rows(rd.train_log)
    last = _mtime(rd.config_path, rd.train_log, rd.checkpoint, rd.done_marker, rd.supernet)
    reports = []
    if with_reports:
        for d in rd.reports():
            m = rd.REPORT_METRICS
            reports.append((d.name, _json(d / m)))
            last = max(last, _mtime(d / m))
    if rd.is_finished():
        done = _json(rd.done_marker)
        return RunState(rd.path, "finished", int(done.get("epochs") or len(rows)), total, last, cfg, reports)
    # unfinished: still training if its files changed within its checkpoint cadence (or, with
    # checkpoints at epoch ends only, within two epochs' time)
    cadence = [float(train.get("checkpoint_interval_s") or 0)]
    if rows:
        try:
            cadence.append(float(rows[-1].get("epoch_s") or 0))
        except ValueError:
            pass
    cadence = [c for c in cadence if c > 0]
    window = _GRACE_S + 2 * (min(cadence) if cadence else 1800.0)
    now = time.time() if now is None else now
    status = "training" if now - last <= window else "interrupted"
    return RunState(rd.path, status, len(rows), total, last, cfg, reports)


def list_runs(root: str | os.PathLike) -> list[RunState]:
    """Every run directory directly under ``root`` (folders holding a config.json; summary and
    ablation folders are not runs), newest first."""
    from rankbench.rundir import RunDir

    root = Path(root)
    states = [run_state(d) for d in sorted(root.iterdir()) if d.is_dir() and RunDir(d).exists()]
    return sorted(states, key=lambda s: s.last_activity, reverse=True)


def _tau(metrics: dict[str, Any], setting: str) -> float | None:
    ps = (((metrics.get("metrics") or {}).get(setting) or {}).get("per_subnet") or {})
    v = ps.get("kendall_tau")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def format_report(name: str, metrics: dict[str, Any]) -> str:
    """``<report> tau <no calib> / <calib>``: the headline Kendall tau per subnet."""
    parts = []
    for setting, label in (("no_calib", "no calib"), ("calib", "calib")):
        t = _tau(metrics, setting)
        if t is not None:
            parts.append(f"{t:+.3f} {label}")
    return f"{name} (tau {', '.join(parts) if parts else 'n/a'})"


def format_run(s: RunState) -> str:
    model, space, train = (s.config.get(k) or {} for k in ("model", "space", "train"))
    space_s = " ".join([str(space.get("name", "?"))] + [f"{k}={v}" for k, v in space.items() if k != "name"])
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_activity)) if s.last_activity else "?"
    reports = "; ".join(format_report(n, m) for n, m in s.reports) if s.reports else "no report"
    return (f"{model.get('variant', '?'):<6} {space_s:<9} seed {train.get('seed', '?'):<5} {s.status:<11} "
            f"{s.epochs:>7} epochs  {when}  {s.path.name}  {reports}")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "runs", help="list the run directories: status, epochs, reports and their Kendall tau",
        description="One line per run directory under DIR (default $RANKBENCH_RUNS or ./runs), newest first: "
                    "variant, space, seed, status, epochs done / planned, last change, the run's name, and each "
                    "report with its Kendall tau per subnet (without / with BN calibration). Status: finished; "
                    "training (unfinished, and its checkpoint or log changed within twice its checkpoint "
                    "cadence); interrupted (unfinished and quiet for longer: continue it with the command that "
                    "started it). Summary and ablation folders are not runs and are left out.")
    p.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="runs root (default $RANKBENCH_RUNS or ./runs)")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    from rankbench.rundir import RunDir, runs_root

    root = args.dir if args.dir is not None else runs_root()
    if not root.exists():
        raise CLIError(f"no runs folder {root}: nothing has been run there yet (rankbench run ... creates it)",
                       EXIT_NOT_FOUND)
    if not root.is_dir():
        raise CLIError(f"{root} is a file, not a runs folder")
    if RunDir(root).exists():  # a run directory itself: its one line
        states = [run_state(root)]
    else:
        states = list_runs(root)
    if not states:
        print(f"no run directories in {root}", file=sys.stderr)
        return EXIT_OK
    for s in states:
        print(format_run(s))
    return EXIT_OK
