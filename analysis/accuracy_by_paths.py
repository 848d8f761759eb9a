"""One-shot accuracy distribution of candidates by number of active paths (S4) or the space's
own descriptive column (nb101: the largest fan-in of a vertex), per variant.

Regenerates the paper's accuracy-distribution figure (MixPath, Chu et al., ICCV 2023: on S4,
subnets grouped by m = 1..4 active paths; without shadow BN the multi-path subnets get low
one-shot accuracies with a large gap, i.e. they are under-estimated). Every candidate's
one-shot accuracy, without and with BN post-calibration, one colour per variant; the report
read is named in the title and the CSV.

Trains and scores what is missing (``rankbench run --calibrate`` for each variant; default:
every variant with a shared multi-input cell, from the registry).

Outputs (analysis/out/<preset>/): accuracy_by_<column>.{png,pdf,csv} (S4: accuracy_by_num_paths).

    python analysis/accuracy_by_paths.py --preset quick --variants bn lsbn esbn scale
"""
from __future__ import annotations

import _recipes as R


def _shared_cell_variants(space: str) -> list[str]:
    """Variants that share one cell across candidates (a normalisation scheme on the space's
    cell), from the registry."""
    from rankbench.supernet import list_variants, variant_info

    return [v for v in list_variants(space) if variant_info(v).norm is not None]


def main() -> None:
    args = R.parser(__doc__, variants=_shared_cell_variants, variants_help="the variants with a shared cell").parse_args()
    from rankbench.figures import pooled_scores
    from rankbench.figures.distributions import column_label, compute_accuracy_by_group, plot_accuracy_by_group
    from rankbench.figures.style import save_figure

    out = R.out_dir(args)
    reports = [R.scored_report(args, v) for v in R.variants(args)]
    scores, by, what = pooled_scores(reports)
    df = compute_accuracy_by_group(scores, by=by)
    title = f"One-shot accuracy by {column_label(by)} ({what})"
    R.report(save_figure(plot_accuracy_by_group(df, by, title), out / f"accuracy_by_{by}", df))
    summary = df.groupby(["group", "calibration", by])["accuracy"].agg(["mean", "std", "count"])
    print(summary.round(2).to_string())


if __name__ == "__main__":
    R.main(main)
