"""Summaries of runs as text: one run's report (:func:`format_summary`), several seeds' mean ±
std (:func:`summarize_seeds`, :func:`format_seed_table`), the settings line of a table. Pure
functions of :class:`rankbench.pipeline.RunResult` objects (their ``metrics``: metrics.json)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from rankbench._io import finite_or_none
from rankbench.config import RunConfig, config_overrides
from rankbench.reports import HEADLINE, SETTINGS

if TYPE_CHECKING:  # pragma: no cover
    from rankbench.pipeline import RunResult

__all__ = ["format_summary", "summarize_seeds", "format_seed_table", "settings_header", "setting_label",
           "finite_or_none"]

_SETTINGS = SETTINGS


# -- formatting ------------------------------------------------------------------------------
def _ci(m: dict | None, key: str) -> str:
    if not m or m.get(key) is None:
        return "n/a"
    v = m[key]
    ci = m.get(key + "_ci")
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "nan"
    if ci and all(c is not None and math.isfinite(c) for c in ci):
        return f"{v:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return f"{v:+.3f}"


def _num(m: dict | None, key: str, fmt: str = "{:.3f}") -> str:
    if not m or m.get(key) is None:
        return "n/a"
    v = m[key]
    return "nan" if isinstance(v, float) and not math.isfinite(v) else fmt.format(v)


def _reliability_line(truth: dict) -> str | None:
    rel = truth.get("reliability")
    if not rel:
        return None
    counts = {int(k): v for k, v in (truth.get("repeats_per_class") or {}).items()}
    total = sum(counts.values()) or rel.get("n_classes")
    where = (f"{rel['n_seeds']} repeats per class" if rel.get("n_classes") == total else
             f"from the {rel['n_classes']} of {total} classes with {rel['n_seeds']} repeats")
    if rel.get("estimable") is False or rel.get("estimated_tau") is None:
        line = f"truth reliability ({where}): {rel.get('status') or 'not estimable'}"
    else:
        line = (f"truth reliability ({where}): split-half tau {rel['split_half_tau']:.3f} -> estimated tau "
                f"{rel['estimated_tau']:.3f} against a noise-free truth; no ranker can be expected to agree "
                f"with this truth much better")
    single = counts.get(1, 0)
    if single:
        line += (f"\nnote: {single} of {total} classes have a single repeat: their truth noise cannot be "
                 f"resampled, so the intervals understate it")
    return line


def truth_columns(m: dict) -> list[tuple[str, dict, dict]]:
    """(label, truth, {scorer: metrics}) of the report's own truth, then of each extra truth
    (metrics.json "also"); a scorer is a setting ("no_calib", "calib") or "ref_<ranker>"."""

    def scorers(d: dict) -> dict:
        out = {s: r for s, r in (d.get("metrics") or {}).items()}
        out.update({f"ref_{n}": r for n, r in (d.get("references") or {}).items()})
        return out

    cols = [(f"{m['truth']['source']} (this report's truth)", m["truth"], scorers(m))]
    for key, x in (m.get("also") or {}).items():
        cols.append((key, x.get("truth") or {}, scorers(x)))
    return cols


def _against_every_truth(m: dict) -> list[str]:
    """The scorers against every truth side by side (only for a report with extra truths)."""
    if not m.get("also"):
        return []
    cols = truth_columns(m)
    width = 40
    lines = ["", "Kendall tau per subnet [95%] (per class) against each truth, on the candidates each covers:",
             (f"{'':<22}" + "".join(f"{label[:width - 2]:<{width}}" for label, _t, _s in cols)).rstrip()]
    cov = [(t.get("coverage") or {}) for _l, t, _s in cols]
    lines.append((f"{'covers':<22}" + "".join(
        f"{str(c.get('covered', '?')) + '/' + str(c.get('candidates', '?')) + ' candidates':<{width}}"
        for c in cov)).rstrip())
    labels = {s: label for s, _c, label in _SETTINGS}
    for scorer in cols[0][2]:
        cells = []
        for _label, _t, by in cols:
            r = by.get(scorer)
            if not r:
                cells.append("n/a")
                continue
            pc = r.get("per_class")
            cells.append(f"{_ci(r.get('per_subnet'), 'kendall_tau')} ({_num(pc, 'kendall_tau', '{:+.3f}')}; "
                         f"n={(r.get('per_subnet') or {}).get('n', '?')})")
        name = labels.get(scorer, scorer.replace("ref_", "ref: "))
        lines.append(f"{name:<22}" + "".join(f"{c:<{width}}" for c in cells).rstrip())
    for key, x in m["also"].items():
        t = x.get("truth") or {}
        lines.append(f"{key}: {t.get('source', '?')} ({t.get('location', '?')}), {t.get('metric', '?')}, "
                     f"reduce={t.get('reduce_used', '?')}, digest {t.get('digest', '?')}")
        for w in x.get("truth_warnings") or []:
            lines.append(f"warning ({key}): {w}")
    return lines


def format_summary(result: RunResult) -> str:
    """One run's metrics, the reference rankers beside them, the truth and its coverage."""
    m = result.metrics
    cov = m["truth"]["coverage"]
    space = m.get("space") or {}
    space_s = " ".join([str(space.get("name", ""))] + [f"{k}={v}" for k, v in space.items() if k != "name"])
    lines = [
        f"{m['variant']}  preset {m['preset']}  space {space_s}  seed {m['seed']}  protocol {m['protocol']['name']}",
        f"report: {result.report_dir} (scores.csv: one row per candidate; metrics.json: every metric, "
        f"interval, the truth and the resolved config)" if result.report_dir else "",
        f"truth: {m['truth']['source']} ({m['truth']['location']}), {m['truth']['metric']}, "
        f"reduce={m['truth']['reduce_used']}; covers {cov['covered']}/{cov['candidates']} candidates, "
        f"{cov['classes_covered']}/{cov['classes']} hash classes",
    ]
    lines = [x for x in lines if x]
    plat = m.get("platform") or {}
    if m.get("weights_digest"):
        lines.append(f"weights {m['weights_digest']} (digest of the scored supernet), scored on platform "
                     f"{plat.get('key', '?')}: {plat.get('cpu_model', '?')}, {plat.get('aten_capability', '?')} kernels"
                     + (" (portable)" if plat.get("portable") else "") + f", {plat.get('threads', '?')} thread(s), "
                     f"torch {plat.get('torch', '?')}, {plat.get('device', '?')}")
    for note in m.get("platform_notes") or []:
        lines.append(f"platform: {note}")
    rel = _reliability_line(m["truth"])
    if rel:
        lines.append(rel)
    header = (f"{'':<22}{'tau per subnet':<28}{'tau per class':<28}{'Spearman':>9}{'P@10%':>8}"
              f"{'P@10 NASLib':>12}{'regret':>8}{'acc':>8}")
    lines.append(header)

    def row(label: str, r: dict, acc: str) -> str:
        ps, pc = r["per_subnet"], r.get("per_class")
        return (f"{label:<22}{_ci(ps, 'kendall_tau'):<28}{_ci(pc, 'kendall_tau'):<28}"
                f"{_num(ps, 'spearman', '{:+.3f}'):>9}{_num(ps, 'precision_at_10', '{:.2f}'):>8}"
                f"{_num(ps, 'precision_at_10_naslib', '{:.2f}'):>12}{_num(ps, 'top1_regret', '{:.4f}'):>8}{acc:>8}")

    for setting, _col, label in _SETTINGS:
        r = m["metrics"].get(setting)
        if r is not None:
            lines.append(row(label, r, _num(r, "mean_accuracy", "{:.3f}")))
    for name, r in (m.get("references") or {}).items():
        lines.append(row(f"ref: {name}", r, ""))
    lines += _against_every_truth(m)
    first = next(iter(m["metrics"].values()))["per_subnet"]
    dropped = first.get("n_dropped", 0)
    lines.append(f"ranked {first['n']} candidates" + (f" ({m.get('drop_rule', 'the lowest dropped')})"
                                                      if dropped else "")
                 + "; 95% bootstrap intervals in brackets ("
                 + ("hash classes" if first.get("resampling_unit") == "hash class" else "candidates")
                 + (" and the truth's repeats" if m["truth"].get("noise_in_intervals") else "") + " resampled)")
    if first.get("truth_noise") and not m["truth"].get("noise_in_intervals"):
        lines.append(f"truth noise: {first['truth_noise']}")
    for setting, _col, label in _SETTINGS:  # this report's own numbers, per setting
        ps = (m["metrics"].get(setting) or {}).get("per_subnet") or {}
        share = ps.get("kendall_tau_truth_noise_share")
        if ps.get("kendall_tau_disattenuated") is not None:
            lines.append(f"{label}: tau per subnet against a noise-free truth (disattenuated) "
                         f"{_ci(ps, 'kendall_tau_disattenuated')}"
                         + (f"; the truth's noise is {100 * share:.0f}% of its tau interval's variance"
                            if share is not None and math.isfinite(share) else ""))
    lines.append("regret: true accuracy of the best candidate minus that of the supernet's top-1 choice "
                 "(0 = it picked the best)")
    lines.append("acc: mean top-1 accuracy of the candidates with the supernet's inherited weights")
    lines.append("ref: rankers needing no supernet (parameters, FLOPs, NB101's shorter budgets where known)")
    for note in m.get("notes") or []:
        lines.append(f"note: {note}")
    for w in m.get("truth_warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


# -- several seeds ---------------------------------------------------------------------------
def _rows_of(result: RunResult) -> list[tuple[str, str, dict]]:
    """(setting key, label, metrics dict) for each setting and reference of one result."""
    out = []
    for setting, _col, label in _SETTINGS:
        r = result.metrics["metrics"].get(setting)
        if r is not None:
            out.append((setting, label, r))
    for name, r in (result.metrics.get("references") or {}).items():
        out.append((f"ref_{name}", f"reference: {name}", r))
    return out


def _headline_values(result: RunResult) -> dict[str, float | None]:
    out = {}
    for setting, _label, r in _rows_of(result):
        for level in ("per_subnet", "per_class"):
            m = r.get(level)
            for key, *_ in HEADLINE:
                out[f"{setting}.{level}.{key}"] = finite_or_none(m.get(key)) if m else None
    return out


def summarize_seeds(results: Sequence[RunResult]) -> pd.DataFrame:
    """Mean ± std over seeds of the headline metrics (rows: setting or reference, level, metric)."""
    vals = [_headline_values(r) for r in results]
    rows = []
    for name in vals[0]:
        setting, level, metric = name.split(".")
        xs = np.array([v[name] for v in vals if v.get(name) is not None], dtype=float)
        rows.append({"setting": setting, "level": level, "metric": metric, "n_seeds": len(xs),
                     "mean": float(xs.mean()) if len(xs) else np.nan,
                     "std": float(xs.std(ddof=1)) if len(xs) > 1 else np.nan,
                     "values": " ".join(f"{x:.4f}" for x in xs)})
    return pd.DataFrame(rows)


def settings_header(cfg: RunConfig) -> str:
    ov = config_overrides(cfg, ignore=("model.variant", "train.seed"))
    if not ov:
        return f"settings: preset {cfg.preset} as shipped"
    return f"settings: preset {cfg.preset} with " + ", ".join(f"{k}={v}" for k, v in sorted(ov.items()))


def setting_label(setting: str) -> str:
    labels = {s: lab for s, _c, lab in _SETTINGS}
    return labels.get(setting, setting.replace("ref_", "reference: "))


def format_seed_table(table: pd.DataFrame, n: int) -> str:
    lines = ["| setting | level | " + " | ".join(label for _, label, _f in HEADLINE) + " |",
             "|---|---|" + "---|" * len(HEADLINE)]
    for (setting, level), g in table.groupby(["setting", "level"], sort=False):
        cells = []
        for key, *_ in HEADLINE:
            r = g[g["metric"] == key]
            if r.empty or not np.isfinite(r["mean"].iloc[0]):
                cells.append("n/a")
            else:
                sd = r["std"].iloc[0]
                cells.append(f"{r['mean'].iloc[0]:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{r['mean'].iloc[0]:.3f}")
        lines.append(f"| {setting_label(setting)} | {level.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
