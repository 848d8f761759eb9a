"""Shadow-BN statistics: running mean of SBN_k ~ k x SBN_1, running variance ~ k^2 x.

Regenerates the paper's SBN-statistics figure (MixPath, Chu et al., ICCV 2023: for one block,
the running mean of SBN_2 is about twice that of SBN_1 and the variance about four times;
the learned gamma / beta of the SBNs end up close). For each cell of an ``lsbn`` supernet,
per channel, SBN_k against SBN_1; for ``esbn``, the BN of each k-node subset against the mean
of the 1-node subsets. Slopes are fitted by least squares through the origin.

Outputs (analysis/out/<preset>/): sbn_<variant>_cell<N>.{png,pdf,csv} (per-channel values),
sbn_slopes.csv (fitted slope, expected slope, relative RMS residual per variant, cell, k and
statistic).

    python analysis/sbn_statistics.py --preset quick
"""
from __future__ import annotations

import pandas as pd

import _recipes as R


def main() -> None:
    args = R.parser(__doc__, variants=("lsbn", "esbn"), cell=True).parse_args()
    from rankbench._io import atomic_path
    from rankbench.figures._runs import run_label
    from rankbench.figures.sbn_stats import compute_sbn_stats, fit_slopes, plot_sbn_stats
    from rankbench.figures.style import save_figure
    from rankbench.train import load_supernet

    out = R.out_dir(args)
    written, slopes = [], []
    for variant in args.variants:
        if variant not in ("lsbn", "esbn"):
            raise ValueError(f"SBN statistics need a shadow-BN variant (lsbn, esbn), got {variant!r}")
        net, cfg = load_supernet(R.trained_run(args, variant))
        stats = compute_sbn_stats(net)
        ref = "SBN_1" if variant == "lsbn" else "mean of the 1-node-subset BNs"
        for c in args.cells if args.cells is not None else range(net.num_cells):
            fig = plot_sbn_stats(stats, cell=c, title=f"Shadow BN of cell {c}, k paths vs {ref}: {run_label(cfg)}")
            written += save_figure(fig, out / f"sbn_{variant}_cell{c}", stats[stats["cell"] == c])
        slopes.append(fit_slopes(stats).assign(variant=variant))
    table = pd.concat(slopes, ignore_index=True)
    table = table[["variant"] + [c for c in table.columns if c != "variant"]]
    with atomic_path(out / "sbn_slopes.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    written.append(out / "sbn_slopes.csv")
    R.report(written)
    # the claim in one glance: mean and variance slopes for k = 2, averaged over cells
    k2 = table[(table["k"] == 2) & table["stat"].isin(["running_mean", "running_var"])]
    print(k2.groupby(["variant", "stat"])[["slope", "expected"]].mean().round(3).to_string())


if __name__ == "__main__":
    R.main(main)
