"""Reports: one scoring setup of one trained supernet, side by side with every other.

A report lives in ``<run dir>/reports/<name>/`` and holds ``scores.csv`` (one row per
candidate) and ``metrics.json`` (every metric with its interval, the truth, the resolved
config, the setup). Its name is ``<protocol>-<calib|nocalib>-<setup hash>``, where the hash
covers everything that can change a number of the report: the protocol, calibration, the
effective scoring config (less the fields listed in :data:`NO_EFFECT_SCORE_FIELDS`), the truth
config (less :data:`TRUTH_EXTRA_FIELDS`: the extra truths a report also ranks against, under
"also" in metrics.json) and a digest of the truth's values. Re-running the same setup rewrites its own report
(atomically); any other setup gets another directory.

Readers (``figures``, ``compare``, ``ablation``, analysis recipes) go through
:func:`load_report` / :func:`find_reports`, which name the report they read and refuse to pick
one silently when a run directory holds several.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from rankbench._io import atomic_path, clean_json, short_digest, write_json
from rankbench.config import RunConfig
from rankbench.rundir import RunDir

__all__ = ["HEADLINE", "SETTINGS", "RunReport", "Report", "ReportError", "report_setup", "report_name", "load_report",
           "find_reports",
           "NO_EFFECT_SCORE_FIELDS", "PROXY_SCORE_FIELDS", "TRUTH_EXTRA_FIELDS"]

#: the headline metrics of summaries, ablation tables and ``rankbench compare``: (key in a
#: ``rank_metrics`` dict, label, number format); Kendall tau per subnet and per hash class, the
#: others per subnet
HEADLINE = (("kendall_tau", "Kendall tau", "{:+.3f}"), ("spearman", "Spearman", "{:+.3f}"),
            ("precision_at_10", "P@10%", "{:.2f}"), ("top1_regret", "top-1 regret", "{:.4f}"))

#: a report's settings: (key in metrics.json "metrics", column in scores.csv, label)
SETTINGS = (("no_calib", "acc_no_calib", "no calibration"), ("calib", "acc_calib", "BN calibration"))

#: score config fields that cannot change a number of a report (tested in tests/test_reports.py)
NO_EFFECT_SCORE_FIELDS = ("group_size",)
#: score config fields of the opt-in zero-cost proxies: in a report's setup only when proxies are
#: chosen (``score.proxies`` not empty), so that a report without them keeps its name
PROXY_SCORE_FIELDS = ("proxies", "proxy_batch_size")


class ReportError(ValueError):
    """A path that is not a report, or a run directory whose report is ambiguous."""


def report_setup(cfg, *, calibrate: bool, truth_digest: str) -> dict[str, Any]:
    """What defines a report, from the *effective* config (protocol applied)."""
    d = cfg.to_dict()
    score = {k: v for k, v in d["score"].items() if k not in NO_EFFECT_SCORE_FIELDS}
    if not score.get("proxies"):  # no proxies: the setup (and name) of a report made before they existed
        score = {k: v for k, v in score.items() if k not in PROXY_SCORE_FIELDS}
    else:
        score["proxies"] = list(score["proxies"])
    return {"protocol": cfg.score.protocol, "calibrate": bool(calibrate), "score": score,
            "truth": _truth_setup(d["truth"]), "truth_digest": truth_digest}


#: truth fields that say how ``rankbench truth`` measures one, with their defaults: they cannot
#: change a report ranked against an NB101 store (the truth's digest covers a measured one), so
#: there they count as their defaults, and ``candidates`` at its default is left out, as before it
#: existed: reports keep their names
TRUTH_MEASURE_DEFAULTS = {"seeds": 2, "train_epochs": 0, "candidates": 0}


#: truth fields that name extra truths a report also ranks against (``truth.also``): they change
#: none of the report's numbers against its own truth (its name stays; the extra truths' digests
#: are in metrics.json under "also"), so they are never in its setup
TRUTH_EXTRA_FIELDS = ("also",)


def _truth_setup(truth: dict[str, Any]) -> dict[str, Any]:
    t = {k: v for k, v in truth.items() if k not in TRUTH_EXTRA_FIELDS}
    if t.get("source") == "nb101":
        t.update({k: v for k, v in TRUTH_MEASURE_DEFAULTS.items() if k in t})
    if t.get("candidates", 0) == 0:
        t.pop("candidates", None)
    return t


def report_name(setup: dict[str, Any]) -> str:
    h = short_digest(setup)
    return f"{setup['protocol']}-{'calib' if setup['calibrate'] else 'nocalib'}-{h}"


#: RunReport fields left out of metrics.json while empty (a report made without them reads as before)
_OMITTED_WHEN_EMPTY = ("also",)


@dataclass
class RunReport:
    """What ``metrics.json`` holds, typed: one scoring setup of one trained supernet. Built by
    :func:`rankbench.pipeline.run_seed`, written by :meth:`write` (with ``scores.csv``), read
    back by :meth:`load` (or :attr:`Report.data`). The field order is the file's key order."""

    report: str  # its name: <protocol>-<calib|nocalib>-<setup hash>
    setup: dict[str, Any]  # what defines it (report_setup)
    variant: str
    preset: str
    space: dict[str, Any]  # name and settings
    seed: int
    run_dir: str
    training_reused: bool
    protocol: dict[str, Any]
    drop_rule: str
    config_fingerprint: str
    training_fingerprint: str
    weights_digest: str
    platform: dict[str, Any]
    platform_notes: list[str]
    truth: dict[str, Any]  # Truth.describe() + reduce used, digest, coverage, noise in intervals
    truth_warnings: list[str]
    notes: list[str]
    candidates: dict[str, int]
    metrics: dict[str, Any]  # per setting (no_calib, calib): ranking_metrics
    references: dict[str, Any]  # per reference ranker: description + ranking_metrics
    score_caches: dict[str, str]
    timings: dict[str, float]
    config: dict[str, Any]  # the effective config
    created: str
    #: per extra truth (``truth.also``, by :func:`rankbench.truth.also_key`): the truth (as
    #: ``truth``, with its coverage of the candidates) and every setting's and reference ranker's
    #: metrics against it, on the candidates it covers; written only when there is one
    also: dict[str, Any] = field(default_factory=dict)
    #: keys a newer or older metrics.json has beyond these fields (kept when read and rewritten)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name != "extra" and not (f.name in _OMITTED_WHEN_EMPTY and not getattr(self, f.name))}
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunReport":
        names = [f.name for f in fields(cls) if f.name != "extra"]
        kw: dict[str, Any] = {k: d.get(k) for k in names if k in d or k not in _OMITTED_WHEN_EMPTY}
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    def write(self, report_dir: str | os.PathLike, scores: Any = None) -> Path:
        """``metrics.json`` (strict JSON) and, given, ``scores.csv`` into ``report_dir``, atomically."""
        out = Path(report_dir)
        if scores is not None:
            with atomic_path(out / RunDir.REPORT_SCORES, ".csv") as tmp:
                scores.to_csv(tmp, index=False)
        write_json(out / RunDir.REPORT_METRICS, clean_json(self.to_dict()))
        return out

    @classmethod
    def load(cls, report_dir: str | os.PathLike) -> "RunReport":
        return cls.from_dict(_from_dir(Path(report_dir)).metrics)


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
        return RunConfig.from_dict(self.metrics["config"])

    @property
    def setup(self) -> dict[str, Any]:
        return self.metrics.get("setup") or {}

    @property
    def data(self) -> RunReport:
        """metrics.json as a :class:`RunReport`."""
        return RunReport.from_dict(self.metrics)

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
    kinds: dict[str, list[str]] = {}
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
