"""Rank agreement of the supernet with the ground truth (Kendall tau), and training curves.

Regenerates the paper's ranking-correlation figure (MixPath, Chu et al., ICCV 2023: one-shot
accuracy of S4 subnets against their NAS-Bench-101 accuracy; the paper reports Kendall
tau 0.597 for LSBN with BN calibration). One point per candidate, coloured by number of active
paths (S4) or the space's descriptive column, without and with BN post-calibration; plus the
supernet's training curves. The report read is named in the title and the CSV.

Trains and scores what is missing (``rankbench run --calibrate`` for each variant).

Outputs (analysis/out/<preset>/): rank_agreement_<variant>.{png,pdf,csv},
training_curves_<variant>.{png,pdf,csv}.

    python analysis/rank_agreement.py --preset quick --variants lsbn
"""
from __future__ import annotations

import _recipes as R


def main() -> None:
    args = R.parser(__doc__, variants=lambda space: ["lsbn"], variants_help="lsbn, the paper's method").parse_args()
    from rankbench.figures._runs import load_train_log, run_label
    from rankbench.figures.ranking import compute_training_curves, plot_training_curves
    from rankbench.figures.style import save_figure
    from rankbench.reports import load_report

    out = R.out_dir(args)
    written = []
    for variant in R.variants(args):
        rep = load_report(R.scored_report(args, variant))
        run_dir, cfg = rep.run_dir, rep.config
        files, df = R.rank_agreement_figure(rep, out / f"rank_agreement_{variant}")
        written += files
        log = compute_training_curves(load_train_log(run_dir))
        written += save_figure(plot_training_curves(log, f"Supernet training: {run_label(cfg)}"),
                               out / f"training_curves_{variant}", log)
        taus = df.groupby("calibration")["kendall_tau"].first().round(3).to_dict()
        print(f"{variant}: Kendall tau {taus} ({rep.label})")
    R.report(written)


if __name__ == "__main__":
    R.main(main)
