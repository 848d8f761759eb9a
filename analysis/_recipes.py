"""What every analysis recipe shares: options, configs, training / scoring what is missing
through the library (finished runs and cached scores are reused), and where outputs go.

Not a recipe itself; the scripts beside it import it (``python analysis/<recipe>.py``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

ANALYSIS_DIR = Path(__file__).resolve().parent


def parser(doc: str, variants: Callable[[str], list[str]] | None = None, cell: bool = False,
           variants_help: str = "") -> argparse.ArgumentParser:
    """The options every recipe takes (``--runs-root``, ``--preset``, ``--space``, ``--out``,
    ``--device``, ``--set``), plus ``--variants`` and ``--cell`` where they apply.
    ``variants(space) -> names``: the default variants, read from the variant registry once
    the space is known (see :func:`variants`)."""
    first = doc.strip().splitlines()[0]
    p = argparse.ArgumentParser(description=first, epilog=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-root", type=Path, default=None,
                   help="where run directories are found and trained (default $RANKBENCH_RUNS or ./runs)")
    p.add_argument("--preset", default="quick", help="preset name or .toml path (default quick)")
    p.add_argument("--space", default=None, help="search space (space.name; default: the preset's)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default analysis/out/<preset>/)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (train.device)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field (repeatable), e.g. --set train.epochs=5")
    if variants is not None:
        p.add_argument("--variants", nargs="+", default=None,
                       help=f"supernet variants (default: {variants_help or 'from the variant registry'})")
        p.set_defaults(default_variants=variants)
    if cell:
        p.add_argument("--cells", type=int, nargs="+", default=None,
                       help="cells (0-based) of the per-cell figures (default: every cell)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config(args: argparse.Namespace, variant: str | None = None):
    """The preset, then ``--space``, ``variant`` and ``--device``, then ``--set`` overrides."""
    from rankbench.config import apply_overrides, load_preset

    cfg = load_preset(args.preset)
    named = {"space.name": args.space, "model.variant": variant, "train.device": args.device}
    cfg = apply_overrides(cfg, {k: v for k, v in named.items() if v is not None})
    return apply_overrides(cfg, args.overrides)


def variants(args: argparse.Namespace) -> list[str]:
    """``--variants``, else the recipe's default for the config's space (from the registry)."""
    if args.variants:
        return list(args.variants)
    space = config(args).space.name
    names = args.default_variants(space)
    if not names:
        raise ValueError(f"no variant for this recipe supports search space {space!r}")
    return names


def out_dir(args: argparse.Namespace) -> Path:
    """``--out``, else ``analysis/out/<preset name>/`` (created)."""
    name = Path(args.preset).stem if args.preset.endswith(".toml") else args.preset
    d = args.out or ANALYSIS_DIR / "out" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def trained_run(args: argparse.Namespace, variant: str) -> Path:
    """The run directory of ``variant`` under the preset: reused when finished, continued when
    interrupted, trained otherwise."""
    from rankbench.train import train_supernet

    return Path(train_supernet(config(args, variant), runs_root=args.runs_root, resume=True,
                               progress=not args.no_progress))


def scored_report(args: argparse.Namespace, variant: str) -> Path:
    """The report directory (``<run dir>/reports/<name>/``: scores.csv, metrics.json) of
    ``variant`` scored with and without BN calibration (``rankbench run --calibrate``): trains
    and scores what is missing, reuses the rest."""
    from rankbench.pipeline import run

    results, _ = run(config(args, variant), calibrate=True, seeds=1, runs_root=args.runs_root,
                     progress=not args.no_progress, echo=None)
    return Path(results[0].report_dir)


def rank_agreement_figure(rep, path: Path) -> tuple[list[Path], "object"]:
    """The rank-agreement figure of one report (its title names the report), saved to
    ``path`` (.png/.pdf/.csv); returns (files written, the figure's table)."""
    from rankbench.figures._runs import group_column, load_scores, run_label, truth_label
    from rankbench.figures.ranking import compute_rank_agreement, plot_rank_agreement
    from rankbench.figures.style import save_figure

    scores = load_scores(rep.path)
    by = group_column(rep.config, scores)
    df = compute_rank_agreement(scores, by=by)
    fig = plot_rank_agreement(df, f"Rank agreement: {run_label(rep.config)}; report {rep.name}",
                              truth_label=truth_label(rep.config), by=by)
    return save_figure(fig, path, df), df


def copy_into(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def report(paths) -> None:
    """Print the files written, one per line (as ``rankbench figures`` does)."""
    for p in paths:
        rel = os.path.relpath(p)
        print(p if rel.startswith("..") else rel)


def main(fn) -> None:
    """Run a recipe's ``fn()``; library errors become one readable line and exit code 2."""
    try:
        fn()
    except KeyboardInterrupt:
        print("interrupted; finished trainings and scores are kept: rerun to continue", file=sys.stderr)
        sys.exit(130)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
