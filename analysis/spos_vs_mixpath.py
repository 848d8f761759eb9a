"""SPOS on the multi-path space against MixPath (LSBN): size and ranking.

Regenerates the paper's SPOS comparison on S4 (MixPath, Chu et al., ICCV 2023: SPOS, with
every path combination as its own candidate op, has far more parameters, 199.7M vs 52.9M at
the paper's scale, and ranks badly: Kendall tau -0.225 vs 0.504 for MixPath). Both are
trained and scored with the same preset; the table gives supernet parameters and Kendall tau
(per subnet and per NB101 hash class) without and with BN calibration, the figures the rank
agreement of each and their accuracy distributions by number of active paths.

Outputs (analysis/out/<preset>/): spos_vs_mixpath.{csv,md}, spos_vs_mixpath_rank_<variant>.{png,pdf,csv},
spos_vs_mixpath_accuracy.{png,pdf,csv}.

    python analysis/spos_vs_mixpath.py --preset quick
"""
from __future__ import annotations

import pandas as pd

import _recipes as R


def _tau(metrics: dict, setting: str, level: str):
    """Kendall tau of a report's metrics.json for one setting and level (None if absent)."""
    m = (metrics.get("metrics", {}).get(setting) or {}).get(level) or {}
    return m.get("kendall_tau")


def main() -> None:
    args = R.parser(__doc__, variants=lambda space: ["spos", "lsbn"], variants_help="spos lsbn").parse_args()
    from rankbench._io import atomic_path, write_text
    from rankbench.figures import pooled_scores
    from rankbench.figures.distributions import column_label, compute_accuracy_by_group, plot_accuracy_by_group
    from rankbench.figures.style import save_figure, variant_label
    from rankbench.reports import load_report
    from rankbench.supernet import supernet_from_config

    out = R.out_dir(args)
    written, rows, reports = [], [], []
    for variant in R.variants(args):
        rep = load_report(R.scored_report(args, variant))
        reports.append(rep.path)
        cfg, metrics = rep.config, rep.metrics
        written += R.rank_agreement_figure(rep, out / f"spos_vs_mixpath_rank_{variant}")[0]
        rows.append({
            "variant": variant, "label": variant_label(variant),
            "params_M": supernet_from_config(cfg).param_count() / 1e6,
            "tau_no_calib_subnet": _tau(metrics, "no_calib", "per_subnet"),
            "tau_calib_subnet": _tau(metrics, "calib", "per_subnet"),
            "tau_no_calib_class": _tau(metrics, "no_calib", "per_class"),
            "tau_calib_class": _tau(metrics, "calib", "per_class"),
            "report": rep.label,
        })
    table = pd.DataFrame(rows)
    with atomic_path(out / "spos_vs_mixpath.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    md = ["| variant | supernet params (M) | tau, no calibration | tau, BN calibration | "
          "tau per class, no calib. | tau per class, calib. |", "|---|---|---|---|---|---|"]
    fmt = (lambda v: "n/a" if v is None or pd.isna(v) else f"{v:+.3f}")
    for r in rows:
        md.append(f"| {r['label']} | {r['params_M']:.2f} | {fmt(r['tau_no_calib_subnet'])} | {fmt(r['tau_calib_subnet'])} | "
                  f"{fmt(r['tau_no_calib_class'])} | {fmt(r['tau_calib_class'])} |")
    write_text(out / "spos_vs_mixpath.md", "\n".join(md) + "\n")
    written += [out / "spos_vs_mixpath.csv", out / "spos_vs_mixpath.md"]
    scores, by, what = pooled_scores(reports)
    acc = compute_accuracy_by_group(scores, by=by)
    fig = plot_accuracy_by_group(acc, by, f"SPOS vs MixPath: one-shot accuracy by {column_label(by)} ({what})")
    written += save_figure(fig, out / "spos_vs_mixpath_accuracy", acc)
    print("\n".join(md))
    R.report(written)


if __name__ == "__main__":
    R.main(main)
