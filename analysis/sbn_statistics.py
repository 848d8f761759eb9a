"""Shadow-BN statistics: running mean of SBN_k ~ k x SBN_1, running variance ~ k^2 x, and
are gamma / beta of the shadow BNs alike?

Regenerates the paper's SBN-statistics figure (MixPath, Chu et al., ICCV 2023: for one block,
the running mean of SBN_2 is about twice that of SBN_1 and the variance about four times;
the learned gamma / beta of the SBNs end up close). For each cell of an ``lsbn`` supernet,
per channel, SBN_k against SBN_1; for ``esbn``, the BN of each k-input subset against the mean
of the 1-input BNs; on nb101, each vertex's BN for fan-in k against its fan-in-1 BN. Running
mean and variance: least-squares slope through the origin and correlation over channels;
gamma and beta: correlation and mean |difference| relative to the reference's spread (not a
slope, which is ~1 for any values near 1). Each row says in words what holds.

Outputs (analysis/out/<preset>/): sbn_<variant>_cell<N>.{png,pdf,csv} (per-channel values),
sbn_comparison.csv (per variant, cell, k and statistic: slope, expected slope, correlation,
relative difference, verdict and statement), and on stdout the summary over cells.

    python analysis/sbn_statistics.py --preset quick
"""
from __future__ import annotations

import pandas as pd

import _recipes as R


def main() -> None:
    from rankbench.figures.sbn_stats import shadow_bn_variants

    args = R.parser(__doc__, variants=shadow_bn_variants, variants_help="every shadow-BN variant of the space",
                    cell=True).parse_args()
    from rankbench._io import atomic_path
    from rankbench.figures import sbn_names
    from rankbench.figures._runs import run_label
    from rankbench.figures.sbn_stats import compute_sbn_stats, has_shadow_bns, plot_sbn_stats, sbn_comparison, sbn_summary
    from rankbench.figures.style import save_figure
    from rankbench.train import load_supernet

    out = R.out_dir(args)
    written, tables = [], []
    for variant in R.variants(args):
        net, cfg = load_supernet(R.trained_run(args, variant))
        if not has_shadow_bns(net):
            raise ValueError(f"the {variant!r} supernet has no shadow BNs; shadow-BN variants: "
                             f"{', '.join(shadow_bn_variants(cfg.space.name))}")
        stats = compute_sbn_stats(net, log=lambda m: print(f"note: {variant}: {m}"))
        k_name, ref = sbn_names(cfg, stats)
        table = sbn_comparison(stats, ref_name=ref)
        for c in args.cells if args.cells is not None else sorted(table["cell"].unique()):
            fig = plot_sbn_stats(stats, cell=c, k_name=k_name, ref_name=ref,
                                 title=f"Shadow BN of cell {c}, k {k_name} vs {ref}: {run_label(cfg)}")
            written += save_figure(fig, out / f"sbn_{variant}_cell{c}", stats[stats["cell"] == c])
        tables.append(table.assign(variant=variant))
        print(f"{variant}, over cells:\n  " + "\n  ".join(sbn_summary(table)))
    table = pd.concat(tables, ignore_index=True)
    table = table[["variant"] + [c for c in table.columns if c != "variant"]]
    with atomic_path(out / "sbn_comparison.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    written.append(out / "sbn_comparison.csv")
    R.report(written)


if __name__ == "__main__":
    R.main(main)
