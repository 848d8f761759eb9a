"""The ablation: every supernet variant with and without BN calibration, over training seeds,
as the paper's table, with the reference rankers beside them and paired differences.

Data flows one way: :func:`ablation` runs each variant (:func:`rankbench.pipeline.run`, one
report per seed) and hands the results to :func:`ablation_table`, which builds the table
(:func:`table_rows`), the paired differences (:func:`paired_differences`) and writes the
ablation folder (``ablation.md/.csv/.json/.tex``, ``paired.csv``, ``summaries.txt``, figures
and ``report.html``). :func:`ablation_table` takes results however they were made: results
read back from finished reports (``analysis/ablation_from_reports.py``) give the same folder.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from rankbench import distributed, pipeline
from rankbench._io import atomic_path, clean_json, write_json, write_text
from rankbench._latex import ablation_latex
from rankbench._paths import display_path
from rankbench.config import RunConfig, config_overrides
from rankbench.launch import LauncherOptions, train_missing
from rankbench.metrics import paired_difference
from rankbench.pipeline import RunResult, setup_tag
from rankbench.plan import RunPlan, resolve
from rankbench.reports import HEADLINE, SETTINGS
from rankbench.rundir import _space_tag
from rankbench.summaries import finite_or_none, format_summary, setting_label, settings_header
from rankbench.supernet import VARIANTS, list_variants
from rankbench.truth import load_truth

__all__ = ["ablation", "ablation_table", "ablation_dir", "default_variants", "table_rows", "paired_differences",
           "ablation_markdown"]


def default_variants(cfg: RunConfig) -> tuple[str, ...]:
    """Every registered variant that supports the config's space, in the registry's order."""

    return tuple(list_variants(space=cfg.space.name))


def ablation_dir(cfg: RunConfig | RunPlan, seeds: int = 1, runs_root: str | Path | None = None, *,
                 truth: str | None = None) -> Path:
    """Where :func:`ablation` writes its table for ``cfg`` and ``seeds`` (named by what was run
    and by the truth's digest ``truth``). Given a plan, its seeds, runs root and truth; given a
    config without ``truth``, the config is resolved (the truth loaded) to name it."""
    if isinstance(cfg, RunPlan):
        p = cfg
    else:
        p = resolve(cfg, seeds, runs_root, validate=False, truth="skip" if truth is not None else "require")
    digest = truth if truth is not None else p.truth_digest
    return p.runs_root / f"ablation-{setup_tag(p.cfg, p.seeds, digest, p.space.tag)}"


# -- running ---------------------------------------------------------------------------------
def ablation(cfg: RunConfig, variants: Sequence[str] | None = None, *, seeds: int = 1,
             runs_root: str | Path | None = None, progress: bool = True, n_boot: int = 1000,
             echo: Callable[[str], None] | None = print, launcher: LauncherOptions | None = None,
             plan: RunPlan | None = None) -> tuple[pd.DataFrame, Path]:
    """Every variant with and without BN calibration, as the paper's ablation table, with the
    reference rankers beside them and, over several seeds, paired differences.

    Rows: variant x calibration, then the reference rankers; columns: Kendall tau per subnet
    and per hash class (one seed: 95% bootstrap interval; several: mean ± std over seeds),
    Spearman, P@10%, top-1 regret, the reports read. ``paired.csv``: for each pair of variants
    (same calibration) and for calibration vs none (same variant), the difference in tau with a
    95% interval over training seeds, hash classes and the truth's repeats. Written under
    ``runs/ablation-<preset>-<space>-<protocol>-seeds<a>-<b>[-o<overrides>]-t<truth digest>/``. Finished runs
    and cached scores are reused. ``launcher``: first train every missing run as one job
    (:mod:`rankbench.launch`); the loop below then reuses them and scores here. ``plan``: ``cfg``
    with any of the variants, resolved already (:func:`rankbench.plan.resolve`). The table
    itself: :func:`ablation_table`."""

    variants = tuple(variants) if variants else default_variants(cfg)
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; variants: {', '.join(VARIANTS.names())}")
    # one plan: candidates and truth (its coverage checked before any training) for every variant
    base = plan if plan is not None else resolve(replace(cfg, model=replace(cfg.model, variant=variants[0])),
                                                 seeds, runs_root)
    plans = {v: base.with_variant(v) for v in variants}
    if launcher is not None:  # the missing runs as jobs first; the loop below then reuses them
        train_missing([pr for v in variants for pr in plans[v].planned], launcher, runs_root=runs_root, echo=echo)
    by_variant: dict[str, list[RunResult]] = {}
    for v in variants:
        results, _ = pipeline.run(plans[v].requested, calibrate=True, seeds=seeds, runs_root=runs_root,
                                  progress=progress, n_boot=n_boot, echo=None,
                                  plan=plans[v])  # per-seed summaries: summaries.txt
        by_variant[v] = results
        if echo:
            no_calib, calib = (_row(v, setting, label, results) for setting, _col, label in SETTINGS)
            echo(f"{v}: {len(results)} seed(s) scored; Kendall tau per subnet {no_calib['kendall_tau_subnet']:+.3f} "
                 f"without, {calib['kendall_tau_subnet']:+.3f} with BN calibration")
    return ablation_table(by_variant, cfg, seeds, n_boot=n_boot, echo=echo, plan=base)


# -- the table -------------------------------------------------------------------------------
def ablation_table(results_by_variant: Mapping[str, Sequence[RunResult]], cfg: RunConfig, seeds: int, *,
                   runs_root: str | Path | None = None, n_boot: int = 1000,
                   echo: Callable[[str], None] | None = print, plan: RunPlan | None = None
                   ) -> tuple[pd.DataFrame, Path]:
    """The ablation table of results already made (each variant's results, one per training
    seed, in seed order; scored with and without calibration), written into the ablation
    folder: ``ablation.csv/.md/.json/.tex``, ``paired.csv`` (``seeds`` >= 2), ``summaries.txt``,
    figures and ``report.html``. The folder is :func:`ablation_dir` of ``plan`` (``cfg`` with
    the first variant, resolved; given: ``cfg`` resolved under ``runs_root`` without loading
    the truth), named by the truth the reports were made against. Returns (table, folder)."""

    by_variant = {v: list(rs) for v, rs in results_by_variant.items()}
    variants = tuple(by_variant)
    if not variants or not all(by_variant.values()):
        raise ValueError("an ablation table needs at least one result for every variant")
    first = by_variant[variants[0]]
    table = table_rows(by_variant)
    paired = paired_differences(by_variant, n_boot=n_boot) if seeds >= 2 else pd.DataFrame()
    eff = first[0].cfg
    if plan is None:
        plan = resolve(replace(cfg, model=replace(cfg.model, variant=variants[0])), seeds, runs_root,
                       validate=False, truth="skip")
    out = ablation_dir(plan, truth=first[0].metrics["truth"]["digest"])  # the truth the reports were made against
    if not distributed.is_main():  # under torchrun rank 0 writes the table
        return table, out
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "ablation.csv", ".csv") as tmp:
        table.to_csv(tmp, index=False)
    if len(paired):
        with atomic_path(out / "paired.csv", ".csv") as tmp:
            paired.to_csv(tmp, index=False)
    write_json(out / "ablation.json", clean_json({
        "settings": config_overrides(eff), "config": eff.to_dict(), "variants": list(variants),
        "seeds": [r.cfg.train.seed for r in first], "truth": first[0].metrics["truth"],
        "reports": {v: [str(r.report_dir) for r in rs] for v, rs in by_variant.items()}}))
    md = ablation_markdown(table, eff, seeds, paired)
    write_text(out / "ablation.md", md + "\n")
    write_text(out / "ablation.tex", ablation_latex(table, paired, caption=md.split("\n", 1)[0]) + "\n")
    write_text(out / "summaries.txt", "\n\n".join(format_summary(r) for v in variants for r in by_variant[v]) + "\n")
    from rankbench.html_report import publish_ablation  # matplotlib only once an ablation is written

    publish_ablation(out)  # ablation_tau / ablation_paired figures and report.html; a failure only warns
    if echo:
        echo(md)
        echo(f"\nwritten to {out} (ablation.md, .csv, .json, .tex; each run's summary: summaries.txt)")
    return table, out


def table_rows(by_variant: Mapping[str, Sequence[RunResult]]) -> pd.DataFrame:
    """The table: each variant without and with calibration (mean over its seeds), then each
    reference ranker of the first variant's reports (over every variant's reports)."""
    rows = []
    for v, results in by_variant.items():
        for setting, _col, label in SETTINGS:
            rows.append(_row(v, setting, label, results))
    first = next(iter(by_variant.values()))
    for name in (first[0].metrics.get("references") or {}):
        rows.append(_row(f"reference: {name}", f"ref_{name}", "", [r for rs in by_variant.values() for r in rs]))
    return pd.DataFrame(rows)


def _setting_metrics(result: RunResult, setting: str) -> dict | None:
    if setting.startswith("ref_"):
        return (result.metrics.get("references") or {}).get(setting[4:])
    return result.metrics["metrics"].get(setting)


def _row(variant: str, setting: str, label: str, results: Sequence[RunResult]) -> dict[str, Any]:
    row: dict[str, Any] = {"variant": variant, "calibration": setting == "calib", "setting": label or setting,
                           "n_seeds": len(results)}
    for level in ("per_subnet", "per_class"):
        ms = [(_setting_metrics(r, setting) or {}).get(level) for r in results]
        for key in [k for k, *_ in HEADLINE] + ["precision_at_10_naslib"]:
            xs = np.array([finite_or_none(m.get(key)) if m else np.nan for m in ms], dtype=float)
            xs = xs[np.isfinite(xs)]
            col = f"{key}_{level.split('_')[1]}"
            row[col] = float(xs.mean()) if len(xs) else np.nan
            row[col + "_std"] = float(xs.std(ddof=1)) if len(xs) > 1 else np.nan
            if key == "kendall_tau" and len(results) == 1 and ms[0]:
                ci = ms[0].get("kendall_tau_ci") or (np.nan, np.nan)
                row[col + "_ci_low"], row[col + "_ci_high"] = finite_or_none(ci[0]), finite_or_none(ci[1])
    m0 = results[0].metrics
    sm = _setting_metrics(results[0], setting) or {}
    row["n_candidates"] = (sm.get("per_subnet") or {}).get("n")
    got = [finite_or_none((_setting_metrics(r, setting) or {}).get("mean_accuracy")) for r in results]
    accs = [a for a in got if a is not None]
    row["mean_accuracy"] = float(np.mean(accs)) if accs else np.nan

    row["truth"] = f"{m0['truth']['source']}: {display_path(m0['truth']['location'])}"
    cov = m0["truth"]["coverage"]
    row["truth_coverage"] = (f"{cov['covered']}/{cov['candidates']} candidates, "
                             f"{cov['classes_covered']}/{cov['classes']} classes")
    row["reports"] = " ".join(sorted({f"{Path(r.run_dir).name}/{r.report}" for r in results}))
    return row


# -- paired differences ------------------------------------------------------------------------
def _score_vectors(results: Sequence[RunResult], col: str) -> list[np.ndarray]:
    return [r.scores[col].to_numpy(float) for r in results]


def paired_differences(by_variant: Mapping[str, Sequence[RunResult]], *, n_boot: int = 1000) -> pd.DataFrame:
    """Paired differences in Kendall tau (per subnet) over training seeds: every pair of
    variants at the same calibration setting, and calibration vs none per variant. Intervals
    resample training seeds, hash classes (the same draw for both arms) and the truth's repeats,
    redrawn as the truth was made (:func:`rankbench.metrics.paired_difference`)."""

    names = list(by_variant)
    r0 = by_variant[names[0]][0]
    truth = r0.scores["truth"].to_numpy(float)
    groups = r0.scores["hash"].to_numpy()
    reps = _repeats_of(r0)
    rows = []

    def add(a_name: str, b_name: str, setting_a: str, setting_b: str, a: Sequence[RunResult],
            b: Sequence[RunResult]) -> None:
        n = min(len(a), len(b))
        ca, cb = f"acc_{setting_a}", f"acc_{setting_b}"
        if any(r.scores[ca].isna().all() for r in a[:n]) or any(r.scores[cb].isna().all() for r in b[:n]):
            return
        d = paired_difference(_score_vectors(a[:n], ca), _score_vectors(b[:n], cb), reps, groups,
                              truth=truth, n_boot=n_boot, truth_reduce=r0.cfg.truth.reduce)
        ci = d.get("ci") or (np.nan, np.nan)
        rows.append({"a": a_name, "b": b_name, "n_seeds": n, "metric": d.get("metric"),
                     "difference": d.get("difference"), "ci_low": ci[0], "ci_high": ci[1],
                     "mean_a": d.get("mean_a"), "mean_b": d.get("mean_b"), "n": d.get("n"),
                     "truth_resampled": d.get("truth_resampled"),
                     "per_seed": " ".join(f"{x:+.4f}" for x in d.get("per_seed", []))})

    for setting in ("no_calib", "calib"):
        for i, va in enumerate(names):
            for vb in names[i + 1:]:
                add(f"{va} ({setting_label(setting)})", f"{vb} ({setting_label(setting)})", setting, setting,
                    by_variant[va], by_variant[vb])
    for v in names:
        add(f"{v} (BN calibration)", f"{v} (no calibration)", "calib", "no_calib", by_variant[v], by_variant[v])
    return pd.DataFrame(rows)


def _repeats_of(result: RunResult) -> np.ndarray | None:
    """The truth's repeats per candidate row of a result (None when the truth is one draw)."""
    if not result.metrics["truth"].get("noise_in_intervals"):
        return None
    if result.truth_repeats is not None:
        return result.truth_repeats

    hashes = result.scores["hash"].tolist()
    return load_truth(result.cfg, hashes).repeats_for(hashes)


# -- markdown ----------------------------------------------------------------------------------
def ablation_markdown(table: pd.DataFrame, cfg: RunConfig, seeds: int, paired: pd.DataFrame | None = None) -> str:
    """The table (and the paired differences) as Markdown, headed by what was run."""
    def cell(r, col: str, signed: bool = True) -> str:
        v = r.get(col)
        if v is None or not np.isfinite(v):
            return "n/a"
        s = f"{v:+.3f}" if signed else f"{v:.3f}"
        sd = r.get(col + "_std")
        if sd is not None and np.isfinite(sd):
            return f"{s} ± {sd:.3f}"
        lo, hi = r.get(col + "_ci_low"), r.get(col + "_ci_high")
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            return f"{s} [{lo:+.2f}, {hi:+.2f}]"
        return s

    first = table.iloc[0] if len(table) else {}

    head = (f"Ablation, preset {cfg.preset}, space {_space_tag(cfg)}, protocol {cfg.score.protocol}, "
            f"{seeds} seed(s) from {cfg.train.seed}; truth: {first.get('truth', 'n/a')} (covers "
            f"{first.get('truth_coverage', 'n/a')}). "
            + ("95% bootstrap intervals in brackets." if seeds == 1 else "mean ± std over seeds."))
    lines = [head, "", settings_header(cfg), "",
             "| variant | BN calibration | Kendall tau (subnet) | Kendall tau (class) | Spearman | P@10% | "
             "P@10 NASLib | top-1 regret | reports |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        r = r.to_dict()
        calib = "" if str(r["variant"]).startswith("reference") else ("yes" if r["calibration"] else "no")
        reports = "the same candidates (ablation.csv lists the reports)" if not calib else f"`{r['reports']}`"
        lines.append(f"| {r['variant']} | {calib} | {cell(r, 'kendall_tau_subnet')} | "
                     f"{cell(r, 'kendall_tau_class')} | {cell(r, 'spearman_subnet')} | "
                     f"{cell(r, 'precision_at_10_subnet', False)} | "
                     f"{cell(r, 'precision_at_10_naslib_subnet', False)} | "
                     f"{cell(r, 'top1_regret_subnet', False)} | {reports} |")
    if paired is not None and len(paired):
        lines += ["", "Paired differences in Kendall tau per subnet (A - B), mean over seeds, 95% interval "
                  "over training seeds, hash classes and the truth's repeats; * = the interval excludes 0.", "",
                  "| A | B | seeds | difference | 95% interval |", "|---|---|---|---|---|"]
        for _, r in paired.iterrows():
            lo, hi = r.get("ci_low", np.nan), r.get("ci_high", np.nan)
            star = " *" if np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0) else ""
            lines.append(f"| {r['a']} | {r['b']} | {r['n_seeds']} | {r.get('difference', np.nan):+.3f}{star} | "
                         f"[{lo:+.3f}, {hi:+.3f}] |")
    return "\n".join(lines)
