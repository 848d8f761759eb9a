"""One-shot accuracy distribution of subnets by number of active paths, per variant.

Regenerates the paper's accuracy-distribution figure (MixPath, Chu et al., ICCV 2023: on S4,
subnets grouped by m = 1..4 active paths; without shadow BN the multi-path subnets get low
one-shot accuracies with a large gap, i.e. they are under-estimated). Every subnet's
one-shot accuracy, without and with BN post-calibration, one colour per variant.

Trains and scores what is missing (``rankbench run --calibrate`` for each variant).

Outputs (analysis/out/<preset>/): accuracy_by_paths.{png,pdf,csv}.

    python analysis/accuracy_by_paths.py --preset quick --variants bn lsbn esbn scale
"""
from __future__ import annotations

import pandas as pd

import _recipes as R


def main() -> None:
    args = R.parser(__doc__, variants=("bn", "lsbn", "esbn", "scale")).parse_args()
    from rankbench.figures._runs import load_scores
    from rankbench.figures.distributions import compute_accuracy_by_paths, plot_accuracy_by_paths
    from rankbench.figures.style import save_figure

    out = R.out_dir(args)
    runs = [R.scored_run(args, v) for v in args.variants]
    df = compute_accuracy_by_paths(pd.concat([load_scores(d) for d in runs], ignore_index=True))
    cfg = R.config(args)
    title = f"One-shot accuracy by active paths ({cfg.preset} preset, m={cfg.model.m}, seed {cfg.train.seed})"
    R.report(save_figure(plot_accuracy_by_paths(df, title), out / "accuracy_by_paths", df))
    summary = df.groupby(["variant", "calibration", "num_paths"])["accuracy"].agg(["mean", "std", "count"])
    print(summary.round(2).to_string())


if __name__ == "__main__":
    R.main(main)
