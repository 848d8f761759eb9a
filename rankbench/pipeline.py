"""End-to-end ranking runs: train (or reuse) supernets, score candidates, join the truth,
measure the ranking, write reports. The CLI (``rankbench run`` / ``rankbench ablation``) is a
thin layer over :func:`run` and :func:`ablation`.

Data flows one way: config -> plan (:func:`rankbench.plan.resolve`: the protocol applied, the
candidates, the truth with its coverage checked, so a truth that cannot rank them fails before
any training, each seed's fingerprint and run directory; resolved once and passed down) ->
trained supernet (``train_supernet``, reused when finished) -> scores (cached per run under
``scores/``) -> metrics -> the report (:class:`rankbench.reports.RunReport`: ``scores.csv`` and
``metrics.json`` in the run directory); over seeds a summary directory; over variants an
ablation table. The text summaries live in :mod:`rankbench.summaries`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from rankbench import distributed, rundir
from rankbench._io import atomic_path, clean_json, short_digest, write_json, write_text
from rankbench._latex import ablation_latex
from rankbench._paths import display_path
from rankbench.config import RunConfig, config_overrides
from rankbench.data.splits import load_splits
from rankbench.launch import LauncherOptions, train_missing
from rankbench.metrics import group_mean, paired_difference, rank_metrics
from rankbench.nb101.spec import matrix_to_string
from rankbench.numerics import check_same_platform, setup_compute, weights_digest
from rankbench.plan import RunPlan, resolve
from rankbench.references import proxy_names, reference_scores
from rankbench.reports import HEADLINE, SETTINGS, RunReport, report_name, report_setup
from rankbench.rundir import _space_tag
from rankbench.scoring import score_cache_path, score_candidates
from rankbench.scoring.score import check_score_cache_platform
from rankbench.summaries import (finite_or_none, format_seed_table, format_summary, setting_label, settings_header,
                                 summarize_seeds)
from rankbench.supernet import VARIANTS, list_variants
from rankbench.train import load_supernet, log_ranking_metrics, resolve_device, train_supernet
from rankbench.truth import load_truth, truth_source

__all__ = [
    "RunResult", "run_seed", "run", "ablation", "seed_configs", "ranking_metrics",
    "summarize_seeds", "paired_differences", "format_summary", "config_overrides", "SCORE_COLUMNS",
    "default_variants", "ablation_dir", "planned_run_dirs",
]

#: columns every report's scores.csv has (plus the space's descriptive columns after ``name``, and
#: one ``ref_<ranker>`` column per reference ranker)
SCORE_COLUMNS = ["name", "adjacency", "ops", "hash", "acc_no_calib", "acc_calib", "truth", "truth_std",
                 "loss_no_calib", "loss_calib"]
_SETTINGS = SETTINGS


@dataclass
class RunResult:
    """One supernet's ranking under one scoring setup: where it lives, its scores, its metrics."""

    cfg: RunConfig  # the effective config (protocol applied)
    run_dir: Path
    scores: pd.DataFrame
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    report_dir: Path | None = None  # run_dir/reports/<name>/: scores.csv + metrics.json
    #: the truth's repeats per candidate row, where they entered the intervals (paired differences reuse them)
    truth_repeats: np.ndarray | None = field(default=None, repr=False)

    @property
    def report(self) -> str | None:
        return self.report_dir.name if self.report_dir is not None else None


# -- metrics ---------------------------------------------------------------------------------
def ranking_metrics(df: pd.DataFrame, score_col: str, *, keep: np.ndarray | None = None, drop_lowest: int = 0,
                    truth_repeats: np.ndarray | None = None, seed: int = 0, n_boot: int = 1000,
                    truth_reduce: str = "mean") -> dict[str, Any]:
    """Metrics of one score column against ``truth``: per candidate and per hash class (mean
    score and truth per class). ``keep`` (a boolean mask over the rows, e.g. the paper
    protocol's drop of the 30 lowest by uncalibrated accuracy) selects the candidates ranked;
    ``drop_lowest`` drops by this column's own score instead (legacy). Candidates without a truth
    or a score are left out explicitly (``n`` says how many were ranked).

    Intervals resample hash classes (the ``hash`` column: the NB101 hash, so rows that are the
    same network, e.g. the paper protocol's duplicate ordered choices, and isomorphic subnets
    are drawn together), then, with ``truth_repeats`` (n_rows x R, NaN-padded), each class's
    truth from its repeats as ``truth_reduce`` made it ("mean" of the repeats, or one "random"
    repeat per row): :func:`rankbench.metrics.rank_metrics`."""

    ok = df["truth"].notna().to_numpy() & df[score_col].notna().to_numpy()
    if keep is not None:
        ok &= np.asarray(keep, dtype=bool)
    sub = df[ok]
    s, t = sub[score_col].to_numpy(float), sub["truth"].to_numpy(float)
    groups = sub["hash"].to_numpy()
    reps = None if truth_repeats is None else np.asarray(truth_repeats, dtype=float)[ok]
    out: dict[str, Any] = {"mean_accuracy": float(np.mean(s)) if len(s) else None,
                           "per_subnet": rank_metrics(s, t, drop_lowest=drop_lowest, seed=seed, n_boot=n_boot,
                                                      groups=groups, truth_repeats=reps,
                                                      truth_reduce=truth_reduce)}
    if keep is not None:
        out["per_subnet"]["n_dropped"] = int((~np.asarray(keep, dtype=bool)).sum())
    uniq, gs = group_mean(s, groups)
    _, gt = group_mean(t, groups)
    if len(gs) >= 3:
        cls_noise: dict[str, Any] = {"groups": uniq}
        if reps is not None and truth_reduce == "mean":  # a class's truth is the mean of its repeats
            first = {g: i for i, g in reversed(list(enumerate(groups)))}
            cls_noise = {"truth_repeats": reps[[first[g] for g in uniq]], "groups": uniq}
        out["per_class"] = rank_metrics(gs, gt, seed=seed, n_boot=n_boot, **cls_noise)
    else:
        out["per_class"] = None
        out["per_class_note"] = f"only {len(gs)} hash classes: a ranking needs at least 3"
    return out


# -- one seed --------------------------------------------------------------------------------
def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``cfg`` with training seeds ``cfg.train.seed + i``, i < ``seeds``."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def _truth_warnings(truth, cfg: RunConfig) -> list[str]:
    """Reasons to doubt that a measured truth fits this config (it was measured for another)."""
    out = []
    prov = truth.provenance or {}
    model = prov.get("model") or {}
    for key, mine in (("stem_channels", cfg.model.width), ("num_stacks", cfg.model.stacks),
                      ("cells_per_stack", cfg.model.cells_per_stack)):
        if key in model and model[key] != mine:
            out.append(f"measured truth {truth.location} was trained with {key}={model[key]}, this run's "
                       f"supernet has {mine}")
    if prov and prov.get("finished") is False:
        out.append(f"measured truth {truth.location} is unfinished (rerun `rankbench truth` to complete it)")
    return out


def truth_digest(truth) -> str:
    """:meth:`rankbench.truth.Truth.digest` (kept for callers of the old name)."""
    return truth.digest()


def _references(cfg: RunConfig, candidates, *, splits=None, run_dir: Path | None = None,
                device: Any = "cpu") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every registered reference ranker's scores of the candidates (:mod:`rankbench.references`),
    at the network size the truth source names and with its NB101 store, if it has one; and
    the zero-cost proxies ``score.proxies`` chooses (opt-in), on a seeded batch of
    ``score.proxy_batch_size`` images of the run's training split (``splits``; loaded again
    at the networks' resolution where the truth's networks are not at the run's, as NB101's
    32x32 ones), on ``device``, cached in ``<run_dir>/proxies.csv``."""

    source = truth_source(cfg)
    size = source.network_size()
    chosen = proxy_names(cfg.score.proxies) if cfg.score.proxies else ()
    data = None
    if chosen:
        if splits is None or size.resolution != cfg.data.resolution:
            splits = load_splits(replace(cfg.data, resolution=size.resolution), progress=False)
        data = splits.train
    cache = Path(run_dir) / "proxies.csv" if chosen and run_dir is not None and distributed.is_main() else None
    with source.reference_store() as store:
        return reference_scores([c.spec for c in candidates], size, store=store, metric=cfg.truth.metric,
                                seed=cfg.score.seed, device=str(device), opt_in=chosen, data=data,
                                proxy_batch_size=cfg.score.proxy_batch_size, proxy_cache=cache)


def _candidate_table(space, candidates) -> pd.DataFrame:

    rows = []
    for a in candidates:
        spec = a.spec
        row = {"name": a.name}
        row.update(space.describe(a))
        row.update(adjacency=matrix_to_string(spec.matrix), ops=",".join(spec.ops), hash=spec.hash)
        rows.append(row)
    return pd.DataFrame(rows)


def run_seed(plan: RunPlan | RunConfig, *, calibrate: bool, runs_root: str | Path | None = None,
             progress: bool = True, n_boot: int = 1000) -> RunResult:
    """Train (or reuse) the supernet of the plan's (first) seed, score the protocol's candidates
    without and (``calibrate``) with BN calibration, join the truth and the reference rankers,
    and write one report (``reports/<name>/scores.csv`` + ``metrics.json``) into the run
    directory. A config is resolved into its plan first (:func:`rankbench.plan.resolve`)."""


    p = plan if isinstance(plan, RunPlan) else resolve(plan, 1, runs_root, validate=False)
    cfg, proto, space, candidates = p.cfg, p.protocol, p.space, p.candidates
    truth, coverage = p.require_truth(), p.coverage
    assert coverage is not None  # a plan with its truth has its coverage
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir = p.runs[0].run_dir
    reused = rundir.RunDir(run_dir).finished_with(cfg, p.runs[0].training_fingerprint)
    train_supernet(cfg, run_dir, resume=True, progress=progress, fingerprint=p.runs[0].training_fingerprint)
    timings["train_s"] = round(time.perf_counter() - t0, 3)
    device = resolve_device(cfg.train.device)
    platform = setup_compute(cfg.train, device)
    net, _ = load_supernet(run_dir, map_location=device)
    digest_of_weights = weights_digest(net)
    platform_notes = [n for n in [check_same_platform(f"the supernet of {rundir.RunDir(run_dir).name}",
                                                      rundir.RunDir(run_dir).platform(), platform)] if n]
    t0 = time.perf_counter()
    splits = load_splits(cfg.data, progress=progress)
    timings["data_s"] = round(time.perf_counter() - t0, 3)

    frames = {}
    caches = {}
    for setting, calib in (("no_calib", False), ("calib", True)):
        if calib and not calibrate:
            continue
        cache = score_cache_path(run_dir, cfg, calib, proto, platform=platform,
                                 training_fingerprint=p.runs[0].training_fingerprint)
        note = check_score_cache_platform(cache, platform)
        if note:
            platform_notes.append(note)
        t0 = time.perf_counter()
        frames[setting] = score_candidates(net, candidates, splits, cfg.score, calibrate=calib, protocol=proto,
                                           data_cfg=cfg.data, cache_path=cache, progress=progress)
        timings[f"score_{setting}_s"] = round(time.perf_counter() - t0, 3)
        caches[setting] = str(cache)

    hashes = [c.hash for c in candidates]
    truth_vals, truth_std = truth.values(hashes, reduce=cfg.truth.reduce, seed=cfg.score.seed)
    scores = _candidate_table(space, candidates)
    for setting in ("no_calib", "calib"):
        f = frames.get(setting)
        scores[f"acc_{setting}"] = f["accuracy"].to_numpy() if f is not None else np.nan
    scores["truth"], scores["truth_std"] = truth_vals, truth_std
    for setting in ("no_calib", "calib"):
        f = frames.get(setting)
        scores[f"loss_{setting}"] = f["loss"].to_numpy() if f is not None else np.nan
    t0 = time.perf_counter()
    refs, ref_desc = _references(cfg, candidates, splits=splits, run_dir=run_dir, device=device)
    for name, vals in refs.items():
        scores[f"ref_{name}"] = vals
    timings["references_s"] = round(time.perf_counter() - t0, 3)

    # the truth's own noise enters the intervals, redrawn as cfg.truth.reduce made the truth (the
    # mean of a class's repeats, or one random repeat per row), where a class has >= 2 repeats
    repeats = truth.repeats_for(hashes) if hasattr(truth, "repeats_for") else None
    noise_resampled = repeats is not None and bool((np.count_nonzero(~np.isnan(repeats), axis=1) >= 2).any())
    keep, drop_rule = None, "none"
    n_drop = int(cfg.score.drop_lowest)
    if n_drop:
        keep_fn = getattr(proto, "keep_mask", None)
        if keep_fn is not None:
            keep = np.asarray(keep_fn(scores["acc_no_calib"].to_numpy(float), n_drop), dtype=bool)
            drop_rule = f"the {n_drop} lowest by uncalibrated accuracy, for every setting and reference"
        else:
            drop_rule = f"the {n_drop} lowest by each setting's own score"

    warn = _truth_warnings(truth, cfg)
    for w in warn:
        warnings.warn(w, stacklevel=2)
    if keep is not None:  # the report's own keep rule, for every reader of scores.csv (figures, compare)
        scores["kept"] = keep
    elif not n_drop:
        scores["kept"] = True
    kw: dict[str, Any] = dict(keep=keep, drop_lowest=0 if keep is not None else n_drop, truth_repeats=repeats,
              seed=cfg.score.seed, n_boot=n_boot, truth_reduce=cfg.truth.reduce)
    results: dict[str, Any] = {}
    for setting, col, _label in _SETTINGS:
        if setting in frames:
            results[setting] = ranking_metrics(scores, col, **kw)
    references: dict[str, Any] = {}
    for name in refs:
        references[name] = {"description": ref_desc.get(name, ""),
                            **ranking_metrics(scores, f"ref_{name}", **kw)}
        references[name].pop("mean_accuracy", None)

    digest = p.truth_digest
    setup = report_setup(cfg, calibrate=calibrate, truth_digest=digest)
    name = report_name(setup)
    report_dir = rundir.RunDir(run_dir).report_dir(name)
    report = RunReport(
        report=name, setup=setup, variant=cfg.model.variant, preset=cfg.preset,
        space={"name": space.name, **space.settings()}, seed=cfg.train.seed, run_dir=str(run_dir),
        training_reused=reused, protocol=asdict(proto), drop_rule=drop_rule,
        config_fingerprint=cfg.fingerprint(), training_fingerprint=p.runs[0].training_fingerprint,
        weights_digest=digest_of_weights, platform=platform, platform_notes=platform_notes,
        truth={**truth.describe(), "reduce_used": cfg.truth.reduce, "digest": digest, "coverage": coverage.to_dict(),
               "noise_in_intervals": noise_resampled},
        truth_warnings=warn, notes=list(p.notes),
        candidates={"n": len(candidates), "distinct": int(scores["name"].nunique()),
                    "hash_classes": int(scores["hash"].nunique())},
        metrics=results, references=references, score_caches=caches, timings=timings, config=cfg.to_dict(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    metrics = report.to_dict()
    if distributed.is_main():  # under torchrun every rank has the gathered scores; rank 0 writes
        report.write(report_dir, scores)
        from rankbench.html_report import publish_report  # matplotlib only once a report is written

        publish_report(report_dir)  # figures/ and report.html beside metrics.json; a failure only warns
        if getattr(cfg.train, "tensorboard", False):
            log_ranking_metrics(run_dir, {"metrics": results, "references": references},
                                prefix=f"ranking/{name}")
    distributed.barrier()
    return RunResult(cfg=cfg, run_dir=run_dir, scores=scores, metrics=metrics, timings=timings,
                     report_dir=report_dir, truth_repeats=repeats if noise_resampled else None)


def _setup_tag(cfg: RunConfig, seeds: Sequence[int], truth: str = "", space_tag: str | None = None) -> str:
    """``<preset>-<space>-<protocol>-seeds<a>-<b>[-o<hash of overrides>]-t<truth digest>``: a
    folder name saying what was run and against which truth, so that a trial with other
    settings, or a table made against an updated truth, never lands where another one is."""

    ov = config_overrides(cfg, ignore=("model.variant", "train.seed", "score.protocol", "train.device",
                                       "train.num_threads"))
    tag = f"{cfg.preset}-{space_tag or _space_tag(cfg)}-{cfg.score.protocol}-seeds{seeds[0]}-{seeds[-1]}"
    if ov:
        tag += "-o" + short_digest(ov, 8)
    return tag + (f"-t{truth[:6]}" if truth else "")


def planned_run_dirs(cfg: RunConfig, seeds: int = 1, runs_root: str | Path | None = None
                     ) -> list[tuple[RunConfig, Path]]:
    """(effective config, run directory) of each seed, as :func:`run` will use them (the
    protocol applied), computed without creating anything or loading the truth
    (:attr:`rankbench.plan.RunPlan.planned`)."""
    return resolve(cfg, seeds, runs_root, validate=False, truth="skip").planned


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
    return p.runs_root / f"ablation-{_setup_tag(p.cfg, p.seeds, digest, p.space.tag)}"


def run(cfg: RunConfig, *, calibrate: bool, seeds: int = 1, runs_root: str | Path | None = None,
        progress: bool = True, n_boot: int = 1000, echo: Callable[[str], None] | None = print,
        plan: RunPlan | None = None) -> tuple[list[RunResult], Path | None]:
    """:func:`run_seed` for seeds ``cfg.train.seed + i``; with several seeds also a summary
    (mean ± std) in ``runs/summary-<variant>-<setup>/``. ``plan``: ``cfg`` resolved already
    (:func:`rankbench.plan.resolve`, as the CLI does for its dry run and checks); else it is
    resolved here, which fails on the truth's coverage before any training. Returns (results,
    summary dir or None)."""

    p = plan if plan is not None else resolve(cfg, seeds, runs_root)
    results = []
    for seed in p.seeds:
        res = run_seed(p.for_seed(seed), calibrate=calibrate, progress=progress, n_boot=n_boot)
        results.append(res)
        if echo:
            echo(format_summary(res))
            echo("")
    summary_dir = None
    if len(results) > 1 and distributed.is_main():
        table = summarize_seeds(results)
        eff = results[0].cfg
        seeds_ = [r.cfg.train.seed for r in results]
        summary_dir = p.runs_root / (
            f"summary-{eff.model.variant}-{_setup_tag(eff, seeds_, p.truth_digest, p.space.tag)}-"
            f"{'calib' if calibrate else 'nocalib'}")
        summary_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(summary_dir / "summary.csv", ".csv") as tmp:
            table.to_csv(tmp, index=False)
        write_json(summary_dir / "summary.json", clean_json({
            "variant": cfg.model.variant, "preset": cfg.preset, "protocol": eff.score.protocol,
            "settings": config_overrides(eff), "config": eff.to_dict(),
            "seeds": seeds_, "reports": [str(r.report_dir) for r in results],
            "truth": results[0].metrics["truth"], "summary": table.to_dict("records")}))
        text = settings_header(eff) + "\n\n" + format_seed_table(table, len(results))
        write_text(summary_dir / "summary.md", text + "\n")
        if echo:
            echo(f"over {len(results)} seeds (mean ± std); written to {summary_dir}")
            echo(text)
    return results, summary_dir


# -- ablation --------------------------------------------------------------------------------
def default_variants(cfg: RunConfig) -> tuple[str, ...]:
    """Every registered variant that supports the config's space, in the registry's order."""

    return tuple(list_variants(space=cfg.space.name))


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
    with any of the variants, resolved already (:func:`rankbench.plan.resolve`)."""

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
    rows = []
    for v in variants:
        results, _ = run(plans[v].requested, calibrate=True, seeds=seeds, runs_root=runs_root, progress=progress,
                         n_boot=n_boot, echo=None, plan=plans[v])  # per-seed summaries: summaries.txt
        by_variant[v] = results
        for setting, _col, label in _SETTINGS:
            rows.append(_ablation_row(v, setting, label, results))
        if echo:
            echo(f"{v}: {len(results)} seed(s) scored; Kendall tau per subnet {rows[-2]['kendall_tau_subnet']:+.3f} "
                 f"without, {rows[-1]['kendall_tau_subnet']:+.3f} with BN calibration")
    first = by_variant[variants[0]]
    for name in (first[0].metrics.get("references") or {}):
        rows.append(_ablation_row(f"reference: {name}", f"ref_{name}", "", [r for v in variants
                                                                              for r in by_variant[v]]))
    table = pd.DataFrame(rows)
    paired = paired_differences(by_variant, n_boot=n_boot) if seeds >= 2 else pd.DataFrame()
    eff = first[0].cfg
    out = ablation_dir(base, truth=first[0].metrics["truth"]["digest"])  # the truth the reports were made against
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
    md = _ablation_markdown(table, eff, seeds, paired)
    write_text(out / "ablation.md", md + "\n")
    write_text(out / "ablation.tex", ablation_latex(table, paired, caption=md.split("\n", 1)[0]) + "\n")
    write_text(out / "summaries.txt", "\n\n".join(format_summary(r) for v in variants for r in by_variant[v]) + "\n")
    from rankbench.html_report import publish_ablation  # matplotlib only once an ablation is written

    publish_ablation(out)  # ablation_tau / ablation_paired figures and report.html; a failure only warns
    if echo:
        echo(md)
        echo(f"\nwritten to {out} (ablation.md, .csv, .json, .tex; each run's summary: summaries.txt)")
    return table, out


def _setting_metrics(result: RunResult, setting: str) -> dict | None:
    if setting.startswith("ref_"):
        return (result.metrics.get("references") or {}).get(setting[4:])
    return result.metrics["metrics"].get(setting)


def _ablation_row(variant: str, setting: str, label: str, results: Sequence[RunResult]) -> dict[str, Any]:
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


def _score_vectors(results: Sequence[RunResult], col: str) -> list[np.ndarray]:
    return [r.scores[col].to_numpy(float) for r in results]


def paired_differences(by_variant: dict[str, list[RunResult]], *, n_boot: int = 1000) -> pd.DataFrame:
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

    def add(a_name: str, b_name: str, setting_a: str, setting_b: str, a: list[RunResult], b: list[RunResult]):
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


def _ablation_markdown(table: pd.DataFrame, cfg: RunConfig, seeds: int, paired: pd.DataFrame | None = None) -> str:
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
