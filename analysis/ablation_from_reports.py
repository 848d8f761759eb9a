"""Assemble an ablation from finished reports whose weights are not here.

`rankbench ablation` trains (or reuses) every run and scores it before it builds its tables.
When the runs were trained and scored elsewhere — a GPU box, a cluster whose run directories
came back without their weights (`supernet.pt`, checkpoints, score caches) — this builds the
same tables (ablation.md/.csv/.json/.tex, paired.csv, summaries.txt, figures, report.html)
from the reports alone: each run's `config.json` and its report's `scores.csv` and
`metrics.json`. Nothing is recomputed but the tables and the paired differences, whose
intervals resample seeds, hash classes and the truth's repeats exactly as in the ablation.

    python analysis/ablation_from_reports.py --runs-root DIR --preset nb101-quick --seeds 3 \\
        [--variants bn lsbn esbn scale] [--report clean-calib] [--set train.device=cuda]

The runs are found as `<variant>-<preset>-<space tag>-seed<S>-*` under `--runs-root`, one per
variant and seed; each must hold exactly one report matching `--report`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from rankbench.ablation import ablation_table, default_variants
from rankbench.config import RunConfig, apply_overrides, load_preset
from rankbench.pipeline import RunResult


def _result(run_dir: Path, report: str) -> RunResult:
    reports = sorted(p for p in (run_dir / "reports").iterdir() if p.name.startswith(report))
    if len(reports) != 1:
        raise ValueError(f"{run_dir} holds {len(reports)} reports matching {report!r} "
                         f"({', '.join(p.name for p in reports) or 'none'}); give --report a unique prefix")
    rep = reports[0]
    metrics = json.loads((rep / "metrics.json").read_text())
    scores = pd.read_csv(rep / "scores.csv", dtype={"hash": str, "adjacency": str, "ops": str, "name": str})
    cfg = RunConfig.from_dict(metrics["config"])
    return RunResult(cfg=cfg, run_dir=run_dir, scores=scores, metrics=metrics,
                     timings=metrics.get("timings") or {}, report_dir=rep)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-root", type=Path, required=True)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=None)
    ap.add_argument("--report", default="clean-calib")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = ap.parse_args(argv)
    cfg = apply_overrides(load_preset(args.preset), args.overrides)

    def results_of(variant: str) -> list[RunResult]:
        """The variant's finished reports, one per seed, in seed order."""
        results = []
        for i in range(args.seeds):
            seed = cfg.train.seed + i
            prefix = f"{variant}-{cfg.preset}-"
            hits = [d for d in args.runs_root.iterdir() if d.is_dir() and d.name.startswith(prefix)
                    and f"-seed{seed}-" in d.name]
            if len(hits) != 1:
                raise ValueError(f"{len(hits)} run directories for {variant} seed {seed} under "
                                 f"{args.runs_root}: {[d.name for d in hits]}")
            results.append(_result(hits[0], args.report))
        return results

    variants = tuple(args.variants) if args.variants else default_variants(cfg)
    by_variant = {v: results_of(v) for v in variants}
    print(f"read {sum(map(len, by_variant.values()))} reports of {len(variants)} variant(s) under {args.runs_root}")
    ablation_table(by_variant, cfg, args.seeds, runs_root=args.runs_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
