"""``rankbench run`` (one variant's ranking), ``rankbench ablation`` (the paper's table) and
``rankbench truth`` (measure a ground truth by training every hash class from scratch).

The default preset is ``quick``: it runs end to end on the bundled data (4,000 CIFAR-10
training images) and its bundled measured truth, in minutes on a CPU. ``--preset paper`` is
the paper's scale and needs full CIFAR-10 and the NB101 store (``rankbench data ...``).

Every command resolves and validates its whole config before it prints or creates anything:
a bad value exits with code 2 and leaves no file behind.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rankbench.cli import EXIT_INTERRUPTED, EXIT_OK, CLIError
from rankbench.cli._config import add_config_options, add_tensorboard_option, config_from_args, print_dry_run

#: what the variant is when neither the preset nor an option names one (ModelConfig's default)
_VARIANT_HELP = ("supernet variant (rankbench list variants); default: the preset's model.variant, "
                 "else lsbn")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="train (or reuse) a supernet, score every candidate, measure the ranking",
        description="For each seed: train the supernet (a finished run is reused), score the candidates "
                    "without and (--calibrate) with BN calibration, join the ground truth, and write a "
                    "report (scores.csv and metrics.json) into the run directory. With several seeds, a "
                    "summary (mean ± std) goes to runs/summary-.../.")
    p.add_argument("--variant", help=_VARIANT_HELP)
    p.add_argument("--calibrate", action="store_true", help="also score with BN post-calibration")
    _ranking_options(p)
    add_tensorboard_option(p)
    p.set_defaults(func=cmd_run)

    a = subparsers.add_parser(
        "ablation", help="every variant with and without BN calibration: the paper's ablation table",
        description="Run every variant (reusing finished runs and cached scores) with and without BN "
                    "calibration and write one table (CSV and Markdown) under the runs root.")
    a.add_argument("--variants", nargs="+", default=None,
                   help="variants to compare (default: every variant the search space supports, "
                        "rankbench list variants)")
    _ranking_options(a)
    add_tensorboard_option(a)
    a.set_defaults(func=cmd_ablation)

    t = subparsers.add_parser(
        "truth", help="measure a ground truth: train every hash class of the space from scratch",
        description="Train the stand-alone NB101 network of every hash class of the space (the preset's "
                    "network size, truth.train_epochs epochs, truth.seeds seeds) and write one row per "
                    "(hash, seed) to a CSV, with a JSON provenance sidecar. Resumable: a rerun skips "
                    "finished trainings and continues an interrupted one.")
    t.add_argument("--seeds", type=int, help="trainings per hash class (default: truth.seeds)")
    t.add_argument("--out", type=Path,
                   help="CSV to write, or a folder to write truth-<preset>.csv into (default: "
                        "$RANKBENCH_HOME/truth-<preset>.csv, ~/.cache/rankbench/...; truth.source=measured "
                        "reads it from there)")
    t.add_argument("--work-dir", type=Path, help="where unfinished trainings keep checkpoints "
                                                  "(default $RANKBENCH_RUNS/truth-work/<preset>-<fingerprint>)")
    t.add_argument("--keep-runs", action="store_true", help="keep each training's run directory")
    t.add_argument("--shard", metavar="K/N", help="only hash classes whose index %% N == K, to split the "
                                                  "work over processes or machines (give each its own --out; "
                                                  "concatenate the CSVs afterwards)")
    add_config_options(t)
    t.set_defaults(func=cmd_truth)


def _ranking_options(p: argparse.ArgumentParser) -> None:
    """What run and ablation share: --seeds, --protocol, --runs-root and the config options."""
    p.add_argument("--seeds", type=int, default=1,
                   help="training seeds (train.seed + i) per variant; default 1")
    p.add_argument("--protocol", metavar="NAME",
                   help="scoring protocol (score.protocol; rankbench list protocols). clean (default): "
                        "distinct subnets, fresh calibration statistics on training data, held-out validation, "
                        "mean truth; paper: the public MixPath code's protocol")
    p.add_argument("--runs-root", type=Path, help="where run directories go (default $RANKBENCH_RUNS or ./runs)")
    add_config_options(p)


def _config(args: argparse.Namespace, **named):
    """The validated config; the command's own counts checked too: nothing is created yet."""
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    return config_from_args(args, named)


def _planned_runs(cfg, seeds: int, runs_root):
    """(effective config, run directory) of each seed, without creating anything."""
    from rankbench.pipeline import planned_run_dirs

    return planned_run_dirs(cfg, seeds, runs_root)


def _init_distributed(cfg) -> bool:
    """Under torchrun, join the process group (training with DDP, scoring sharded; see
    rankbench.distributed); returns whether this process is the one that prints."""
    from rankbench import distributed

    distributed.init_from_env(cfg.train.device)
    return distributed.is_main()


def _interrupted() -> int:
    print("rankbench: interrupted; finished trainings and scores are saved: rerun the same command to continue",
          file=sys.stderr)
    return EXIT_INTERRUPTED


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args, **{"model.variant": args.variant, "score.protocol": args.protocol})
    planned = _planned_runs(cfg, args.seeds, args.runs_root)
    if args.dry_run:
        return print_dry_run(planned[0][0], [("run directory", d) for _, d in planned]
                             + [("config", "effective (protocol applied), as written into the run directory")])
    from rankbench.pipeline import run

    def job(main: bool, **kw):
        if main:  # first, before any training; each seed's summary then names its report
            for _, d in planned:
                print(f"run directory: {d}")
        run(cfg, calibrate=args.calibrate, seeds=args.seeds, runs_root=args.runs_root, **kw)

    return _pipeline(args, cfg, job)


def cmd_ablation(args: argparse.Namespace) -> int:
    from rankbench.config import ConfigError, validate_config
    from rankbench.supernet import list_variants

    cfg = _config(args, **{"score.protocol": args.protocol})
    variants = list(args.variants or list_variants(space=cfg.space.name))
    for v in variants:  # every row's config is valid before the first is trained
        try:
            validate_config(_with_variant(cfg, v), device_check=False)
        except ConfigError as e:
            raise CLIError(f"--variants {v}: {e}") from None
    if args.dry_run:
        from rankbench.pipeline import ablation_dir

        where = [(f"run directory ({v})", d) for v in variants
                 for _, d in _planned_runs(_with_variant(cfg, v), args.seeds, args.runs_root)]
        where.append(("ablation table", ablation_dir(cfg, args.seeds, args.runs_root)))
        return print_dry_run(cfg, where)
    from rankbench.pipeline import ablation

    def job(main: bool, **kw):
        ablation(cfg, variants, seeds=args.seeds, runs_root=args.runs_root, **kw)

    return _pipeline(args, cfg, job)


def _with_variant(cfg, variant: str):
    from dataclasses import replace

    return replace(cfg, model=replace(cfg.model, variant=variant))


def _pipeline(args: argparse.Namespace, cfg, job) -> int:
    """Run ``job(main, progress=..., echo=...)`` (under torchrun, rank 0 alone prints), timed,
    with its expected failures as clean errors."""
    from rankbench.train import TrainingDivergedError
    from rankbench.truth import TruthCoverageError

    main = _init_distributed(cfg)
    t0 = time.perf_counter()
    try:
        job(main, progress=not args.no_progress and main, echo=print if main else None)
    except (TruthCoverageError, TrainingDivergedError) as e:
        raise CLIError(str(e)) from None
    except KeyboardInterrupt:
        return _interrupted()
    if main:
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def default_truth_out(preset: str) -> Path:
    """Where ``rankbench truth`` writes by default: ``$RANKBENCH_HOME/truth-<preset>.csv``
    (user data, never the installed package)."""
    from rankbench._paths import data_home

    return data_home() / f"truth-{preset}.csv"


def _truth_out(args: argparse.Namespace, preset: str) -> Path:
    """--out (a folder means truth-<preset>.csv inside it) or the default; checked, not created."""
    if args.out is None:
        return default_truth_out(preset)
    out = args.out.expanduser()
    if out.is_dir():
        return out / f"truth-{preset}.csv"
    if out.suffix.lower() != ".csv":
        raise CLIError(f"--out {args.out}: give a .csv file or an existing folder")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise CLIError(f"--out {args.out}: {parent} is a file, not a folder")
    return out


def cmd_truth(args: argparse.Namespace) -> int:
    from rankbench.distributed import env_world_size

    if env_world_size() > 1:  # every rank would train and write the same CSV
        raise CLIError("rankbench truth does not run under torchrun: start it as one process "
                       "(the trainings are small; run several presets or spaces side by side instead)")
    cfg = _config(args)
    shard = _shard(args.shard)
    out = _truth_out(args, cfg.preset)
    if args.dry_run:
        from rankbench.rundir import runs_root

        work = args.work_dir or f"{runs_root() / 'truth-work'}/{cfg.preset}-<fingerprint>"
        return print_dry_run(cfg, [("truth CSV", out), ("work directory", work)])
    from rankbench.spaces import space_from_config
    from rankbench.truth import measure_truth

    space = space_from_config(cfg)
    n = len(space.hash_classes())
    seeds = args.seeds or cfg.truth.seeds
    epochs = cfg.truth.train_epochs or cfg.train.epochs
    print(f"truth CSV: {out}")
    print(f"measuring the truth of {n} hash classes of {space!r} x {seeds} seed(s), {epochs} epochs each "
          f"(network: width {cfg.model.width}, {cfg.model.stacks} stacks x {cfg.model.cells_per_stack} cells)")
    t0 = time.perf_counter()
    try:
        truth = measure_truth(space, cfg, out, seeds=seeds, progress=not args.no_progress,
                              work_dir=args.work_dir, keep_runs=args.keep_runs, shard=shard)
    except KeyboardInterrupt:
        print(f"rankbench: interrupted; finished trainings are in {out}: rerun the same command to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    tab = truth.table
    print(f"{len(tab)} hash classes, {int(tab['n_repeats'].sum())} trainings; validation accuracy "
          f"{tab['truth'].min():.4f} .. {tab['truth'].max():.4f} (mean over seeds), mean spread between "
          f"seeds {tab['truth_std'].mean():.4f}")
    print(f"written: {out} (+ {Path(out).with_suffix('.json').name}); this session {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise CLIError(f"--shard {text!r}: use K/N with integers, e.g. 0/2") from None
    if not (n >= 1 and 0 <= k < n):
        raise CLIError(f"--shard {text!r}: need N >= 1 and 0 <= K < N")
    return k, n
