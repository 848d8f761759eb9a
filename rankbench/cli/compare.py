"""``rankbench compare``: the headline metrics of several reports in one table, with the config
fields in which they differ (what people otherwise do by hand from metrics.json files), and
which weights each report scored (``weights_digest``) on which platform, so that two reports of
the same name made from different weights are never mistaken for each other.

:func:`compare_table` is the notebook entry point; the command prints its Markdown and, with
``--out``, writes it as Markdown, CSV, JSON or LaTeX (booktabs), chosen by the extension.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rankbench.cli import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, CLIError
from rankbench.config import flatten_config
from rankbench.reports import HEADLINE

__all__ = ["add_parser", "collect_reports", "compare_table", "differing_fields", "compare_markdown",
           "compare_latex", "compare_json", "against", "OUT_FORMATS"]

#: --out formats by extension (a folder gets compare.<ext> of each)
OUT_FORMATS = (".md", ".csv", ".json", ".tex")

#: (key in a metrics dict, level, column stem, label, number format)
_HEADLINE = tuple(
    (key, level, f"{key}_{level[4:]}", label + (f" ({level[4:]})" if key == "kendall_tau" else ""), fmt)
    for key, label, fmt in HEADLINE
    for level in (("per_subnet", "per_class") if key == "kendall_tau" else ("per_subnet",)))
_SETTING_LABELS = {"no_calib": "no calibration", "calib": "BN calibration"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="one table of the headline metrics of several reports, with how their configs differ",
        description="Read the reports (run_dir/reports/<name>/metrics.json) of any runs (any space, variant, "
                    "protocol, seed) and print one Markdown table: Kendall tau per subnet and per hash class "
                    "(95% interval), Spearman, P@10%, top-1 regret for each setting present (without / with "
                    "BN calibration), and one column per resolved config field in which the reports differ.")
    p.add_argument("paths", nargs="+", type=Path, metavar="REPORT_OR_RUN",
                   help="report directories, their metrics.json, or run directories (every report of a run "
                        "directory, unless --report picks one). A glob such as runs/* works: folders that are "
                        "no run (summaries, ablation tables) and runs without a (matching) report are skipped "
                        "with a note")
    p.add_argument("--report", metavar="NAME", help="in run directories, the report with this name (a prefix "
                                                    "such as clean-calib is enough); runs without it are skipped")
    p.add_argument("--references", action="store_true",
                   help="also rows for the reference rankers (parameters, FLOPs, ...) of each report")
    p.add_argument("--truth", metavar="NAME",
                   help="the metrics against an extra truth the reports also ranked against (truth.also; a "
                        "report's metrics.json 'also', e.g. measured) instead of each report's own truth")
    p.add_argument("--out", type=Path,
                   help="also write the table, in the format its extension names: .md (Markdown), .csv, .json "
                        "or .tex (LaTeX, booktabs); a folder (an existing one, or a path without extension) "
                        "gets compare.md, .csv, .json and .tex")
    p.set_defaults(func=cmd_compare)


class _Unusable(Exception):
    """A path that holds nothing to compare (a summary folder, an unscored run): skippable."""


def _reports_of(p: Path, report: str | None) -> list:
    from rankbench.reports import load_report
    from rankbench.rundir import RunDir

    if (p.name == RunDir.REPORT_METRICS and p.is_file()) or (p / RunDir.REPORT_METRICS).is_file():
        return [load_report(p)]
    rd = RunDir(p)
    if not rd.exists():
        hint = ""
        if p.is_dir() and any(RunDir(c).exists() for c in p.iterdir() if c.is_dir()):
            hint = f" (it holds run directories: pass them, e.g. {p}/*)"
        raise _Unusable(f"{p} is neither a report (no {RunDir.REPORT_METRICS}) nor a run directory "
                        f"(no {RunDir.CONFIG}){hint}")
    found = rd.reports()
    if not found:
        raise _Unusable(f"{p} has no report yet (score it with `rankbench run`)")
    if report is None:
        return [load_report(d) for d in found]
    if not any(f.name == report or f.name.startswith(report) for f in found):
        raise _Unusable(f"{p} has no report matching {report!r} (it has {', '.join(f.name for f in found)})")
    return [load_report(p, report)]  # several matching: a ReportError listing them


def collect_reports(paths: Iterable[str | Path], report: str | None = None, *,
                    skip: Callable[[str], None] | None = None) -> list:
    """The reports ``paths`` name (see :func:`rankbench.reports.load_report`); a run directory
    without ``report`` gives all of its reports. Each report once, in the order given. A path
    with nothing to compare (no report or run directory, a run without a report, or without one
    matching ``report``) is a :class:`~rankbench.reports.ReportError`, or, with ``skip``, is
    passed to ``skip`` as a one-line reason and left out."""
    from rankbench.reports import ReportError

    out, seen = [], set()
    for p in paths:
        p = Path(p)
        try:
            reps = _reports_of(p, report)
        except _Unusable as e:
            if skip is None:
                raise ReportError(str(e)) from None
            skip(str(e))
            continue
        for r in reps:
            key = r.path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def against(report, truth: str | None) -> dict[str, Any]:
    """What a report ranked against ``truth``: its metrics.json (its own truth) for None, else
    the extra truth ``truth`` of metrics.json "also" (``truth``, ``metrics``, ``references``);
    a report without that extra truth is a :class:`~rankbench.reports.ReportError`."""
    from rankbench.reports import ReportError

    if truth is None:
        return report.metrics
    also = report.metrics.get("also") or {}
    if truth not in also:
        raise ReportError(f"{report.label} was not ranked against an extra truth {truth!r} (its extra truths: "
                          f"{', '.join(also) or 'none'}); rerun it with --set truth.also=... to add it")
    return also[truth]


def _identity(report, truth: str | None = None) -> dict[str, Any]:
    """A report's resolved config (flattened) plus what else can change its numbers: the truth
    it was measured against (``truth``: that extra truth)."""
    flat = flatten_config(report.config)
    flat.pop("truth.also", None)  # which extra truths a report holds changes none of its numbers
    digest = (against(report, truth).get("truth") or {}).get("digest")
    if digest is None and truth is None:
        digest = (report.setup or {}).get("truth_digest")
    if digest is not None:
        flat["truth.digest"] = digest
    return flat


def differing_fields(reports: Sequence, truth: str | None = None) -> dict[str, list[Any]]:
    """{dotted config key: value per report} for the keys whose values are not all equal
    (a key a report lacks counts as missing, None)."""
    ids = [_identity(r, truth) for r in reports]
    keys = list(dict.fromkeys(k for d in ids for k in d))
    out = {}
    for k in keys:
        vals = [d.get(k) for d in ids]
        if any(v != vals[0] for v in vals[1:]):
            out[k] = vals
    return out


def _num(v: Any) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def _provenance(report) -> dict[str, Any]:
    """``weights`` (digest of the scored weights) and ``platform`` (its key), where the report
    records them (reports made before rankbench recorded them have neither)."""
    m = report.metrics
    plat = m.get("platform")
    return {"weights": m.get("weights_digest"),
            "platform": plat.get("key") if isinstance(plat, dict) else plat}


def compare_table(reports: Sequence, *, references: bool = False, truth: str | None = None):
    """One row per (report, setting present), headline metrics with their intervals, then one
    column per config field in which the reports differ. ``weights`` and ``platform`` columns
    (the digest of the scored weights, the compute platform's key) come right after the setting
    whenever a report records them. ``truth``: the metrics against that extra truth of every
    report (metrics.json "also"), not against its own. Returns (DataFrame, differing)."""
    import pandas as pd

    diff = differing_fields(reports, truth)
    prov = [_provenance(r) for r in reports]
    prov_cols = [k for k in ("weights", "platform") if any(p[k] is not None for p in prov)]
    rows = []
    for i, r in enumerate(reports):
        src = against(r, truth)
        settings = [(s, _SETTING_LABELS.get(s, s), m) for s, m in (src.get("metrics") or {}).items()]
        if references:
            settings += [(f"ref_{n}", f"reference: {n}", m) for n, m in (src.get("references") or {}).items()]
        for _setting, label, m in settings:
            row: dict[str, Any] = {"report": r.label, "setting": label}
            row.update({k: prov[i][k] for k in prov_cols})
            for key, level, col, _lab, _fmt in _HEADLINE:
                lm = (m or {}).get(level) or {}
                row[col] = _num(lm.get(key))
                if key == "kendall_tau":
                    ci = lm.get(key + "_ci") or (None, None)
                    row[col + "_ci_low"], row[col + "_ci_high"] = _num(ci[0]), _num(ci[1])
            row["n_subnet"] = ((m or {}).get("per_subnet") or {}).get("n")
            row["mean_accuracy"] = _num((m or {}).get("mean_accuracy"))
            for k, vals in diff.items():
                row[k] = vals[i]
            row["path"] = str(r.path)
            rows.append(row)
    return pd.DataFrame(rows), diff


def _cell(row: dict, col: str, fmt: str) -> str:
    v = row.get(col)
    if v is None or not math.isfinite(v):
        return "n/a"
    s = fmt.format(v)
    lo, hi = row.get(col + "_ci_low"), row.get(col + "_ci_high")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        s += f" [{lo:+.2f}, {hi:+.2f}]"
    return s


def _md(v: Any) -> str:
    text = "-" if v is None else (", ".join(map(str, v)) if isinstance(v, tuple) else str(v))
    return text.replace("|", "\\|")


def _columns(table, diff: dict[str, list[Any]]) -> tuple[list[str], Callable[[dict], list[str]]]:
    """The shown columns (labels) and a function giving a row's cells as plain text."""
    prov = [k for k in ("weights", "platform") if k in table.columns]
    cols = ["report", "setting"] + prov + [lab for *_x, lab, _s in _HEADLINE] + list(diff)

    def cells(r: dict) -> list[str]:
        return ([str(r["report"]), str(r["setting"])] + [_md(_none(r.get(k))) for k in prov]
                + [_cell(r, col, fmt) for _k, _l, col, _lab, fmt in _HEADLINE] + [_md(_none(r.get(k))) for k in diff])

    return cols, cells


def _none(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _head(table, diff: dict[str, list[Any]]) -> str:
    n = table["report"].nunique() if len(table) else 0
    head = (f"{n} report(s); 95% bootstrap intervals in brackets; "
            + (f"their configs differ in: {', '.join(diff)}." if diff else "their resolved configs are identical."))
    if "weights" in table.columns and table["weights"].dropna().nunique() > 1:
        head += " They scored different weights (the weights column: digest of the supernet's weights)."
    return head


def compare_markdown(table, diff: dict[str, list[Any]]) -> str:
    """The table as Markdown, with a line saying which config fields differ."""
    cols, cells = _columns(table, diff)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        c = cells(r.to_dict())
        c[0] = f"`{c[0]}`"
        lines.append("| " + " | ".join(c) + " |")
    return _head(table, diff) + "\n\n" + "\n".join(lines)


def compare_latex(table, diff: dict[str, list[Any]]) -> str:
    """The table as LaTeX (booktabs: needs ``\\usepackage{booktabs}``), its head as caption."""
    from rankbench._latex import booktabs

    cols, cells = _columns(table, diff)
    rows = [cells(r.to_dict()) for _, r in table.iterrows()]
    return booktabs(cols, rows, align="ll" + "r" * (len(cols) - 2), caption=_head(table, diff), label="tab:compare")


def compare_json(table, diff: dict[str, list[Any]]) -> str:
    """The table as JSON: ``rows`` (every column of the CSV; NaN as null), ``differing`` (config
    field -> value per report) and ``reports`` (their labels, in order)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, tuple):
            return list(v)
        return v.item() if hasattr(v, "item") else v

    rows = [{k: clean(v) for k, v in r.items()} for r in table.to_dict("records")]
    doc = {"reports": list(dict.fromkeys(table["report"])) if len(table) else [],
           "differing": {k: [clean(v) for v in vals] for k, vals in diff.items()}, "rows": rows}
    return json.dumps(doc, indent=2, default=str)


def _out_paths(out: Path) -> dict[str, Path]:
    """{extension: path} that ``--out`` writes, by its extension; a folder (existing, or a
    path without extension) gets compare.<ext> of every format. Anything else: exit 2."""
    from rankbench.rundir import check_writable

    suffix = out.suffix.lower()
    if out.is_dir() or (not suffix and not out.exists()):
        check_writable(out, "--out")
        return {ext: out / f"compare{ext}" for ext in OUT_FORMATS}
    if suffix not in OUT_FORMATS:
        raise CLIError(f"--out {out}: write a {', '.join(OUT_FORMATS)} file (the extension names the format), "
                       f"or give a folder")
    check_writable(out.parent, "--out", "write it into a writable folder")
    return {suffix: out}


def cmd_compare(args: argparse.Namespace) -> int:
    import sys

    from rankbench._io import atomic_path, write_text
    from rankbench.reports import ReportError

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CLIError(f"no such report or run directory: {', '.join(missing)}", EXIT_NOT_FOUND)
    outs = _out_paths(args.out) if args.out is not None else {}
    skipped: list[str] = []

    def skip(reason: str) -> None:
        skipped.append(reason)
        print(f"note: skipped {reason}", file=sys.stderr)

    try:
        reports = collect_reports(args.paths, args.report, skip=skip)
    except ReportError as e:
        raise CLIError(str(e), EXIT_INVALID) from None
    if not reports:
        raise CLIError("nothing to compare: " + "; ".join(skipped), EXIT_INVALID)
    try:
        table, diff = compare_table(reports, references=args.references, truth=args.truth)
    except ReportError as e:
        raise CLIError(str(e), EXIT_INVALID) from None
    if table.empty:
        raise CLIError("the reports hold no metrics to compare", EXIT_INVALID)
    md = compare_markdown(table, diff)
    if args.truth:
        md = f"Against the extra truth {args.truth!r} of every report (its 'also' in metrics.json).\n\n" + md
    print(md)
    for ext, path in outs.items():
        if ext == ".csv":
            with atomic_path(path, ".csv") as tmp:
                table.to_csv(tmp, index=False)
        else:
            text = {".md": md, ".json": compare_json(table, diff), ".tex": compare_latex(table, diff)}[ext]
            write_text(path, text + "\n")
    if outs:
        print(f"\nwritten: {', '.join(str(p) for p in outs.values())}")
    return EXIT_OK
