"""``rankbench compare``: the headline metrics of several reports in one table, with the config
fields in which they differ (what people otherwise do by hand from metrics.json files).

:func:`compare_table` is the notebook entry point; the command prints its Markdown and, with
``--out``, writes it as CSV and Markdown.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from rankbench.cli import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, CLIError

__all__ = ["add_parser", "collect_reports", "compare_table", "differing_fields", "compare_markdown"]

#: (key in a metrics dict, level, column stem, label, number format)
_HEADLINE = (
    ("kendall_tau", "per_subnet", "kendall_tau_subnet", "Kendall tau (subnet)", "{:+.3f}"),
    ("kendall_tau", "per_class", "kendall_tau_class", "Kendall tau (class)", "{:+.3f}"),
    ("spearman", "per_subnet", "spearman_subnet", "Spearman", "{:+.3f}"),
    ("precision_at_10", "per_subnet", "precision_at_10_subnet", "P@10%", "{:.2f}"),
    ("top1_regret", "per_subnet", "top1_regret_subnet", "top-1 regret", "{:.4f}"),
)
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
                        "directory, unless --report picks one)")
    p.add_argument("--report", metavar="NAME", help="in run directories, the report with this name (a prefix "
                                                    "such as clean-calib is enough)")
    p.add_argument("--references", action="store_true",
                   help="also rows for the reference rankers (parameters, FLOPs, ...) of each report")
    p.add_argument("--out", type=Path, help="also write the table: a folder (compare.csv + compare.md in it) "
                                            "or a .csv / .md path (both written, same stem)")
    p.set_defaults(func=cmd_compare)


def collect_reports(paths: Iterable[str | Path], report: str | None = None) -> list:
    """The reports ``paths`` name (see :func:`rankbench.reports.load_report`); a run directory
    without ``report`` gives all of its reports. Each report once, in the order given."""
    from rankbench.reports import load_report
    from rankbench.rundir import RunDir

    out, seen = [], set()
    for p in paths:
        p = Path(p)
        rd = RunDir(p)
        found = rd.reports() if report is None and rd.exists() else []
        reps = [load_report(d) for d in found] if len(found) > 1 else [load_report(p, report)]
        for r in reps:
            key = r.path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _identity(report) -> dict[str, Any]:
    """A report's resolved config (flattened) plus what else can change its numbers: the truth
    it was measured against."""
    flat = _flatten(report.config.to_dict())
    digest = (report.metrics.get("truth") or {}).get("digest") or (report.setup or {}).get("truth_digest")
    if digest is not None:
        flat["truth.digest"] = digest
    return flat


def differing_fields(reports: Sequence) -> dict[str, list[Any]]:
    """{dotted config key: value per report} for the keys whose values are not all equal
    (a key a report lacks counts as missing, None)."""
    ids = [_identity(r) for r in reports]
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


def compare_table(reports: Sequence, *, references: bool = False):
    """One row per (report, setting present), headline metrics with their intervals, then one
    column per config field in which the reports differ. Returns (DataFrame, differing)."""
    import pandas as pd

    diff = differing_fields(reports)
    rows = []
    for i, r in enumerate(reports):
        settings = [(s, _SETTING_LABELS.get(s, s), m) for s, m in (r.metrics.get("metrics") or {}).items()]
        if references:
            settings += [(f"ref_{n}", f"reference: {n}", m) for n, m in (r.metrics.get("references") or {}).items()]
        for setting, label, m in settings:
            row: dict[str, Any] = {"report": r.label, "setting": label}
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


def compare_markdown(table, diff: dict[str, list[Any]]) -> str:
    """The table as Markdown, with a line saying which config fields differ."""
    cols = ["report", "setting"] + [lab for *_x, lab, _s in _HEADLINE] + list(diff)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        r = r.to_dict()
        cells = [f"`{r['report']}`", r["setting"]] + [_cell(r, col, fmt) for _k, _l, col, _lab, fmt in _HEADLINE]
        cells += [_md(r[k]) for k in diff]
        lines.append("| " + " | ".join(cells) + " |")
    n = table["report"].nunique() if len(table) else 0
    head = (f"{n} report(s); 95% bootstrap intervals in brackets; "
            + (f"their configs differ in: {', '.join(diff)}." if diff else "their resolved configs are identical."))
    return head + "\n\n" + "\n".join(lines)


def _out_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix.lower() in (".csv", ".md"):
        return out.with_suffix(".csv"), out.with_suffix(".md")
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a folder; give a folder or a .csv/.md path")
    return out / "compare.csv", out / "compare.md"


def cmd_compare(args: argparse.Namespace) -> int:
    from rankbench._io import atomic_path, write_text
    from rankbench.reports import ReportError

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CLIError(f"no such report or run directory: {', '.join(missing)}", EXIT_NOT_FOUND)
    csv_path, md_path = _out_paths(args.out) if args.out is not None else (None, None)
    try:
        reports = collect_reports(args.paths, args.report)
    except ReportError as e:
        raise CLIError(str(e), EXIT_INVALID) from None
    table, diff = compare_table(reports, references=args.references)
    if table.empty:
        raise CLIError("the reports hold no metrics to compare", EXIT_INVALID)
    md = compare_markdown(table, diff)
    print(md)
    if csv_path is not None:
        with atomic_path(csv_path, ".csv") as tmp:
            table.to_csv(tmp, index=False)
        write_text(md_path, md + "\n")
        print(f"\nwritten: {csv_path}, {md_path}")
    return EXIT_OK
