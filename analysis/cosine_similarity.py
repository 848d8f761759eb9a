"""Cosine similarity and magnitude of path features: MixPath's motivation for shadow BN.

Regenerates the paper's feature-similarity figure (MixPath, Chu et al., ICCV 2023, Sec. 3):
features of different ops of one layer point in nearly the same direction, so the sum of k
active paths is about k times as long as one path. For every cell of each variant's trained
supernet: pairwise cosine similarity of every single (node, op) path and of sums of 2..m
paths on a fixed batch of training images, and each feature's magnitude relative to the
single paths it sums (marks at k for parallel and sqrt(k) for orthogonal features).
S4 only: the features are S4 paths (another space is refused with a message).

Outputs (analysis/out/<preset>/): cosine_<variant>_cell<N>.{png,pdf,csv}.

    python analysis/cosine_similarity.py --preset quick --variants lsbn bn
"""
from __future__ import annotations

import _recipes as R


def main() -> None:
    args = R.parser(__doc__, variants=lambda space: ["lsbn"], variants_help="lsbn, the paper's method",
                    cell=True).parse_args()
    from rankbench.figures import COSINE_IMAGES, feature_images
    from rankbench.figures._runs import run_label
    from rankbench.figures.cosine import applies_to, compute_cosine, default_input_arch, plot_cosine
    from rankbench.figures.style import save_figure
    from rankbench.train import load_supernet

    out = R.out_dir(args)
    written = []
    for variant in R.variants(args):
        net, cfg = load_supernet(R.trained_run(args, variant))
        why = applies_to(net)
        if why:
            raise ValueError(f"{variant}: {why}")
        x = feature_images(cfg, COSINE_IMAGES)
        arch = default_input_arch(net.space.m)
        for c in args.cells if args.cells is not None else range(net.num_cells):
            df = compute_cosine(net, x, cell=c, input_arch=arch)
            before = f"; cells before it run {arch.code}" if c > 0 else ""
            title = f"Path features of cell {c} ({len(x)} training images{before}): {run_label(cfg)}"
            written += save_figure(plot_cosine(df, title), out / f"cosine_{variant}_cell{c}", df)
    R.report(written)


if __name__ == "__main__":
    R.main(main)
