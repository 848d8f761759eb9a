"""The ablation table: Kendall tau of every normalisation variant, with and without BN
post-calibration.

Regenerates the paper's S4 ablation (MixPath, Chu et al., ICCV 2023: vanilla BN without
calibration is near useless, tau ~ 0.05; shadow BN beats BN with or without calibration; LSBN
+ calibration is best, 0.597; simple scaling beats BN and ESBN but loses to LSBN; SPOS ranks
badly). Runs ``rankbench ablation`` (:func:`rankbench.ablation.ablation`): every variant is
trained and scored with the preset, reusing finished runs and cached scores.

Outputs (analysis/out/<preset>/): ablation_table.{csv,md} (copies of the ablation's
runs/ablation-<...>/ablation.{csv,md}), its headline figures ablation_tau.{png,pdf} (tau per variant
x calibration with intervals, the reference rankers as horizontal bands) and, over several seeds,
ablation_paired.{png,pdf} (paired differences with their intervals), and ablation_report.html (the
folder's self-contained page: tables, figures, truth, config, provenance).

    python analysis/ablation_table.py --preset quick --seeds 1
"""
from __future__ import annotations

import _recipes as R


def main() -> None:
    from rankbench.supernet import list_variants

    p = R.parser(__doc__, variants=list_variants, variants_help="every variant the space supports")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per variant (default 1)")
    args = p.parse_args()
    from rankbench.ablation import ablation

    out = R.out_dir(args)
    table, where = ablation(R.config(args), R.variants(args), seeds=args.seeds, runs_root=args.runs_root,
                            progress=not args.no_progress)
    written = [R.copy_into(where / "ablation.csv", out / "ablation_table.csv"),
               R.copy_into(where / "ablation.md", out / "ablation_table.md")]
    if not (where / "ablation_tau.png").exists():  # a folder written before the figures existed
        from rankbench.html_report import publish_ablation

        publish_ablation(where)
    for name in ("ablation_tau.png", "ablation_tau.pdf", "ablation_paired.png", "ablation_paired.pdf"):
        if (where / name).exists():
            written.append(R.copy_into(where / name, out / name))
    if (where / "report.html").exists():
        written.append(R.copy_into(where / "report.html", out / "ablation_report.html"))
    R.report(written)


if __name__ == "__main__":
    R.main(main)
