"""``rankbench run`` (one variant's ranking), ``rankbench ablation`` (the paper's table) and
``rankbench truth`` (measure a ground truth by training every hash class from scratch).

The default preset is ``quick``: it runs end to end on the bundled data (5,000 CIFAR-10
images) and its bundled measured truth, in minutes on a CPU. ``--preset paper`` is the
paper's scale and needs full CIFAR-10 and the NB101 store (``rankbench data ...``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rankbench.cli import EXIT_INTERRUPTED, EXIT_OK, CLIError
from rankbench.cli._config import add_config_options, config_from_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="train (or reuse) a supernet, score every candidate, measure the ranking",
        description="For each seed: train the supernet (a finished run is reused), score the candidates "
                    "without and (--calibrate) with BN calibration, join the ground truth, and write "
                    "scores.csv and metrics.json into the run directory. With several seeds, a summary "
                    "(mean ± std) goes to runs/summary-.../.")
    p.add_argument("--variant", help="supernet variant (rankbench list variants); default: the preset's")
    p.add_argument("--calibrate", action="store_true", help="also score with BN post-calibration")
    _ranking_options(p)
    p.set_defaults(func=cmd_run)

    a = subparsers.add_parser(
        "ablation", help="every variant with and without BN calibration: the paper's ablation table",
        description="Run every variant (reusing finished runs and cached scores) with and without BN "
                    "calibration and write one table (CSV and Markdown) to runs/ablation-<preset>/.")
    a.add_argument("--variants", nargs="+", default=None,
                   help="variants to compare (default: bn lsbn esbn scale spos)")
    _ranking_options(a)
    a.set_defaults(func=cmd_ablation)

    t = subparsers.add_parser(
        "truth", help="measure a ground truth: train every hash class of the space from scratch",
        description="Train the stand-alone NB101 network of every hash class of the space (the preset's "
                    "network size, truth.train_epochs epochs, truth.seeds seeds) and write one row per "
                    "(hash, seed) to a CSV, with a JSON provenance sidecar. Resumable: a rerun skips "
                    "finished trainings and continues an interrupted one.")
    t.add_argument("--space", default=None, help="search space (default: the preset's, s4)")
    t.add_argument("--seeds", type=int, help="trainings per hash class (default: truth.seeds)")
    t.add_argument("--out", type=Path,
                   help="CSV to write (default: the repo's data/truth-<preset>.csv, used by truth.source=measured)")
    t.add_argument("--work-dir", type=Path, help="where unfinished trainings keep checkpoints "
                                                  "(default runs/truth-work/<preset>-<fingerprint>)")
    t.add_argument("--keep-runs", action="store_true", help="keep each training's run directory")
    t.add_argument("--shard", metavar="K/N", help="only hash classes whose index %% N == K, to split the "
                                                  "work over processes or machines (give each its own --out; "
                                                  "concatenate the CSVs afterwards)")
    add_config_options(t)
    t.set_defaults(func=cmd_truth)


def _ranking_options(p: argparse.ArgumentParser) -> None:
    """What run and ablation share: --seeds, --protocol, --runs-root and the config options."""
    from rankbench.scoring import list_protocols

    p.add_argument("--seeds", type=int, default=1,
                   help="training seeds (train.seed + i) per variant; default 1")
    p.add_argument("--protocol", choices=list_protocols(),
                   help="clean (default): distinct subnets, fresh calibration statistics on training data, "
                        "held-out validation, mean truth; paper: the public MixPath code's protocol")
    p.add_argument("--runs-root", type=Path, help="where run directories go (default $RANKBENCH_RUNS or ./runs)")
    add_config_options(p)


def _config(args: argparse.Namespace, **named):
    cfg = config_from_args(args, named)
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    return cfg


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
    from rankbench.pipeline import run

    cfg = _config(args, **{"model.variant": args.variant, "score.protocol": args.protocol})
    return _pipeline(args, cfg, lambda **kw: run(cfg, calibrate=args.calibrate, seeds=args.seeds,
                                                 runs_root=args.runs_root, **kw))


def cmd_ablation(args: argparse.Namespace) -> int:
    from rankbench.pipeline import ABLATION_VARIANTS, ablation

    cfg = _config(args, **{"score.protocol": args.protocol})
    return _pipeline(args, cfg, lambda **kw: ablation(cfg, args.variants or ABLATION_VARIANTS, seeds=args.seeds,
                                                      runs_root=args.runs_root, **kw))


def _pipeline(args: argparse.Namespace, cfg, job) -> int:
    """Run ``job(progress=..., echo=...)`` (under torchrun, rank 0 alone prints), timed,
    with its expected failures as clean errors."""
    from rankbench.train import TrainingDivergedError
    from rankbench.truth import TruthCoverageError

    main = _init_distributed(cfg)
    t0 = time.perf_counter()
    try:
        job(progress=not args.no_progress and main, echo=print if main else None)
    except (TruthCoverageError, TrainingDivergedError) as e:
        raise CLIError(str(e)) from None
    except KeyboardInterrupt:
        return _interrupted()
    if main:
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_truth(args: argparse.Namespace) -> int:
    from rankbench.spaces import create_space
    from rankbench.truth import measure_truth, measured_truth_path

    from rankbench.distributed import env_world_size

    if env_world_size() > 1:  # every rank would train and write the same CSV
        raise CLIError("rankbench truth does not run under torchrun: start it as one process "
                       "(the trainings are small; run several presets or spaces side by side instead)")
    cfg = _config(args, **{"model.space": args.space})
    if args.seeds is not None and args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    space = create_space(cfg.model.space, m=cfg.model.m)
    out = args.out or measured_truth_path(cfg.preset)
    n = len(space.hash_classes())
    seeds = args.seeds or cfg.truth.seeds
    epochs = cfg.truth.train_epochs or cfg.train.epochs
    print(f"measuring the truth of {n} hash classes of {space!r} x {seeds} seed(s), {epochs} epochs each "
          f"(network: width {cfg.model.width}, {cfg.model.stacks} stacks x {cfg.model.cells_per_stack} cells) "
          f"-> {out}")
    t0 = time.perf_counter()
    try:
        truth = measure_truth(space, cfg, out, seeds=seeds, progress=not args.no_progress,
                              work_dir=args.work_dir, keep_runs=args.keep_runs,
                              shard=_shard(args.shard))
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
