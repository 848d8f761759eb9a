"""Reports: one scoring setup of one trained supernet, side by side with every other.

A report lives in ``<run dir>/reports/<name>/`` and holds ``scores.csv`` (one row per
candidate) and ``metrics.json`` (every metric with its interval, the truth, the resolved
config, the setup). Its name is ``<protocol>-<calib|nocalib>-<setup hash>``, where the hash
covers everything that can change a number of the report: the protocol, calibration, the
effective scoring config (less the fields listed in :data:`NO_EFFECT_SCORE_FIELDS`), the truth
config and a digest of the truth's values. Re-running the same setup rewrites its own report
(atomically); any other setup gets another directory.

Readers (``figures``, ``compare``, ``ablation``, analysis recipes) go through
:func:`load_report` / :func:`find_reports`, which name the report they read and refuse to pick
one silently when a run directory holds several.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rankbench.rundir import RunDir

__all__ = ["Report", "ReportError", "report_setup", "report_name", "load_report", "find_reports",
           "NO_EFFECT_SCORE_FIELDS"]

#: score config fields that cannot change a number of a report (tested in tests/test_reports.py)
NO_EFFECT_SCORE_FIELDS = ("group_size",)


class ReportError(ValueError):
    """A path that is not a report, or a run directory whose report is ambiguous."""


def report_setup(cfg, *, calibrate: bool, truth_digest: str) -> dict[str, Any]:
    """What defines a report, from the *effective* config (protocol applied)."""
    d = cfg.to_dict()
    score = {k: v for k, v in d["score"].items() if k not in NO_EFFECT_SCORE_FIELDS}
    return {"protocol": cfg.score.protocol, "calibrate": bool(calibrate), "score": score,
            "truth": d["truth"], "truth_digest": truth_digest}


def report_name(setup: dict[str, Any]) -> str:
    blob = json.dumps(setup, sort_keys=True, default=str)
    h = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return f"{setup['protocol']}-{'calib' if setup['calibrate'] else 'nocalib'}-{h}"


@dataclass
class Report:
    """One report: its directory, metrics.json, and (loaded on first use) scores.csv."""

    path: Path
    metrics: dict[str, Any]
    _scores: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def label(self) -> str:
        """``<run dir name>/<report name>``: how figures and tables name what they read."""
        return f"{self.run_dir.name}/{self.name}"

    @property
    def config(self):
        from rankbench.config import RunConfig

        return RunConfig.from_dict(self.metrics["config"])

    @property
    def setup(self) -> dict[str, Any]:
        return self.metrics.get("setup") or {}

    @property
    def scores(self):
        if self._scores is None:
            import pandas as pd

            self._scores = pd.read_csv(self.path / RunDir.REPORT_SCORES,
                                       dtype={"subnet": str, "name": str, "adjacency": str, "hash": str})
        return self._scores


def _from_dir(d: Path) -> Report:
    m = d / RunDir.REPORT_METRICS
    try:
        metrics = json.loads(m.read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{m}: not valid JSON ({e}); re-run the scoring that wrote it") from None
    return Report(d, metrics)


def load_report(path: str | os.PathLike, report: str | None = None) -> Report:
    """A report from its directory, its metrics.json, or a run directory (then ``report`` names
    it, or the run must hold exactly one; else a :class:`ReportError` listing them)."""
    p = Path(path)
    if p.name == RunDir.REPORT_METRICS and p.is_file():
        return _from_dir(p.parent)
    if (p / RunDir.REPORT_METRICS).is_file():
        return _from_dir(p)
    rd = RunDir(p)
    if not rd.exists():
        raise ReportError(f"{p} is neither a report (no {RunDir.REPORT_METRICS}) nor a run directory "
                          f"(no {RunDir.CONFIG})")
    found = rd.reports()
    names = [f.name for f in found]
    if report is not None:
        matches = [f for f in found if f.name == report or f.name.startswith(report)]
        if len(matches) == 1:
            return _from_dir(matches[0])
        what = "no report" if not matches else f"{len(matches)} reports"
        raise ReportError(f"{p}: {what} match {report!r}; reports here: {', '.join(names) or '(none)'}")
    if not found:
        raise ReportError(f"{p} has no report yet: run `rankbench run` with this config to score it")
    if len(found) > 1:
        raise ReportError(f"{p} holds {len(found)} reports ({', '.join(names)}); name one "
                          f"(--report NAME, a prefix such as 'clean-calib' is enough) or pass its directory")
    return _from_dir(found[0])


def find_reports(paths: Iterable[str | os.PathLike], report: str | None = None) -> list[Report]:
    """:func:`load_report` for each path; all must share one setup (protocol, calibration and
    scoring config, less the seed-independent hash suffix) or a :class:`ReportError` says how
    they differ."""
    reports = [load_report(p, report) for p in paths]
    kinds = {}
    for r in reports:
        s = r.setup
        key = json.dumps({k: s.get(k) for k in ("protocol", "calibrate", "score", "truth", "truth_digest")},
                         sort_keys=True, default=str)
        kinds.setdefault(key, []).append(r.label)
    if len(kinds) > 1:
        groups = "; ".join(f"[{', '.join(v)}]" for v in kinds.values())
        raise ReportError(f"these reports come from {len(kinds)} different scoring setups: {groups}; "
                          f"pick reports of one setup (--report NAME)")
    return reports
