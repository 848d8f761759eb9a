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

__all__ = [
    "RunResult", "run_seed", "run", "ablation", "seed_configs", "ranking_metrics", "summarize_seeds",
    "format_summary", "SCORE_COLUMNS", "ABLATION_VARIANTS",
]

#: columns of a run's scores.csv
SCORE_COLUMNS = ["subnet", "num_paths", "adjacency", "ops", "hash", "acc_no_calib", "acc_calib", "truth",
                 "truth_std", "loss_no_calib", "loss_calib"]
#: the paper's ablation rows, in its order
ABLATION_VARIANTS = ("bn", "lsbn", "esbn", "scale", "spos")
#: headline metrics of summaries and ablation tables: (key in rank_metrics, column label)
HEADLINE = (("kendall_tau", "Kendall tau"), ("spearman", "Spearman"), ("precision_at_10", "P@10%"),
            ("top1_regret", "top-1 regret"))
_SETTINGS = (("no_calib", "acc_no_calib", "no calibration"), ("calib", "acc_calib", "BN calibration"))


@dataclass
class RunResult:
    """One supernet's ranking: where it lives, its scores and its metrics."""

    cfg: RunConfig  # the effective config (protocol applied)
    run_dir: Path
    scores: pd.DataFrame
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


# -- metrics ---------------------------------------------------------------------------------
def ranking_metrics(df: pd.DataFrame, score_col: str, *, drop_lowest: int = 0, seed: int = 0,
                    n_boot: int = 1000) -> dict[str, Any]:
    """Metrics of one score column against ``truth``: per candidate (``drop_lowest`` applied)
    and per hash class (mean score and mean truth per class; nothing dropped). Candidates
    without a truth are left out explicitly (``n`` says how many were ranked)."""
    from rankbench.metrics import group_mean, rank_metrics

    ok = df["truth"].notna() & df[score_col].notna()
    sub = df[ok]
    s, t = sub[score_col].to_numpy(float), sub["truth"].to_numpy(float)
    out: dict[str, Any] = {"mean_accuracy": float(np.mean(s)) if len(s) else None,
                           "per_subnet": rank_metrics(s, t, drop_lowest=drop_lowest, seed=seed, n_boot=n_boot)}
    groups = sub["hash"].to_numpy()
    _, gs = group_mean(s, groups)
    _, gt = group_mean(t, groups)
    if len(gs) >= 3:
        out["per_class"] = rank_metrics(gs, gt, seed=seed, n_boot=n_boot)
    else:
        out["per_class"] = None
        out["per_class_note"] = f"only {len(gs)} hash classes: a ranking needs at least 3"
    by_paths = sub.groupby("num_paths")[score_col].agg(["mean", "std", "count"])
    out["accuracy_by_num_paths"] = {int(k): {"mean": float(r["mean"]), "std": _f(r["std"]), "n": int(r["count"])}
                                    for k, r in by_paths.iterrows()}
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
    if isinstance(obj, (float, np.floating)):
        return _f(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


# -- one seed --------------------------------------------------------------------------------
def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``cfg`` with training seeds ``cfg.train.seed + i``, i < ``seeds``."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def _prepare(cfg: RunConfig):
    """Effective config, protocol, candidates and truth (coverage checked)."""
    from rankbench.scoring import get_protocol
    from rankbench.spaces import create_space
    from rankbench.truth import load_truth

    proto = get_protocol(cfg.score.protocol)
    cfg = proto.apply(cfg)
    space = create_space(cfg.model.space, m=cfg.model.m)
    candidates = proto.candidates(space, cfg.score)
    truth = load_truth(cfg, candidates)
    coverage = truth.check_coverage([s.hash for s in candidates], preset=cfg.preset)
    return cfg, proto, space, candidates, truth, coverage


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


def run_seed(cfg: RunConfig, *, calibrate: bool, runs_root: str | Path | None = None, progress: bool = True,
             n_boot: int = 1000, prepared: tuple | None = None) -> RunResult:
    """Train (or reuse) the supernet of ``cfg``, score the protocol's candidates without and
    (``calibrate``) with BN calibration, join the truth, and write ``scores.csv`` and
    ``metrics.json`` into the run directory."""
    import torch

    from rankbench import rundir
    from rankbench.data.splits import load_splits
    from rankbench.scoring import score_cache_path, score_candidates
    from rankbench.train import load_supernet, resolve_device, train_supernet

    cfg, proto, space, candidates, truth, coverage = prepared or _prepare(cfg)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir = rundir.run_dir_for(cfg, runs_root)
    reused = rundir.is_finished(run_dir)
    train_supernet(cfg, run_dir, resume=True, progress=progress)
    timings["train_s"] = round(time.perf_counter() - t0, 3)
    device = resolve_device(cfg.train.device)
    if device.type == "cpu" and cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    net, _ = load_supernet(run_dir, map_location=device)
    t0 = time.perf_counter()
    splits = load_splits(cfg.data, progress=progress)
    timings["data_s"] = round(time.perf_counter() - t0, 3)

    frames = {}
    caches = {}
    for setting, calib in (("no_calib", False), ("calib", True)):
        if calib and not calibrate:
            continue
        cache = score_cache_path(run_dir, cfg, calib, proto)
        t0 = time.perf_counter()
        frames[setting] = score_candidates(net, candidates, splits, cfg.score, calibrate=calib, protocol=proto,
                                           data_cfg=cfg.data, cache_path=cache, progress=progress)
        timings[f"score_{setting}_s"] = round(time.perf_counter() - t0, 3)
        caches[setting] = str(cache)

    base = frames["no_calib"]
    truth_vals, truth_std = truth.values(base["hash"].tolist(), reduce=cfg.truth.reduce, seed=cfg.score.seed)
    scores = pd.DataFrame({
        "subnet": base["subnet"], "num_paths": base["num_paths"], "adjacency": base["adjacency"],
        "ops": base["ops"], "hash": base["hash"], "acc_no_calib": base["accuracy"],
        "acc_calib": frames["calib"]["accuracy"] if "calib" in frames else np.nan,
        "truth": truth_vals, "truth_std": truth_std, "loss_no_calib": base["loss"],
        "loss_calib": frames["calib"]["loss"] if "calib" in frames else np.nan,
    }, columns=SCORE_COLUMNS)

    warn = _truth_warnings(truth, cfg)
    for w in warn:
        warnings.warn(w, stacklevel=2)
    results: dict[str, Any] = {}
    for setting, col, _label in _SETTINGS:
        if setting in frames:
            results[setting] = ranking_metrics(scores, col, drop_lowest=cfg.score.drop_lowest, seed=cfg.score.seed,
                                               n_boot=n_boot)
    metrics = {
        "variant": cfg.model.variant,
        "preset": cfg.preset,
        "m": cfg.model.m,
        "seed": cfg.train.seed,
        "run_dir": str(run_dir),
        "training_reused": reused,
        "protocol": asdict(proto),
        "config_fingerprint": cfg.fingerprint(),
        "training_fingerprint": cfg.training_fingerprint(),
        "truth": {**truth.describe(), "reduce_used": cfg.truth.reduce, "coverage": coverage.to_dict()},
        "truth_warnings": warn,
        "candidates": {"n": len(candidates), "distinct_subnets": int(scores["subnet"].nunique()),
                       "hash_classes": int(scores["hash"].nunique())},
        "metrics": results,
        "score_caches": caches,
        "timings": timings,
        "config": cfg.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    from rankbench import distributed
    if distributed.is_main():  # under torchrun every rank has the gathered scores; rank 0 writes
        with atomic_path(run_dir / "scores.csv", ".csv") as tmp:
            scores.to_csv(tmp, index=False)
        write_json(run_dir / "metrics.json", _clean_json(metrics))
    distributed.barrier()
    return RunResult(cfg=cfg, run_dir=run_dir, scores=scores, metrics=metrics, timings=timings)


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


def format_summary(result: RunResult) -> str:
    """A compact table of one run's metrics, with the truth and its coverage."""
    m = result.metrics
    cov = m["truth"]["coverage"]
    lines = [
        f"{m['variant']}  preset {m['preset']}  m={m['m']}  seed {m['seed']}  protocol {m['protocol']['name']}",
        f"run dir: {m['run_dir']}",
        f"truth: {m['truth']['source']} ({m['truth']['location']}), {m['truth']['metric']}, "
        f"reduce={m['truth']['reduce_used']}; covers {cov['covered']}/{cov['candidates']} candidates, "
        f"{cov['classes_covered']}/{cov['classes']} hash classes",
    ]
    header = f"{'':<16}{'tau per subnet':<28}{'tau per class':<28}{'Spearman':>9}{'P@10%':>8}{'regret':>8}{'acc':>8}"
    lines.append(header)
    for setting, _col, label in _SETTINGS:
        r = m["metrics"].get(setting)
        if r is None:
            continue
        ps, pc = r["per_subnet"], r.get("per_class")
        lines.append(f"{label:<16}{_ci(ps, 'kendall_tau'):<28}{_ci(pc, 'kendall_tau'):<28}"
                     f"{_num(ps, 'spearman', '{:+.3f}'):>9}{_num(ps, 'precision_at_10', '{:.2f}'):>8}"
                     f"{_num(ps, 'top1_regret', '{:.4f}'):>8}{_num(r, 'mean_accuracy', '{:.3f}'):>8}")
    n = m["metrics"]["no_calib"]["per_subnet"]["n"]
    dropped = m["metrics"]["no_calib"]["per_subnet"].get("n_dropped", 0)
    lines.append(f"ranked {n} candidates" + (f" (the {dropped} lowest-scored dropped)" if dropped else "")
                 + "; 95% bootstrap CIs in brackets")
    for w in m.get("truth_warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


# -- several seeds ---------------------------------------------------------------------------
def _headline_values(result: RunResult) -> dict[str, float | None]:
    out = {}
    for setting, _col, _label in _SETTINGS:
        r = result.metrics["metrics"].get(setting)
        if r is None:
            continue
        for level in ("per_subnet", "per_class"):
            m = r.get(level)
            for key, _ in HEADLINE:
                out[f"{setting}.{level}.{key}"] = _f(m.get(key)) if m else None
    return out


def summarize_seeds(results: Sequence[RunResult]) -> pd.DataFrame:
    """Mean ± std over seeds of the headline metrics (rows: setting, level, metric)."""
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


def _summary_dir(cfg: RunConfig, seeds: Sequence[int], runs_root: str | Path | None) -> Path:
    from rankbench import rundir

    name = (f"summary-{cfg.model.variant}-{cfg.preset}-m{cfg.model.m}-{cfg.score.protocol}-seeds"
            f"{seeds[0]}-{seeds[-1]}-{cfg.training_fingerprint()}")
    return rundir.runs_root(runs_root) / name


def run(cfg: RunConfig, *, calibrate: bool, seeds: int = 1, runs_root: str | Path | None = None,
        progress: bool = True, n_boot: int = 1000, echo: Callable[[str], None] | None = print
        ) -> tuple[list[RunResult], Path | None]:
    """:func:`run_seed` for seeds ``cfg.train.seed + i``; with several seeds also a summary
    (mean ± std) in ``runs/summary-.../``. Returns (results, summary dir or None)."""
    cfgs = seed_configs(cfg, seeds)
    prepared = _prepare(cfgs[0])  # fail on truth coverage before any training
    results = []
    for c in cfgs:
        eff = prepared[0]
        p = (replace(eff, train=replace(eff.train, seed=c.train.seed)),) + prepared[1:]
        res = run_seed(c, calibrate=calibrate, runs_root=runs_root, progress=progress, n_boot=n_boot, prepared=p)
        results.append(res)
        if echo:
            echo(format_summary(res))
            echo("")
    summary_dir = None
    from rankbench import distributed

    if len(results) > 1 and distributed.is_main():
        table = summarize_seeds(results)
        summary_dir = _summary_dir(results[0].cfg, [r.cfg.train.seed for r in results], runs_root)
        summary_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(summary_dir / "summary.csv", ".csv") as tmp:
            table.to_csv(tmp, index=False)
        write_json(summary_dir / "summary.json", _clean_json({
            "variant": cfg.model.variant, "preset": cfg.preset, "protocol": results[0].cfg.score.protocol,
            "seeds": [r.cfg.train.seed for r in results], "run_dirs": [str(r.run_dir) for r in results],
            "truth": results[0].metrics["truth"], "summary": table.to_dict("records")}))
        text = _format_seed_table(table, len(results))
        write_text(summary_dir / "summary.md", text + "\n")
        if echo:
            echo(f"over {len(results)} seeds (mean ± std); written to {summary_dir}")
            echo(text)
    return results, summary_dir


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
        label = dict((s, lab) for s, _c, lab in _SETTINGS)[setting]
        lines.append(f"| {label} | {level.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- ablation --------------------------------------------------------------------------------
def ablation(cfg: RunConfig, variants: Sequence[str] = ABLATION_VARIANTS, *, seeds: int = 1,
             runs_root: str | Path | None = None, progress: bool = True, n_boot: int = 1000,
             echo: Callable[[str], None] | None = print) -> tuple[pd.DataFrame, Path]:
    """Every variant with and without BN calibration, as the paper's ablation table.

    Rows: variant x calibration; columns: Kendall tau per subnet and per hash class (95%
    bootstrap CI; with several seeds mean ± std over seeds), Spearman, P@10%, top-1 regret,
    and the run directories. Written as ``ablation.csv`` and ``ablation.md`` under
    ``runs/ablation-<preset>[-m<M>][-<protocol>]/``. Finished runs and cached scores are reused."""
    from rankbench import rundir
    from rankbench.config import load_preset
    from rankbench.supernet import VARIANTS

    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; variants: {', '.join(VARIANTS.names())}")
    rows = []
    for v in variants:
        vcfg = replace(cfg, model=replace(cfg.model, variant=v))
        results, _ = run(vcfg, calibrate=True, seeds=seeds, runs_root=runs_root, progress=progress,
                         n_boot=n_boot, echo=echo)
        for setting, _col, label in _SETTINGS:
            rows.append(_ablation_row(v, setting, label, results))
    table = pd.DataFrame(rows)
    name = f"ablation-{cfg.preset}"
    try:
        preset_m = load_preset(cfg.preset).model.m
    except Exception:  # a preset given as a path that moved: name by m anyway
        preset_m = None
    if preset_m != cfg.model.m:
        name += f"-m{cfg.model.m}"
    if cfg.score.protocol != "clean":
        name += f"-{cfg.score.protocol}"
    out = rundir.runs_root(runs_root) / name
    from rankbench import distributed

    if not distributed.is_main():  # under torchrun rank 0 writes the table
        return table, out
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "ablation.csv", ".csv") as tmp:
        table.to_csv(tmp, index=False)
    md = _ablation_markdown(table, cfg, seeds)
    write_text(out / "ablation.md", md + "\n")
    if echo:
        echo(md)
        echo(f"\nwritten to {out}")
    return table, out


def _ablation_row(variant: str, setting: str, label: str, results: Sequence[RunResult]) -> dict[str, Any]:
    row: dict[str, Any] = {"variant": variant, "calibration": setting == "calib", "setting": label,
                           "n_seeds": len(results)}
    for level in ("per_subnet", "per_class"):
        ms = [r.metrics["metrics"][setting].get(level) for r in results]
        for key, _ in (("kendall_tau", ""),) + tuple(HEADLINE[1:]):
            xs = np.array([_f(m.get(key)) if m else np.nan for m in ms], dtype=float)
            xs = xs[np.isfinite(xs)]
            col = f"{key}_{level.split('_')[1]}"
            row[col] = float(xs.mean()) if len(xs) else np.nan
            row[col + "_std"] = float(xs.std(ddof=1)) if len(xs) > 1 else np.nan
            if key == "kendall_tau" and len(results) == 1 and ms[0]:
                ci = ms[0].get("kendall_tau_ci") or (np.nan, np.nan)
                row[col + "_ci_low"], row[col + "_ci_high"] = _f(ci[0]), _f(ci[1])
    m0 = results[0].metrics
    row["n_candidates"] = m0["metrics"][setting]["per_subnet"]["n"]
    row["mean_accuracy"] = float(np.mean([_f(r.metrics["metrics"][setting]["mean_accuracy"]) or np.nan
                                          for r in results]))
    row["truth"] = f"{m0['truth']['source']}: {m0['truth']['location']}"
    cov = m0["truth"]["coverage"]
    row["truth_coverage"] = f"{cov['covered']}/{cov['candidates']} candidates, {cov['classes_covered']}/{cov['classes']} classes"
    row["run_dirs"] = " ".join(str(r.run_dir) for r in results)
    return row


def _ablation_markdown(table: pd.DataFrame, cfg: RunConfig, seeds: int) -> str:
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
    head = (f"Ablation, preset {cfg.preset}, m={cfg.model.m}, protocol {cfg.score.protocol}, "
            f"{seeds} seed(s) from {cfg.train.seed}; truth: {first.get('truth', 'n/a')} (covers "
            f"{first.get('truth_coverage', 'n/a')}). "
            + ("95% bootstrap CIs in brackets." if seeds == 1 else "mean ± std over seeds."))
    lines = [head, "",
             "| variant | BN calibration | Kendall tau (subnet) | Kendall tau (class) | Spearman | P@10% | "
             "top-1 regret | run dir |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        r = r.to_dict()
        lines.append(f"| {r['variant']} | {'yes' if r['calibration'] else 'no'} | {cell(r, 'kendall_tau_subnet')} | "
                     f"{cell(r, 'kendall_tau_class')} | {cell(r, 'spearman_subnet')} | "
                     f"{cell(r, 'precision_at_10_subnet', False)} | {cell(r, 'top1_regret_subnet', False)} | "
                     f"`{r['run_dirs']}` |")
    return "\n".join(lines)
