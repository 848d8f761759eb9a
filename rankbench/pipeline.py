"""End-to-end ranking runs: train (or reuse) supernets, score candidates, join the truth,
measure the ranking, write reports. The CLI (``rankbench run`` / ``rankbench ablation``) is a
thin layer over :func:`run` and :func:`ablation`.

Data flows one way: config -> candidates and truth (checked first, so a truth that cannot
rank them fails before any training) -> trained supernet (``train_supernet``, reused when
finished) -> scores (cached per run under ``scores/``) -> metrics -> ``scores.csv`` and
``metrics.json`` in the run directory; over seeds a summary directory; over variants an
ablation table.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from rankbench._io import atomic_path, write_json, write_text
from rankbench.config import RunConfig
from rankbench.launch import LauncherOptions
from rankbench.numerics import check_same_platform, setup_compute, weights_digest

__all__ = [
    "RunResult", "Prepared", "prepare", "run_seed", "run", "ablation", "seed_configs", "ranking_metrics",
    "summarize_seeds", "paired_differences", "format_summary", "config_overrides", "SCORE_COLUMNS",
    "default_variants", "ablation_dir", "planned_run_dirs",
]

#: columns every report's scores.csv has (plus the space's descriptive columns after ``name``, and
#: one ``ref_<ranker>`` column per reference ranker)
SCORE_COLUMNS = ["name", "adjacency", "ops", "hash", "acc_no_calib", "acc_calib", "truth", "truth_std",
                 "loss_no_calib", "loss_calib"]
#: headline metrics of summaries and ablation tables: (key in rank_metrics, column label)
HEADLINE = (("kendall_tau", "Kendall tau"), ("spearman", "Spearman"), ("precision_at_10", "P@10%"),
            ("top1_regret", "top-1 regret"))
_SETTINGS = (("no_calib", "acc_no_calib", "no calibration"), ("calib", "acc_calib", "BN calibration"))


@dataclass
class RunResult:
    """One supernet's ranking under one scoring setup: where it lives, its scores, its metrics."""

    cfg: RunConfig  # the effective config (protocol applied)
    run_dir: Path
    scores: pd.DataFrame
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    report_dir: Path | None = None  # run_dir/reports/<name>/: scores.csv + metrics.json

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
    from rankbench.metrics import group_mean, rank_metrics

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


def _f(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clean_json(obj: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, numpy scalars -> Python: strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return _f(obj)
    if isinstance(obj, np.ndarray):
        return _clean_json(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


# -- one seed --------------------------------------------------------------------------------
def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``cfg`` with training seeds ``cfg.train.seed + i``, i < ``seeds``."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def _space_of(cfg: RunConfig):
    from rankbench.spaces import space_from_config

    return space_from_config(cfg)


@dataclass
class Prepared:
    """What a run needs before any training: checked first, so that a truth that cannot rank
    the candidates fails in seconds, not after the training."""

    cfg: RunConfig  # effective (protocol applied)
    proto: Any
    space: Any
    candidates: list
    truth: Any
    coverage: Any
    notes: list[str] = field(default_factory=list)

    def for_seed(self, seed: int) -> "Prepared":
        return replace(self, cfg=replace(self.cfg, train=replace(self.cfg.train, seed=seed)))


def prepare(cfg: RunConfig) -> Prepared:
    """Effective config, protocol, candidates and truth (coverage checked)."""
    from rankbench.scoring import get_protocol
    from rankbench.truth import load_truth

    proto = get_protocol(cfg.score.protocol)
    cfg = proto.apply(cfg)
    space = _space_of(cfg)
    candidates = proto.candidates(space, cfg.score)
    notes = []
    note_fn = getattr(proto, "candidates_note", None)
    if note_fn is not None:
        note = note_fn(space, cfg.score)
        if note:
            notes.append(note)
    truth = load_truth(cfg, candidates)
    coverage = truth.check_coverage([s.hash for s in candidates], preset=cfg.preset)
    return Prepared(cfg, proto, space, candidates, truth, coverage, notes)


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
    """A short hash of the truth's values (hashes and repeats): a report made against another
    truth (e.g. after more seeds were measured) is another report."""
    import hashlib

    blob = truth.table.to_csv(float_format="%.17g").encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _network_size(cfg: RunConfig, truth):
    from rankbench.references import NetworkSize

    if truth.source == "nb101":  # NB101's own networks: 128 channels, 3 x 3 cells, 32x32
        return NetworkSize(num_classes=cfg.model.num_classes)
    return NetworkSize(stem_channels=cfg.model.width, stacks=cfg.model.stacks,
                       cells_per_stack=cfg.model.cells_per_stack, resolution=cfg.data.resolution,
                       num_classes=cfg.model.num_classes)


def _references(cfg: RunConfig, truth, candidates) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from rankbench.references import reference_scores

    store = None
    if truth.source == "nb101":
        from rankbench import nb101

        store = nb101.open(cfg.truth.store or None)
    try:
        return reference_scores([c.spec for c in candidates], _network_size(cfg, truth), store=store,
                                metric=cfg.truth.metric)
    finally:
        if store is not None:
            store.close()


def _candidate_table(space, candidates) -> pd.DataFrame:
    from rankbench.nb101.spec import matrix_to_string

    rows = []
    for a in candidates:
        spec = a.spec
        row = {"name": a.name}
        row.update(space.describe(a))
        row.update(adjacency=matrix_to_string(spec.matrix), ops=",".join(spec.ops), hash=spec.hash)
        rows.append(row)
    return pd.DataFrame(rows)


def run_seed(cfg: RunConfig, *, calibrate: bool, runs_root: str | Path | None = None, progress: bool = True,
             n_boot: int = 1000, prepared: Prepared | None = None) -> RunResult:
    """Train (or reuse) the supernet of ``cfg``, score the protocol's candidates without and
    (``calibrate``) with BN calibration, join the truth and the reference rankers, and write one
    report (``reports/<name>/scores.csv`` + ``metrics.json``) into the run directory."""
    import torch

    from rankbench import distributed, rundir
    from rankbench.data.splits import load_splits
    from rankbench.reports import report_name, report_setup
    from rankbench.scoring import score_cache_path, score_candidates
    from rankbench.scoring.score import check_score_cache_platform
    from rankbench.train import load_supernet, resolve_device, train_supernet

    p = prepared or prepare(cfg)
    cfg, proto, space, candidates, truth, coverage = p.cfg, p.proto, p.space, p.candidates, p.truth, p.coverage
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir = rundir.run_dir_for(cfg, runs_root)
    reused = rundir.is_finished(run_dir)
    train_supernet(cfg, run_dir, resume=True, progress=progress)
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
        cache = score_cache_path(run_dir, cfg, calib, proto, platform=platform)
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
    refs, ref_desc = _references(cfg, truth, candidates)
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
    kw = dict(keep=keep, drop_lowest=0 if keep is not None else n_drop, truth_repeats=repeats,
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

    digest = truth_digest(truth)
    setup = report_setup(cfg, calibrate=calibrate, truth_digest=digest)
    name = report_name(setup)
    rd = rundir.RunDir(run_dir)
    report_dir = rd.report_dir(name)
    metrics = {
        "report": name,
        "setup": setup,
        "variant": cfg.model.variant,
        "preset": cfg.preset,
        "space": {"name": space.name, **space.settings()},
        "seed": cfg.train.seed,
        "run_dir": str(run_dir),
        "training_reused": reused,
        "protocol": asdict(proto),
        "drop_rule": drop_rule,
        "config_fingerprint": cfg.fingerprint(),
        "training_fingerprint": cfg.training_fingerprint(),
        "weights_digest": digest_of_weights,
        "platform": platform,
        "platform_notes": platform_notes,
        "truth": {**truth.describe(), "reduce_used": cfg.truth.reduce, "digest": digest,
                  "coverage": coverage.to_dict(),
                  "noise_in_intervals": noise_resampled},
        "truth_warnings": warn,
        "notes": list(p.notes),
        "candidates": {"n": len(candidates), "distinct": int(scores["name"].nunique()),
                       "hash_classes": int(scores["hash"].nunique())},
        "metrics": results,
        "references": references,
        "score_caches": caches,
        "timings": timings,
        "config": cfg.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if distributed.is_main():  # under torchrun every rank has the gathered scores; rank 0 writes
        with atomic_path(report_dir / rd.REPORT_SCORES, ".csv") as tmp:
            scores.to_csv(tmp, index=False)
        write_json(report_dir / rd.REPORT_METRICS, _clean_json(metrics))
        from rankbench.html_report import publish_report  # matplotlib only once a report is written

        publish_report(report_dir)  # figures/ and report.html beside metrics.json; a failure only warns
        if getattr(cfg.train, "tensorboard", False):
            from rankbench.train import log_ranking_metrics

            log_ranking_metrics(run_dir, {"metrics": results, "references": references},
                                prefix=f"ranking/{name}")
    distributed.barrier()
    return RunResult(cfg=cfg, run_dir=run_dir, scores=scores, metrics=metrics, timings=timings,
                     report_dir=report_dir)


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
            for key, _ in HEADLINE:
                out[f"{setting}.{level}.{key}"] = _f(m.get(key)) if m else None
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


def config_overrides(cfg: RunConfig, *, ignore: Sequence[str] = ("model.variant", "train.seed")) -> dict[str, Any]:
    """The resolved fields in which ``cfg`` differs from its preset (dotted name -> value)."""
    from rankbench.config import load_preset

    try:
        base = load_preset(cfg.preset).to_dict()
    except Exception:  # a preset given as a path that moved: everything counts
        base = {}
    out = {}
    for section, fields_ in cfg.to_dict().items():
        if not isinstance(fields_, dict):
            continue
        for k, v in fields_.items():
            key = f"{section}.{k}"
            if key in ignore:
                continue
            if (base.get(section) or {}).get(k, object()) != v:
                out[key] = v
    return out


def _setup_tag(cfg: RunConfig, seeds: Sequence[int], truth: str = "") -> str:
    """``<preset>-<space>-<protocol>-seeds<a>-<b>[-o<hash of overrides>]-t<truth digest>``: a
    folder name saying what was run and against which truth, so that a trial with other
    settings, or a table made against an updated truth, never lands where another one is."""
    import hashlib
    import json

    from rankbench.rundir import _space_tag

    ov = config_overrides(cfg, ignore=("model.variant", "train.seed", "score.protocol", "train.device",
                                       "train.num_threads"))
    tag = f"{cfg.preset}-{_space_tag(cfg)}-{cfg.score.protocol}-seeds{seeds[0]}-{seeds[-1]}"
    if ov:
        tag += "-o" + hashlib.sha256(json.dumps(ov, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return tag + (f"-t{truth[:6]}" if truth else "")


def _settings_header(cfg: RunConfig) -> str:
    ov = config_overrides(cfg, ignore=("model.variant", "train.seed"))
    if not ov:
        return f"settings: preset {cfg.preset} as shipped"
    return f"settings: preset {cfg.preset} with " + ", ".join(f"{k}={v}" for k, v in sorted(ov.items()))


def planned_run_dirs(cfg: RunConfig, seeds: int = 1, runs_root: str | Path | None = None
                     ) -> list[tuple[RunConfig, Path]]:
    """(effective config, run directory) of each seed, as :func:`run` will use them (the
    protocol applied), computed without creating anything (``--dry-run``)."""
    from rankbench import rundir
    from rankbench.scoring import get_protocol

    eff = get_protocol(cfg.score.protocol).apply(cfg)
    return [(e, rundir.run_dir_for(e, runs_root))
            for e in (replace(eff, train=replace(eff.train, seed=c.train.seed)) for c in seed_configs(cfg, seeds))]


def ablation_dir(cfg: RunConfig, seeds: int = 1, runs_root: str | Path | None = None, *,
                 truth: str | None = None) -> Path:
    """Where :func:`ablation` writes its table for ``cfg`` and ``seeds`` (named by what was run
    and by the truth's digest ``truth``; when not given, the truth is loaded to compute it)."""
    from rankbench import rundir
    from rankbench.scoring import get_protocol

    if truth is None:
        p = prepare(cfg)
        eff, truth = p.cfg, truth_digest(p.truth)
    else:
        eff = get_protocol(cfg.score.protocol).apply(cfg)
    seeds_ = [c.train.seed for c in seed_configs(eff, seeds)]
    return rundir.runs_root(runs_root) / f"ablation-{_setup_tag(eff, seeds_, truth)}"


def run(cfg: RunConfig, *, calibrate: bool, seeds: int = 1, runs_root: str | Path | None = None,
        progress: bool = True, n_boot: int = 1000, echo: Callable[[str], None] | None = print
        ) -> tuple[list[RunResult], Path | None]:
    """:func:`run_seed` for seeds ``cfg.train.seed + i``; with several seeds also a summary
    (mean ± std) in ``runs/summary-<variant>-<setup>/``. Returns (results, summary dir or None)."""
    from rankbench import distributed, rundir

    cfgs = seed_configs(cfg, seeds)
    prepared = prepare(cfgs[0])  # fail on truth coverage before any training
    results = []
    for c in cfgs:
        res = run_seed(c, calibrate=calibrate, runs_root=runs_root, progress=progress, n_boot=n_boot,
                       prepared=prepared.for_seed(c.train.seed))
        results.append(res)
        if echo:
            echo(format_summary(res))
            echo("")
    summary_dir = None
    if len(results) > 1 and distributed.is_main():
        table = summarize_seeds(results)
        eff = results[0].cfg
        seeds_ = [r.cfg.train.seed for r in results]
        summary_dir = rundir.runs_root(runs_root) / (
            f"summary-{eff.model.variant}-{_setup_tag(eff, seeds_, results[0].metrics['truth']['digest'])}-"
            f"{'calib' if calibrate else 'nocalib'}")
        summary_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(summary_dir / "summary.csv", ".csv") as tmp:
            table.to_csv(tmp, index=False)
        write_json(summary_dir / "summary.json", _clean_json({
            "variant": cfg.model.variant, "preset": cfg.preset, "protocol": eff.score.protocol,
            "settings": config_overrides(eff), "config": eff.to_dict(),
            "seeds": seeds_, "reports": [str(r.report_dir) for r in results],
            "truth": results[0].metrics["truth"], "summary": table.to_dict("records")}))
        text = _settings_header(eff) + "\n\n" + _format_seed_table(table, len(results))
        write_text(summary_dir / "summary.md", text + "\n")
        if echo:
            echo(f"over {len(results)} seeds (mean ± std); written to {summary_dir}")
            echo(text)
    return results, summary_dir


def _label_of(setting: str) -> str:
    labels = {s: lab for s, _c, lab in _SETTINGS}
    return labels.get(setting, setting.replace("ref_", "reference: "))


def _format_seed_table(table: pd.DataFrame, n: int) -> str:
    lines = ["| setting | level | " + " | ".join(label for _, label in HEADLINE) + " |",
             "|---|---|" + "---|" * len(HEADLINE)]
    for (setting, level), g in table.groupby(["setting", "level"], sort=False):
        cells = []
        for key, _ in HEADLINE:
            r = g[g["metric"] == key]
            if r.empty or not np.isfinite(r["mean"].iloc[0]):
                cells.append("n/a")
            else:
                sd = r["std"].iloc[0]
                cells.append(f"{r['mean'].iloc[0]:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{r['mean'].iloc[0]:.3f}")
        lines.append(f"| {_label_of(setting)} | {level.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- ablation --------------------------------------------------------------------------------
def default_variants(cfg: RunConfig) -> tuple[str, ...]:
    """Every registered variant that supports the config's space, in the registry's order."""
    from rankbench.supernet import list_variants

    return tuple(list_variants(space=cfg.space.name))


def ablation(cfg: RunConfig, variants: Sequence[str] | None = None, *, seeds: int = 1,
             runs_root: str | Path | None = None, progress: bool = True, n_boot: int = 1000,
             echo: Callable[[str], None] | None = print, launcher: LauncherOptions | None = None
             ) -> tuple[pd.DataFrame, Path]:
    """Every variant with and without BN calibration, as the paper's ablation table, with the
    reference rankers beside them and, over several seeds, paired differences.

    Rows: variant x calibration, then the reference rankers; columns: Kendall tau per subnet
    and per hash class (one seed: 95% bootstrap interval; several: mean ± std over seeds),
    Spearman, P@10%, top-1 regret, the reports read. ``paired.csv``: for each pair of variants
    (same calibration) and for calibration vs none (same variant), the difference in tau with a
    95% interval over training seeds, hash classes and the truth's repeats. Written under
    ``runs/ablation-<preset>-<space>-<protocol>-seeds<a>-<b>[-o<overrides>]-t<truth digest>/``. Finished runs
    and cached scores are reused. ``launcher``: first train every missing run as one job
    (:mod:`rankbench.launch`); the loop below then reuses them and scores here."""
    from rankbench import distributed
    from rankbench.supernet import VARIANTS

    variants = tuple(variants) if variants else default_variants(cfg)
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; variants: {', '.join(VARIANTS.names())}")
    if launcher is not None:  # truth coverage checked before any job; then the missing runs as jobs
        from rankbench.launch import train_missing

        prepare(replace(cfg, model=replace(cfg.model, variant=variants[0])))
        train_missing([pr for v in variants for pr in planned_run_dirs(
            replace(cfg, model=replace(cfg.model, variant=v)), seeds, runs_root)], launcher, runs_root=runs_root,
            echo=echo)
    by_variant: dict[str, list[RunResult]] = {}
    rows = []
    for v in variants:
        vcfg = replace(cfg, model=replace(cfg.model, variant=v))
        results, _ = run(vcfg, calibrate=True, seeds=seeds, runs_root=runs_root, progress=progress,
                         n_boot=n_boot, echo=None)  # per-seed summaries: summaries.txt in the ablation folder
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
    out = ablation_dir(cfg, seeds, runs_root, truth=first[0].metrics["truth"]["digest"])
    if not distributed.is_main():  # under torchrun rank 0 writes the table
        return table, out
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "ablation.csv", ".csv") as tmp:
        table.to_csv(tmp, index=False)
    if len(paired):
        with atomic_path(out / "paired.csv", ".csv") as tmp:
            paired.to_csv(tmp, index=False)
    write_json(out / "ablation.json", _clean_json({
        "settings": config_overrides(eff), "config": eff.to_dict(), "variants": list(variants),
        "seeds": [r.cfg.train.seed for r in first], "truth": first[0].metrics["truth"],
        "reports": {v: [str(r.report_dir) for r in rs] for v, rs in by_variant.items()}}))
    md = _ablation_markdown(table, eff, seeds, paired)
    write_text(out / "ablation.md", md + "\n")
    from rankbench._latex import ablation_latex

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
        for key, _ in HEADLINE + (("precision_at_10_naslib", ""),):
            xs = np.array([_f(m.get(key)) if m else np.nan for m in ms], dtype=float)
            xs = xs[np.isfinite(xs)]
            col = f"{key}_{level.split('_')[1]}"
            row[col] = float(xs.mean()) if len(xs) else np.nan
            row[col + "_std"] = float(xs.std(ddof=1)) if len(xs) > 1 else np.nan
            if key == "kendall_tau" and len(results) == 1 and ms[0]:
                ci = ms[0].get("kendall_tau_ci") or (np.nan, np.nan)
                row[col + "_ci_low"], row[col + "_ci_high"] = _f(ci[0]), _f(ci[1])
    m0 = results[0].metrics
    sm = _setting_metrics(results[0], setting) or {}
    row["n_candidates"] = (sm.get("per_subnet") or {}).get("n")
    accs = [_f((_setting_metrics(r, setting) or {}).get("mean_accuracy")) for r in results]
    accs = [a for a in accs if a is not None]
    row["mean_accuracy"] = float(np.mean(accs)) if accs else np.nan
    from rankbench._paths import display_path

    row["truth"] = f"{m0['truth']['source']}: {display_path(m0['truth']['location'])}"
    cov = m0["truth"]["coverage"]
    row["truth_coverage"] = f"{cov['covered']}/{cov['candidates']} candidates, {cov['classes_covered']}/{cov['classes']} classes"
    row["reports"] = " ".join(sorted({f"{Path(r.run_dir).name}/{r.report}" for r in results}))
    return row


def _score_vectors(results: Sequence[RunResult], col: str) -> list[np.ndarray]:
    return [r.scores[col].to_numpy(float) for r in results]


def paired_differences(by_variant: dict[str, list[RunResult]], *, n_boot: int = 1000) -> pd.DataFrame:
    """Paired differences in Kendall tau (per subnet) over training seeds: every pair of
    variants at the same calibration setting, and calibration vs none per variant. Intervals
    resample training seeds, hash classes (the same draw for both arms) and the truth's repeats,
    redrawn as the truth was made (:func:`rankbench.metrics.paired_difference`)."""
    from rankbench.metrics import paired_difference

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
                add(f"{va} ({_label_of(setting)})", f"{vb} ({_label_of(setting)})", setting, setting,
                    by_variant[va], by_variant[vb])
    for v in names:
        add(f"{v} (BN calibration)", f"{v} (no calibration)", "calib", "no_calib", by_variant[v], by_variant[v])
    return pd.DataFrame(rows)


def _repeats_of(result: RunResult) -> np.ndarray | None:
    """The truth's repeats per candidate row of a result (None when the truth is one draw)."""
    if not result.metrics["truth"].get("noise_in_intervals"):
        return None
    from rankbench.truth import load_truth

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
    from rankbench.rundir import _space_tag

    head = (f"Ablation, preset {cfg.preset}, space {_space_tag(cfg)}, protocol {cfg.score.protocol}, "
            f"{seeds} seed(s) from {cfg.train.seed}; truth: {first.get('truth', 'n/a')} (covers "
            f"{first.get('truth_coverage', 'n/a')}). "
            + ("95% bootstrap intervals in brackets." if seeds == 1 else "mean ± std over seeds."))
    lines = [head, "", _settings_header(cfg), "",
             "| variant | BN calibration | Kendall tau (subnet) | Kendall tau (class) | Spearman | P@10% | "
             "P@10 NASLib | top-1 regret | reports |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        r = r.to_dict()
        calib = "" if str(r["variant"]).startswith("reference") else ("yes" if r["calibration"] else "no")
        reports = "the same candidates (ablation.csv lists the reports)" if not calib else f"`{r['reports']}`"
        lines.append(f"| {r['variant']} | {calib} | {cell(r, 'kendall_tau_subnet')} | "
                     f"{cell(r, 'kendall_tau_class')} | {cell(r, 'spearman_subnet')} | "
                     f"{cell(r, 'precision_at_10_subnet', False)} | {cell(r, 'precision_at_10_naslib_subnet', False)} | "
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
