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
                   help="run directories (runs/<variant>-<preset>-<space>-seed<S>-<id>); a glob such as runs/* "
                        "works: folders that are no run (summaries, ablation tables) are skipped with a note")
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
    p.add_argument("--per-run", action="store_true",
                   help="with several runs, also each run's own figures into OUT/<run name>/ (default: only the "
                        "comparisons; a single run always gets its own)")
    p.set_defaults(func=run_figures_cmd)


def run_dirs_of(paths: list[Path], note) -> list[Path]:
    """The run directories among ``paths`` (a shell glob such as ``runs/*`` also names summary
    and ablation folders, which are no runs: each is skipped with a ``note``). A path that does
    not exist is an error (exit 3); none left is an error (exit 2) saying why."""
    from rankbench.figures import check_run_dir
    from rankbench.rundir import RunDir

    missing = [str(d) for d in paths if not d.exists()]
    if missing:
        raise CLIError(f"no such run directory: {', '.join(missing)}", EXIT_NOT_FOUND)
    runs, skipped = [], []
    for d in paths:
        if d.is_dir() and RunDir(d).exists():
            runs.append(d)
        else:
            skipped.append(d)
    if not runs:  # say why the (first) one is no run
        try:
            check_run_dir(skipped[0])
        except FileNotFoundError as e:
            raise CLIError(str(e), code=EXIT_INVALID) from None
    for d in skipped:
        note(f"skipped {d}: not a run directory (no {RunDir.CONFIG})")
    return runs


def run_figures_cmd(args: argparse.Namespace) -> int:
    from rankbench.figures import COSINE_IMAGES, make_figures
    from rankbench.rundir import check_writable

    def log(msg: str) -> None:
        print(f"note: {msg}", file=sys.stderr)

    run_dirs = run_dirs_of(args.run_dirs, log)
    check_writable(args.out, "--out")  # before any figure is drawn
    if args.cell is not None and args.cell < 0:
        raise CLIError(f"--cell must be >= 0, got {args.cell}")
    images = COSINE_IMAGES if args.images is None else args.images
    if images < 1:
        raise CLIError(f"--images must be >= 1, got {images}")
    paths = make_figures(run_dirs, args.out, args.cell, report=args.report, allow_mixed=args.allow_mixed,
                         images=images, per_run=True if args.per_run else None, log=log)
    for p in paths:
        print(p)
    return EXIT_OK
