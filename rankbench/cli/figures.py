"""``rankbench figures``: the paper's figures from run directories (PNG + PDF + CSV each)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rankbench.cli import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, CLIError

DEFAULT_OUT = Path("figures")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "figures", help="draw the paper's figures from run directories",
        description="For each run directory: training curves; rank agreement and one-shot accuracy by "
                    "the space's column (S4: active paths) from the run's report; cosine similarity of "
                    "path features (S4) and shadow-BN statistics (shadow-BN variants) from its trained "
                    "supernet. With several runs also the comparisons, which refuse to pool runs of "
                    "different configs or scoring setups unless --allow-mixed. Each figure is written as "
                    "PNG and PDF with the CSV of its numbers; per-run figures go to OUT/<run name>/ "
                    "(report figures to OUT/<run name>/<report>/).")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run directories (runs/<variant>-<preset>-<space>-seed<S>-<id>)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--cell", type=int, default=None,
                   help="cell index (0-based) of the cosine and SBN figures (default 0)")
    p.add_argument("--images", type=int, default=None,
                   help="training images in the cosine figure's fixed batch (default 64)")
    p.add_argument("--report", default=None, metavar="NAME",
                   help="which report of each run to draw (a name or a unique prefix, e.g. paper-calib; "
                        "default: each run's only report)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="draw runs of different configs or scoring setups as separately labelled groups "
                        "(default: refuse, listing how they differ)")
    p.set_defaults(func=run_figures_cmd)


def run_figures_cmd(args: argparse.Namespace) -> int:
    from rankbench.figures import COSINE_IMAGES, check_run_dir, make_figures

    for d in args.run_dirs:
        try:
            check_run_dir(d)
        except FileNotFoundError as e:  # missing: not found; a folder that is no run: invalid input
            raise CLIError(str(e), code=EXIT_INVALID if d.is_dir() else EXIT_NOT_FOUND) from None
    if args.cell is not None and args.cell < 0:
        raise CLIError(f"--cell must be >= 0, got {args.cell}")
    images = COSINE_IMAGES if args.images is None else args.images
    if images < 1:
        raise CLIError(f"--images must be >= 1, got {images}")

    def log(msg: str) -> None:
        print(f"note: {msg}", file=sys.stderr)

    paths = make_figures(args.run_dirs, args.out, args.cell, report=args.report, allow_mixed=args.allow_mixed,
                         images=images, log=log)
    for p in paths:
        print(p)
    return EXIT_OK
