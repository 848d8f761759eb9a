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

ANALYSIS_DIR = Path(__file__).resolve().parent


def parser(doc: str, variants: tuple[str, ...] | None = None, cell: bool = False) -> argparse.ArgumentParser:
    """The options every recipe takes (``--runs-root``, ``--preset``, ``--out``, ``--device``,
    ``--set``), plus ``--variants`` and ``--cell`` where they apply."""
    first = doc.strip().splitlines()[0]
    p = argparse.ArgumentParser(description=first, epilog=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-root", type=Path, default=None,
                   help="where run directories are found and trained (default $RANKBENCH_RUNS or ./runs)")
    p.add_argument("--preset", default="quick", help="preset name or .toml path (default quick)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default analysis/out/<preset>/)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (train.device)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field (repeatable), e.g. --set train.epochs=5")
    if variants is not None:
        p.add_argument("--variants", nargs="+", default=list(variants),
                       help=f"supernet variants (default: {' '.join(variants)})")
    if cell:
        p.add_argument("--cells", type=int, nargs="+", default=None,
                       help="cells (0-based) of the per-cell figures (default: every cell)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config(args: argparse.Namespace, variant: str | None = None):
    """The preset, then ``variant`` and ``--device``, then ``--set`` overrides."""
    from rankbench.config import apply_overrides, load_preset

    cfg = load_preset(args.preset)
    named = {"model.variant": variant, "train.device": args.device}
    cfg = apply_overrides(cfg, {k: v for k, v in named.items() if v is not None})
    return apply_overrides(cfg, args.overrides)


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


def scored_run(args: argparse.Namespace, variant: str) -> Path:
    """The run directory of ``variant`` with scores.csv and metrics.json (``rankbench run
    --calibrate``): trains and scores what is missing, reuses the rest."""
    from rankbench.pipeline import run

    results, _ = run(config(args, variant), calibrate=True, seeds=1, runs_root=args.runs_root,
                     progress=not args.no_progress, echo=None)
    return Path(results[0].run_dir)


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
