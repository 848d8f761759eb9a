"""Self-contained HTML pages of a report and of an ablation: what a person opens first.

``report.html`` sits next to a report's ``metrics.json``
(``<run>/reports/<name>/report.html``), and an ablation folder has its own: the summary table
(Kendall tau with its 95% interval beside the reference rankers), every figure (embedded as
base64 PNG), the truth and its reliability, the config's differences from its preset, and
provenance (versions.json with the platform, the weights digest, fingerprints). One file, no
server, no external URL: it opens from a file manager, an e-mail or an archive.

:func:`report_html` and :func:`ablation_html` are pure (a folder in, a string out);
:func:`write_report_html` and :func:`write_ablation_html` write the page atomically;
:func:`publish_report` and :func:`publish_ablation` draw the figures first (what the pipeline
calls when it writes a report or an ablation folder).
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Container, Iterable, Sequence

import pandas as pd

from rankbench._io import write_text
from rankbench.config import RunConfig
from rankbench.reports import load_report
from rankbench.rundir import RunDir

__all__ = ["REPORT_HTML", "PAGES_ENV", "report_html", "ablation_html", "write_report_html", "write_ablation_html",
           "publish_report", "publish_ablation"]

#: the page's file name, in a report directory and in an ablation folder
REPORT_HTML = "report.html"
#: where a report's figures go (inside the report directory)
FIGURES_DIR = "figures"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
max-width:1180px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 6px}
.sub{color:#555;margin:0 0 8px}.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;
margin-right:6px;background:#eef;color:#225}.badge.warn{background:#fde8e8;color:#8a1c1c;font-weight:600}
nav{font-size:13px;margin:6px 0 4px}nav a{margin-right:12px;color:#0b57d0;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 4px;font-size:13px}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{font-weight:600;background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.ref td{color:#555}tr.best td{font-weight:600}
.note{color:#555;font-size:12.5px;margin:2px 0}.warn{color:#8a1c1c}
figure{margin:18px 0 24px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;margin-top:4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;max-height:480px}
details{margin:8px 0}summary{cursor:pointer;color:#0b57d0}
.scroll{overflow-x:auto}table.kv td:first-child{white-space:nowrap;color:#444;padding-right:16px}
"""

_SETTINGS = (("no_calib", "without BN calibration"), ("calib", "with BN calibration"))


# -- small pieces ---------------------------------------------------------------------------
def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _f(v: Any) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def _fmt(v: Any, spec: str = "{:.3f}") -> str:
    x = _f(v)
    return "n/a" if not math.isfinite(x) else spec.format(x)


def _ci(m: dict | None, key: str) -> str:
    if not m or m.get(key) is None:
        return "n/a"
    s = _fmt(m.get(key), "{:+.3f}")
    ci = m.get(key + "_ci")
    if ci and len(ci) == 2 and all(math.isfinite(_f(c)) for c in ci):
        s += f" [{_f(ci[0]):+.3f}, {_f(ci[1]):+.3f}]"
    return s


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, num_from: int = 1,
           row_class: Sequence[str] | None = None) -> str:
    """An HTML table; cells from column ``num_from`` on are right-aligned numbers."""
    out = ["<div class='scroll'><table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header)
           + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f" class='{_e(row_class[i])}'" if row_class and row_class[i] else ""
        cells = "".join(f"<td class='num'>{_e(c)}</td>" if j >= num_from else f"<td>{_e(c)}</td>"
                        for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _kv(items: Iterable[tuple[str, Any]]) -> str:
    rows = [(k, v) for k, v in items if v is not None and v != ""]
    return "<div class='scroll'><table class='kv'><tbody>" + "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</tbody></table></div>"


def _yes_no(value: Any, yes: str = "yes", no: str = "no") -> str | None:
    """``yes`` / ``no`` for a recorded True / False; None (the row is left out) for anything else."""
    return {True: yes, False: no}.get(value)


def _png(path: Path) -> tuple[str, int | None]:
    """(data URI, CSS width in px at the figure's physical size) of a PNG: figures drawn at
    different sizes then show their text at one size."""
    data = path.read_bytes()
    width = int.from_bytes(data[16:20], "big") if data[:8] == b"\x89PNG\r\n\x1a\n" else 0
    dpi = _png_dpi(data)
    css = round(width / dpi * _PX_PER_INCH) if width and dpi else None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), css


def _png_dpi(data: bytes) -> float | None:
    """The resolution a PNG records (its pHYs chunk, pixels per metre), None if it has none."""
    i = data.find(b"pHYs", 8, 4096)
    if i < 0 or len(data) < i + 13 or data[i + 12] != 1:
        return None
    return int.from_bytes(data[i + 4:i + 8], "big") * 0.0254


#: CSS pixels per inch of figure: 9 pt figure text shows at about 15 px
_PX_PER_INCH = 120


def _figures(paths: Sequence[Path], scope: str, base: Path) -> str:
    """Every PNG in ``paths`` as an embedded figure, in the registry's order, with its caption
    (naming the PDF and CSV beside it, relative to the page's folder ``base``)."""
    from rankbench.figures.registry import figure_of_file

    def key(p: Path):
        spec = figure_of_file(p, scope)
        return (spec.order if spec else 10_000, p.name)

    out = []
    for p in sorted(paths, key=key):
        spec = figure_of_file(p, scope)
        caption = spec.doc if spec else ""
        files = [f for f in sorted(p.parent.glob(p.stem + ".*")) if f.suffix in (".pdf", ".csv")]
        rel = ", ".join(os.path.relpath(f, base) for f in files)
        where = f" Beside it: {rel}." if rel else ""
        uri, width = _png(p)
        size = f" style='width:{width}px'" if width else ""
        out.append(f"<figure id='fig-{_e(p.stem)}'><img src='{uri}'{size} alt='{_e(p.stem.replace('_', ' '))}'>"
                   f"<figcaption><b>{_e(p.stem)}</b>: {_e(caption)}{_e(where)}</figcaption></figure>")
    return "".join(out) or "<p class='note'>No figures were drawn (see the log of the run).</p>"


def _page(title: str, body: Sequence[str], toc: Sequence[tuple[str, str]]) -> str:
    nav = "<nav>" + "".join(f"<a href='#{_e(a)}'>{_e(t)}</a>" for a, t in toc) + "</nav>"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            + body[0] + nav + "".join(body[1:]) + "</body></html>\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


# -- the truth, the config, provenance --------------------------------------------------------
def _truth_section(truth: dict[str, Any], warnings_: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    cov = truth.get("coverage") or {}
    reps = truth.get("repeats_per_class") or {}
    items = [
        ("source", f"{truth.get('source', '?')}: {truth.get('location', '?')}"),
        ("metric", truth.get("metric")),
        ("reduction", truth.get("reduce_used", truth.get("reduce"))),
        ("coverage", f"{cov.get('covered', '?')}/{cov.get('candidates', '?')} candidates, "
                     f"{cov.get('classes_covered', '?')}/{cov.get('classes', '?')} hash classes" if cov else None),
        ("repeats per class", ", ".join(f"{v} classes x {k}" for k, v in sorted(reps.items(), key=lambda t: int(t[0])))
         if reps else None),
        ("seeds", ", ".join(map(str, truth["seeds"])) if truth.get("seeds") else None),
        ("intervals include its noise", _yes_no(truth.get("noise_in_intervals"), "yes (its repeats are resampled)")),
        ("digest", truth.get("digest")),
    ]
    parts = [_kv(items)]
    rel = truth.get("reliability")
    if rel and rel.get("estimated_tau") is not None:
        parts.append("<h3>Reliability</h3>")
        parts.append(_kv([
            ("split-half tau", f"{_fmt(rel.get('split_half_tau'))} ± {_fmt(rel.get('split_half_tau_sd'))} "
                               f"(two halves of {rel.get('n_seeds')} repeats over {rel.get('n_classes')} classes, "
                               f"{rel.get('n_splits')} splits)"),
            ("estimated tau against a noise-free truth", _fmt(rel.get("estimated_tau"))),
            ("target", f"{_fmt(rel.get('target_tau'), '{:.2f}')}: "
                       + (f"met with {rel.get('n_seeds')} repeats" if _f(rel.get("estimated_tau")) >= _f(
                           rel.get("target_tau")) else f"needs about {rel.get('seeds_needed')} repeats")),
        ]))
        parts.append("<p class='note'>No ranker can be expected to agree with this truth much better than the "
                     "estimated tau: it bounds every tau on this page.</p>")
    else:
        parts.append("<p class='note'>The truth's reliability is unknown (fewer than 2 repeats per class).</p>")
    parts += [f"<p class='note warn'>warning: {_e(w)}</p>" for w in warnings_]
    parts += [f"<p class='note'>note: {_e(n)}</p>" for n in notes]
    return "".join(parts)


def _config_section(cfg) -> str:
    from rankbench.figures._runs import preset_diff, preset_known

    diff = preset_diff(cfg)
    if not preset_known(cfg):
        head = (f"<p class='warn'>Preset <code>{_e(cfg.preset)}</code> cannot be loaded here: the differences "
                f"from it are unknown. The resolved config is below.</p>")
    elif not diff:
        head = f"<p>Preset <code>{_e(cfg.preset)}</code> as shipped (variant and seed aside).</p>"
    else:
        head = (f"<p>{len(diff)} field{'s' if len(diff) != 1 else ''} differ from preset "
                f"<code>{_e(cfg.preset)}</code> (variant, seed and fields that cannot change a number aside; "
                f"what the protocol fixes is not an override):</p>"
                + _table(("field", "preset", "this run"), [(k, _short(p), _short(v)) for k, (p, v) in diff.items()],
                         num_from=99))
    full = json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=str)
    return head + f"<details><summary>the fully resolved config</summary><pre>{_e(full)}</pre></details>"


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_short(x)}" for k, x in v.items())
    return json.dumps(v, default=str) if isinstance(v, (list, tuple)) else str(v)


def _versions_table(versions: dict[str, Any]) -> str:
    if not versions:
        return "<p class='note'>No versions.json.</p>"
    return _kv([(k, _short(v)) for k, v in versions.items()])


# -- a report ---------------------------------------------------------------------------------
def _status(cfg, finished: bool | None, train_log: Path | None) -> list[str]:
    from rankbench.figures._runs import preset_known, preset_overrides

    badges = []
    if finished is False:
        epochs = ""
        if train_log is not None and train_log.exists():
            try:
                epochs = f" ({int(pd.read_csv(train_log)['epoch'].max())} of {cfg.train.epochs} epochs)"
            except Exception:
                epochs = ""
        badges.append(("warn", f"UNFINISHED training{epochs}"))
    ov = preset_overrides(cfg)
    if ov:
        badges.append(("warn", f"overrides preset {cfg.preset} ({len(ov)} field{'s' if len(ov) != 1 else ''})"))
    else:
        badges.append(("", f"preset {cfg.preset}" + (" as shipped" if preset_known(cfg) else " (not found)")))
    return [f"<span class='badge{' ' + c if c else ''}'>{_e(t)}</span>" for c, t in badges]


def _summary_rows(m: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []

    def row(label: str, r: dict, acc: str) -> list[str]:
        ps, pc = r.get("per_subnet") or {}, r.get("per_class")
        return [label, _ci(ps, "kendall_tau"), _ci(pc, "kendall_tau"), _fmt(ps.get("spearman"), "{:+.3f}"),
                _fmt(ps.get("precision_at_10"), "{:.2f}"), _fmt(ps.get("precision_at_10_naslib"), "{:.2f}"),
                _fmt(ps.get("top1_regret"), "{:.4f}"), acc, str(ps.get("n", "n/a"))]

    for setting, label in _SETTINGS:
        r = (m.get("metrics") or {}).get(setting)
        if r is not None:
            rows.append(row(label, r, _fmt(100 * _f(r.get("mean_accuracy")), "{:.1f}%")))
            classes.append("")
    for name, r in (m.get("references") or {}).items():
        rows.append(row(f"reference: {name}", r or {}, ""))
        classes.append("ref")
    return rows, classes


def _every_truth_section(m: dict[str, Any]) -> str:
    """Every scorer against the report's truth and each extra truth (``truth.also``), side by
    side: Kendall tau per subnet with its interval, per class, and how many were ranked."""
    from rankbench.summaries import truth_columns

    if not m.get("also"):
        return ""
    cols = truth_columns(m)
    header = [""]
    for label, t, _by in cols:
        cov = t.get("coverage") or {}
        header += [f"{label}: tau per subnet [95%] ({cov.get('covered', '?')}/{cov.get('candidates', '?')} "
                   f"candidates)", "tau per class [95%]", "n ranked"]
    labels = dict(_SETTINGS)
    rows, classes = [], []
    for scorer in cols[0][2]:
        row = [labels.get(scorer, scorer.replace("ref_", "reference: "))]
        for _label, _t, by in cols:
            r = by.get(scorer) or {}
            ps = r.get("per_subnet") or {}
            row += [_ci(ps, "kendall_tau"), _ci(r.get("per_class"), "kendall_tau"), str(ps.get("n", "n/a"))]
        rows.append(row)
        classes.append("ref" if scorer.startswith("ref_") else "")
    notes = ["Each truth ranks the candidates it covers, with the same metrics and intervals as the report's own "
             "truth (hash classes and each truth's repeats resampled)."]
    parts = [_table(header, rows, row_class=classes)] + [f"<p class='note'>{_e(n)}</p>" for n in notes]
    for key, x in m["also"].items():
        parts.append(f"<h3>Extra truth: {_e(key)}</h3>")
        parts.append(_truth_section(x.get("truth") or {}, x.get("truth_warnings") or ()))
    return "".join(parts)


_SUMMARY_HEADER = ("", "Kendall tau per subnet [95%]", "Kendall tau per class [95%]", "Spearman", "P@10%",
                   "P@10 NASLib", "top-1 regret", "mean accuracy", "n ranked")


def report_html(report_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None) -> str:
    """The HTML page of one report (a report directory, or its run directory when it holds
    one report): its summary table, every PNG in ``figures_dir`` (default
    ``<report>/figures/``) embedded, the truth and its reliability, the config against its
    preset, provenance. Pure: reads the folder, returns the page."""
    from rankbench.figures._runs import run_label
    rep = load_report(report_dir)
    m, cfg = rep.metrics, rep.config
    rd = RunDir(rep.run_dir)
    versions = _read_json(rd.versions_path)
    done = _read_json(rd.done_marker)
    finished = rd.done_marker.exists() if rd.path.exists() else None
    title = f"{run_label(cfg)}: report {rep.name}"
    proto = m.get("protocol") or {}
    first: dict[str, Any] = next(iter((m.get("metrics") or {}).values()), {}) or {}
    ps = first.get("per_subnet") or {}
    dropped = ps.get("n_dropped", 0)
    head = (f"<header><h1>{_e(run_label(cfg))}</h1><p class='sub'>report <code>{_e(rep.name)}</code>, protocol "
            f"<b>{_e(proto.get('name', cfg.score.protocol))}</b>"
            + (f": {_e(proto.get('summary'))}" if proto.get("summary") else "") + "</p>"
            + "".join(_status(cfg, finished, rd.train_log)) + "</header>")
    rows, classes = _summary_rows(m)
    notes: list[str] = [f"ranked {ps.get('n', '?')} candidates"
             + (f" ({m.get('drop_rule', 'the lowest dropped')})" if dropped else "")
             + "; 95% bootstrap intervals in brackets, resampling "
             + ("hash classes (each with all its isomorphic candidates)" if ps.get("resampling_unit") == "hash class"
                else "the candidates")
             + (" and the truth's repeats" if (m.get("truth") or {}).get("noise_in_intervals") else "")]
    for setting, r in (m.get("metrics") or {}).items():  # this report's own numbers, per setting
        sps = (r or {}).get("per_subnet") or {}
        share, dis = sps.get("kendall_tau_truth_noise_share"), sps.get("kendall_tau_disattenuated")
        label = "with BN calibration" if setting == "calib" else "without BN calibration"
        if dis is not None:
            ci = sps.get("kendall_tau_disattenuated_ci") or [None, None]
            notes.append(f"{label}: tau per subnet against a noise-free truth (disattenuated) {_f(dis):+.3f}"
                         + (f" [{_f(ci[0]):+.3f}, {_f(ci[1]):+.3f}]" if None not in ci else "")
                         + (f"; the truth's noise is {100 * _f(share):.0f}% of the tau interval's variance"
                            if share is not None else ""))
    refs = m.get("references") or {}
    if refs:
        notes.append("reference rankers need no supernet: a supernet below them ranks worse than they do ("
                     + "; ".join(f"{k}: {(r or {}).get('description') or k}" for k, r in refs.items()) + ")")
    notes.append("regret: true accuracy of the best candidate minus that of the supernet's top-1 choice (0: it "
                 "picked the best); mean accuracy: the candidates' mean top-1 accuracy with inherited weights")
    summary = (_table(_SUMMARY_HEADER, rows, row_class=classes)
               + "".join(f"<p class='note'>{_e(n)}</p>" for n in notes))
    every_truth = _every_truth_section(m)
    fig_dir = Path(figures_dir) if figures_dir is not None else rep.path / FIGURES_DIR
    pngs = sorted(fig_dir.glob("*.png")) if fig_dir.is_dir() else []
    cand = m.get("candidates") or {}
    prov = [("run directory", rep.run_dir), ("report", rep.path.name), ("created", m.get("created")),
            ("candidates", f"{cand.get('n', '?')} ({cand.get('distinct', '?')} distinct, "
                           f"{cand.get('hash_classes', '?')} hash classes)" if cand else None),
            ("training reused", _yes_no(m.get("training_reused"))),
            ("config fingerprint", m.get("config_fingerprint")),
            ("training fingerprint", m.get("training_fingerprint")),
            ("weights digest", m.get("weights_digest") or done.get("weights_digest")),
            ("weights digest source", "metrics.json" if m.get("weights_digest") else
             ("train_done.json" if done.get("weights_digest") else None)),
            ("trained on", _short(done.get("device")) if done.get("device") else None)]
    tp, sp = done.get("platform"), m.get("platform")
    if tp and tp == sp:
        prov.append(("platform (training and scoring)", _short(tp)))
    else:
        prov += [("training platform", _short(tp) if tp else None), ("scoring platform", _short(sp) if sp else None)]
    prov += [("platform notes", "; ".join(m.get("platform_notes") or []) or None),
             ("timings (s)", ", ".join(f"{k} {v}" for k, v in (m.get("timings") or {}).items()) or None)]
    body = [head,
            f"<section id='summary'><h2>Summary</h2>{summary}</section>",
            *([f"<section id='truths'><h2>Against every truth</h2>{every_truth}</section>"] if every_truth else []),
            f"<section id='figures'><h2>Figures</h2>{_figures(pngs, 'run', rep.path)}</section>",
            "<section id='truth'><h2>The truth and its reliability</h2>"
            + _truth_section(m.get("truth") or {}, m.get("truth_warnings") or (), m.get("notes") or ()) + "</section>",
            f"<section id='config'><h2>Config against the preset</h2>{_config_section(cfg)}</section>",
            "<section id='provenance'><h2>Provenance</h2>" + _kv(prov)
            + "<h3>Versions (versions.json of the run)</h3>" + _versions_table(versions) + "</section>"]
    toc = [("summary", "Summary"), *([("truths", "Every truth")] if every_truth else []),
           ("figures", f"Figures ({len(pngs)})"), ("truth", "Truth"), ("config", "Config"),
           ("provenance", "Provenance")]
    return _page(title, body, toc)


# -- an ablation ------------------------------------------------------------------------------
def _ablation_rows(table: pd.DataFrame) -> tuple[list[list[str]], list[str]]:
    def cell(r: dict, col: str, signed: bool = True) -> str:
        v = _f(r.get(col))
        if not math.isfinite(v):
            return "n/a"
        s = f"{v:+.3f}" if signed else f"{v:.3f}"
        sd = _f(r.get(col + "_std"))
        if math.isfinite(sd) and int(_f(r.get("n_seeds")) or 1) > 1:
            return f"{s} ± {sd:.3f}"
        lo, hi = _f(r.get(col + "_ci_low")), _f(r.get(col + "_ci_high"))
        if math.isfinite(lo) and math.isfinite(hi):
            return f"{s} [{lo:+.2f}, {hi:+.2f}]"
        return s

    rows, classes = [], []
    best: Container[Any] = {}  # the index of the best variant's row, if any
    variants = table[~table["variant"].astype(str).str.startswith("reference")]
    if len(variants) and "kendall_tau_subnet" in table:
        best_i = pd.to_numeric(variants["kendall_tau_subnet"], errors="coerce").idxmax()
        best = {best_i} if pd.notna(best_i) else set()
    for i, r in table.iterrows():
        r = r.to_dict()
        ref = str(r["variant"]).startswith("reference")
        calib = "" if ref else ("yes" if str(r.get("calibration")).strip().lower() in ("true", "1") else "no")
        rows.append([str(r["variant"]), calib, str(r.get("n_seeds", "")), cell(r, "kendall_tau_subnet"),
                     cell(r, "kendall_tau_class"), cell(r, "spearman_subnet"),
                     cell(r, "precision_at_10_subnet", False), cell(r, "precision_at_10_naslib_subnet", False),
                     cell(r, "top1_regret_subnet", False), _fmt(r.get("mean_accuracy"))])
        classes.append("ref" if ref else ("best" if i in best else ""))
    return rows, classes


def _paired_rows(paired: pd.DataFrame) -> list[list[str]]:
    out = []
    for r in paired.to_dict("records"):
        lo, hi = _f(r.get("ci_low")), _f(r.get("ci_high"))
        star = " *" if math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0) else ""
        out.append([str(r.get("a")), str(r.get("b")), str(r.get("n_seeds", "")),
                    _fmt(r.get("difference"), "{:+.3f}") + star, f"[{lo:+.3f}, {hi:+.3f}]",
                    str(r.get("per_seed", ""))])
    return out


#: fields of versions.json that say how a run was started, not what it ran with
_NOT_VERSIONS = frozenset({"started", "argv", "command", "device", "pid", "host", "hostname"})


def _run_versions(reports: dict[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """versions.json of the first run read, and the keys in which the runs' versions differ."""
    all_v = []
    for paths in reports.values():
        for p in paths:
            v = _read_json(Path(p).parent.parent / RunDir.VERSIONS)
            if v:
                all_v.append(v)
    if not all_v:
        return {}, []
    keys = sorted(set().union(*all_v) - _NOT_VERSIONS)
    differ = [k for k in keys if len({json.dumps(v.get(k), default=str) for v in all_v}) > 1]
    return all_v[0], differ


def ablation_html(folder: str | os.PathLike) -> str:
    """The HTML page of an ablation folder: the table (tau per variant x calibration beside
    the reference rankers), the paired differences, every PNG in the folder embedded, the
    truth and its reliability, the config against its preset, provenance (the runs' versions
    and weights digests). Pure: reads the folder, returns the page."""
    from rankbench.figures._runs import space_label

    folder = Path(folder)
    table_p = folder / "ablation.csv"
    if not table_p.exists():
        raise FileNotFoundError(f"{folder} holds no ablation.csv; run `rankbench ablation` to write it")
    table = pd.read_csv(table_p)
    paired = pd.read_csv(folder / "paired.csv") if (folder / "paired.csv").exists() else None
    meta = _read_json(folder / "ablation.json")
    cfg = RunConfig.from_dict(meta["config"]) if meta.get("config") else None
    seeds = meta.get("seeds") or []
    if cfg is not None:
        name = f"Ablation: {cfg.preset} preset, {space_label(cfg)}, protocol {cfg.score.protocol}"
    else:
        name = f"Ablation {folder.name}"
    sub = (f"{len(meta.get('variants') or [])} variants x {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
           + (f" ({', '.join(map(str, seeds))})" if seeds else "") + f"; folder <code>{_e(folder.name)}</code>")
    badges = _status(cfg, None, None) if cfg is not None else []
    head = f"<header><h1>{_e(name)}</h1><p class='sub'>{sub}</p>{''.join(badges)}</header>"
    rows, classes = _ablation_rows(table)
    multi = len(seeds) > 1
    summary = (_table(("variant", "BN calibration", "seeds", "Kendall tau (subnet)", "Kendall tau (class)",
                       "Spearman", "P@10%", "P@10 NASLib", "top-1 regret", "mean accuracy"), rows, num_from=2,
                      row_class=classes)
               + f"<p class='note'>{'mean ± sd over seeds' if multi else '95% bootstrap intervals in brackets'}; "
                 "bold: the best variant by tau per subnet; reference rankers (grey) need no supernet.</p>")
    if paired is not None and len(paired):
        summary += ("<h3>Paired differences in Kendall tau per subnet (A − B)</h3>"
                    + _table(("A", "B", "seeds", "difference", "95% interval", "per seed"), _paired_rows(paired),
                             num_from=2)
                    + "<p class='note'>Mean over seeds; 95% interval over training seeds, candidates and the "
                      "truth's repeats; * = the interval excludes 0.</p>")
    pngs = sorted(folder.glob("*.png"))
    reports = meta.get("reports") or {}
    versions, differ = _run_versions(reports)
    digests = []
    for paths in reports.values():
        for p in paths:
            m = _read_json(Path(p) / RunDir.REPORT_METRICS)
            d = m.get("weights_digest") or _read_json(Path(p).parent.parent / RunDir.DONE).get("weights_digest")
            digests.append((Path(p).parent.parent.name + "/" + Path(p).name, d or "n/a"))
    prov = "<h3>Reports read</h3>" + (_table(("report", "weights digest"), digests, num_from=99) if digests else
                                      "<p class='note'>ablation.json lists no reports.</p>")
    prov += "<h3>Versions (versions.json of the first run)</h3>" + _versions_table(versions)
    if differ:
        prov += f"<p class='note warn'>the runs' versions differ in: {_e(', '.join(differ))}</p>"
    body = [head,
            f"<section id='summary'><h2>Summary</h2>{summary}</section>",
            f"<section id='figures'><h2>Figures</h2>{_figures(pngs, 'ablation', folder)}</section>",
            "<section id='truth'><h2>The truth and its reliability</h2>" + _truth_section(meta.get("truth") or {})
            + "</section>",
            "<section id='config'><h2>Config against the preset</h2>"
            + (_config_section(cfg) if cfg is not None else "<p class='note'>No ablation.json.</p>") + "</section>",
            f"<section id='provenance'><h2>Provenance</h2>{prov}</section>"]
    toc = [("summary", "Summary"), ("figures", f"Figures ({len(pngs)})"), ("truth", "Truth"), ("config", "Config"),
           ("provenance", "Provenance")]
    return _page(name, body, toc)


# -- writing ------------------------------------------------------------------------------------
def write_report_html(report_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None) -> Path:
    """Write :func:`report_html` to ``<report dir>/report.html`` (atomically); returns its path."""
    rep = load_report(report_dir)
    path = rep.path / REPORT_HTML
    write_text(path, report_html(rep.path, figures_dir))
    return path


def write_ablation_html(folder: str | os.PathLike) -> Path:
    """Write :func:`ablation_html` to ``<folder>/report.html`` (atomically); returns its path."""
    path = Path(folder) / REPORT_HTML
    write_text(path, ablation_html(folder))
    return path


def _warn(what: str, e: BaseException) -> None:
    warnings.warn(f"{what} failed ({type(e).__name__}: {e}); the results are written, the page is not",
                  stacklevel=3)


#: set to 0 to write no figures and no page when a report or an ablation is written (e.g. in
#: tests that run many tiny pipelines); `rankbench figures` and :func:`publish_report` still work
PAGES_ENV = "RANKBENCH_REPORT_PAGES"


def _pages_off() -> bool:
    return os.environ.get(PAGES_ENV, "1").strip().lower() in ("0", "false", "no", "off")


def publish_report(report_dir: str | os.PathLike, *, supernet: bool = False, formats: Sequence[str] = ("png",),
                   dpi: int = 150, log=None) -> Path | None:
    """Draw a report's figures into ``<report>/figures/`` and write its ``report.html``: what
    the pipeline calls once a report is written. By default the figures drawn from the scores
    and the training log, as PNG (``formats``) at ``dpi``: a second or two, not minutes;
    ``supernet``: also the cosine and SBN figures (they load the weights and data; ``rankbench
    figures`` draws them, with PDFs). A failure is a warning, never an error: the report's
    numbers are already written. Returns the page's path (None on failure, or when
    ``$RANKBENCH_REPORT_PAGES`` is 0)."""
    from rankbench.figures import report_figures

    if _pages_off():
        return None
    try:
        report_figures(report_dir, supernet=supernet, formats=formats, dpi=dpi, log=log)
    except Exception as e:  # a figure must never lose a computed report
        _warn(f"drawing the figures of {report_dir}", e)
    try:
        return write_report_html(report_dir)
    except Exception as e:
        _warn(f"writing {Path(report_dir) / REPORT_HTML}", e)
        return None


def publish_ablation(folder: str | os.PathLike, *, log=None) -> Path | None:
    """Draw an ablation folder's figures into it (PNG, PDF, CSV) and write its ``report.html``;
    a failure is a warning (the tables are already written). Returns the page's path (None on
    failure, or when ``$RANKBENCH_REPORT_PAGES`` is 0)."""
    from rankbench.figures import ablation_figures

    if _pages_off():
        return None
    try:
        ablation_figures(folder, log=log)
    except Exception as e:
        _warn(f"drawing the figures of {folder}", e)
    try:
        return write_ablation_html(folder)
    except Exception as e:
        _warn(f"writing {Path(folder) / REPORT_HTML}", e)
        return None
