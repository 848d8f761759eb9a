"""One ranking run: train (or reuse) a supernet, score the candidates, join the truth, measure
the ranking, write the report. The CLI's ``rankbench run`` is a thin layer over :func:`run`;
the ablation over variants (``rankbench ablation``) is :mod:`rankbench.ablation`.

Data flows one way: config -> plan (:func:`rankbench.plan.resolve`: the protocol applied, the
candidates, the truth with its coverage checked, so a truth that cannot rank them fails before
any training, each seed's fingerprint and run directory; resolved once and passed down) ->
trained supernet (``train_supernet``, reused when finished) -> scores (cached per run under
``scores/``) -> metrics -> the report (:class:`rankbench.reports.RunReport`: ``scores.csv`` and
``metrics.json`` in the run directory); over seeds a summary directory. The text summaries live
in :mod:`rankbench.summaries`.
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
from rankbench.config import SECTIONS, RunConfig, config_overrides
from rankbench.data.splits import load_splits
from rankbench.metrics import group_mean, rank_metrics
from rankbench.nb101.spec import matrix_to_string
from rankbench.numerics import check_same_platform, setup_compute, weights_digest
from rankbench.plan import RunPlan, resolve
from rankbench.references import proxy_names, reference_scores
from rankbench.reports import SETTINGS, RunReport, report_name, report_setup
from rankbench.rundir import _space_tag
from rankbench.scoring import score_cache_path, score_candidates
from rankbench.scoring.score import check_score_cache_platform
from rankbench.summaries import format_seed_table, format_summary, settings_header, summarize_seeds
from rankbench.train import load_supernet, log_ranking_metrics, resolve_device, train_supernet
from rankbench.truth import truth_source

__all__ = [
    "RunResult", "run_seed", "run", "seed_configs", "ranking_metrics", "setup_tag",
    "summarize_seeds", "format_summary", "config_overrides", "SCORE_COLUMNS", "planned_run_dirs",
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
    also = _against_extra_truths(p, scores, list(results), list(refs), kw)

    digest = p.truth_digest
    setup = report_setup(cfg, calibrate=calibrate, truth_digest=digest)
    name = report_name(setup)
    report_dir = rundir.RunDir(run_dir).report_dir(name)
    report = RunReport(
        report=name, setup=setup, variant=cfg.model.variant, preset=cfg.preset,
        space={"name": space.name, **space.settings()}, seed=cfg.train.seed, run_dir=str(run_dir),
        training_reused=reused, protocol=asdict(proto), drop_rule=drop_rule,
        config_fingerprint=config_fingerprint(cfg), training_fingerprint=p.runs[0].training_fingerprint,
        weights_digest=digest_of_weights, platform=platform, platform_notes=platform_notes,
        truth={**truth.describe(), "reduce_used": cfg.truth.reduce, "digest": digest, "coverage": coverage.to_dict(),
               "noise_in_intervals": noise_resampled},
        truth_warnings=warn, notes=list(p.notes),
        candidates={"n": len(candidates), "distinct": int(scores["name"].nunique()),
                    "hash_classes": int(scores["hash"].nunique())},
        metrics=results, references=references, score_caches=caches, timings=timings, config=cfg.to_dict(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), also=also)
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


def config_fingerprint(cfg: RunConfig) -> str:
    """:meth:`RunConfig.fingerprint`, with ``truth.also`` left out at its default (no extra
    truth), so that a report made without extra truths keeps the fingerprint it had before."""
    d = cfg.to_dict()
    if not d["truth"].get("also"):
        d["truth"] = {k: v for k, v in d["truth"].items() if k != "also"}
    return short_digest({k: d[k] for k in SECTIONS})


def _against_extra_truths(plan: RunPlan, scores: pd.DataFrame, settings: Sequence[str], refs: Sequence[str],
                          kw: dict[str, Any]) -> dict[str, Any]:
    """Every setting and reference ranker against each extra truth of the plan (``truth.also``),
    side by side with the run's own truth: the same metrics and intervals (``kw``: the same keep
    rule, bootstrap and reduction; the extra truth's own repeats), on the candidates it covers.
    Adds its values to ``scores`` as ``truth_<key>``."""
    out: dict[str, Any] = {}
    cfg = plan.cfg
    hashes = scores["hash"].tolist()
    for x in plan.also:
        vals, _std = x.truth.values(hashes, reduce=cfg.truth.reduce, seed=cfg.score.seed)
        reps = x.truth.repeats_for(hashes)
        scores[f"truth_{x.key}"] = vals
        against = scores.assign(truth=vals)
        kwx = {**kw, "truth_repeats": reps}
        metrics = {setting: ranking_metrics(against, col, **kwx) for setting, col, _label in _SETTINGS
                   if setting in settings}
        references: dict[str, Any] = {}
        for name in refs:
            references[name] = ranking_metrics(against, f"ref_{name}", **kwx)
            references[name].pop("mean_accuracy", None)
        noise = bool((np.count_nonzero(~np.isnan(reps), axis=1) >= 2).any())
        out[x.key] = {"truth": {**x.truth.describe(), "also": x.source, "reduce_used": cfg.truth.reduce,
                                "digest": x.digest, "coverage": x.coverage.to_dict(), "noise_in_intervals": noise},
                      "truth_warnings": _truth_warnings(x.truth, cfg), "metrics": metrics, "references": references}
    return out


def setup_tag(cfg: RunConfig, seeds: Sequence[int], truth: str = "", space_tag: str | None = None) -> str:
    """``<preset>-<space>-<protocol>-seeds<a>-<b>[-o<hash of overrides>]-t<truth digest>``: a
    folder name saying what was run and against which truth, so that a trial with other
    settings, or a table made against an updated truth, never lands where another one is."""

    ov = config_overrides(cfg, ignore=("model.variant", "train.seed", "score.protocol", "train.device",
                                       "train.num_threads", "truth.also"))
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
            f"summary-{eff.model.variant}-{setup_tag(eff, seeds_, p.truth_digest, p.space.tag)}-"
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
