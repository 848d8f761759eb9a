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

from rankbench.cli import EXIT_FAIL, EXIT_OK, CLIError, interrupted_code
from rankbench.cli._config import add_config_options, add_tensorboard_option, config_from_args, print_dry_run
from rankbench.launch._cli import add_launcher_options, dry_run_jobs, launcher_from_args, train_runs_first

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
    add_launcher_options(t, truth=True)
    t.set_defaults(func=cmd_truth)


def _ranking_options(p: argparse.ArgumentParser) -> None:
    """What run and ablation share: --seed, --seeds, --epochs, --protocol, --runs-root and the
    config options."""
    p.add_argument("--seed", type=int, help="the (first) training seed (train.seed); default: the preset's")
    p.add_argument("--seeds", type=int, default=1,
                   help="how many training seeds: --seed, --seed + 1, ... (a count; default 1)")
    p.add_argument("--epochs", type=int, help="training epochs (train.epochs); default: the preset's")
    p.add_argument("--protocol", metavar="NAME",
                   help="scoring protocol (score.protocol; rankbench list protocols). clean (default): "
                        "distinct subnets, fresh calibration statistics on training data, held-out validation, "
                        "mean truth; paper: the public MixPath code's protocol")
    p.add_argument("--runs-root", type=Path, help="where run directories go (default $RANKBENCH_RUNS or ./runs)")
    add_config_options(p)
    add_launcher_options(p)


def _config(args: argparse.Namespace, **named):
    """The validated config; the command's own counts checked too: nothing is created yet."""
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    named.setdefault("train.seed", getattr(args, "seed", None))
    named.setdefault("train.epochs", getattr(args, "epochs", None))
    return config_from_args(args, named)


def _resolve(cfg, seeds: int, runs_root, *, dry_run: bool):
    """The run's plan (:func:`rankbench.plan.resolve`): the config was validated already; the
    truth loaded and its coverage checked (a dry run records a truth that cannot rank instead
    of failing on it)."""
    from rankbench.plan import resolve

    return resolve(cfg, seeds, runs_root, validate=False, truth="record" if dry_run else "require")


def _init_distributed(cfg) -> bool:
    """Under torchrun, join the process group (training with DDP, scoring sharded; see
    rankbench.distributed); returns whether this process is the one that prints."""
    from rankbench import distributed

    distributed.init_from_env(cfg.train.device)
    return distributed.is_main()


def _interrupted(e: BaseException | None = None) -> int:
    print("rankbench: interrupted; finished trainings and scores are saved: rerun the same command to continue",
          file=sys.stderr)
    return interrupted_code(e)


# -- the plan: what a run would reuse, write and rank against (checked before anything runs) -----
def _truth_text(plan) -> str:
    """The truth a run will use, with its real repeats (not ``truth.seeds``, which is what
    ``rankbench truth`` would measure)."""
    from rankbench._paths import display_path
    from rankbench.truth import truth_source

    truth, cfg, cov = plan.require_truth(), plan.cfg, plan.coverage.to_dict()
    d = truth.describe()
    reps = {int(k): int(v) for k, v in (d.get("repeats_per_class") or {}).items()}
    if len(reps) == 1:
        (n, c), = reps.items()
        what = f"{c} hash classes x {n} repeat{'s' if n != 1 else ''}"
    else:
        what = f"{d.get('classes')} hash classes (" + ", ".join(
            f"{c} with {n} repeat{'s' if n != 1 else ''}" for n, c in sorted(reps.items())) + ")"
    seeds = d.get("seeds") or []
    if seeds:
        what += f", training seeds {seeds[0]}..{seeds[-1]}" if len(seeds) > 1 else f", training seed {seeds[0]}"
    text = (f"{truth.source} {display_path(truth.location)}: {what}; {d.get('metric')}, reduce={cfg.truth.reduce}; "
            f"covers {cov['covered']}/{cov['candidates']} candidates")
    if truth_source(cfg).measured_here and reps and cfg.truth.seeds != max(reps):
        text += (f"\n(truth.seeds = {cfg.truth.seeds} below is what `rankbench truth` would measure; the truth "
                 f"used holds {max(reps)} repeats per class)")
    for x in getattr(plan, "also", ()):  # truth.also: every report ranks against these too
        text += (f"\nalso ranked against ({x.key}): {x.truth.source} {display_path(x.truth.location)}, covers "
                 f"{x.coverage.covered}/{x.coverage.candidates} candidates ({x.coverage.classes_covered}/"
                 f"{x.coverage.classes} hash classes)")
    return text


def _plan_text(plan) -> str:
    """What the plan scores and where it trains: protocol, candidates, hash classes, device type."""
    classes = len(set(plan.hashes))
    return (f"protocol {plan.protocol.name}; {len(plan.candidates)} candidates in {classes} hash classes of "
            f"{plan.space.tag}; trains on {plan.device_type} (training fingerprint "
            + ", ".join(r.training_fingerprint for r in plan.runs) + ")")


def _state_text(state, cfg, report: str | None = None) -> str:
    """What a run of ``cfg`` would do with the run directory ``state`` describes (and its report)."""
    if state.status == "new":
        text = f"new: trains {cfg.train.epochs} epochs"
    elif state.status == "finished":
        text = f"exists, finished ({state.epochs_done} epochs): reused, not trained again"
    else:
        text = f"exists, unfinished ({state.epochs}): training resumes from its checkpoint"
        if state.status == "training":
            text += (f" (its files changed {time.time() - state.last_activity:.0f} s ago: another process may "
                     f"still be training it)")
    if report is not None:
        from rankbench.rundir import RunDir

        exists = (RunDir(state.path).report_dir(report) / RunDir.REPORT_METRICS).exists()
        text += f"\nreport: reports/{report} " + ("(exists: rewritten)" if exists else "(new)")
    return text


def _not_writable(problem: str, run_dir: Path, runs_root_arg) -> CLIError:
    from rankbench.rundir import runs_root, runs_root_source

    if run_dir.exists():
        return CLIError(f"run directory {run_dir}: {problem}; make it writable (chmod -R u+w {run_dir}) or copy it "
                        f"to a writable folder and pass that as --runs-root")
    src = runs_root_source(runs_root_arg)
    fix = (f"point {src} at a folder" if "is a file" in problem
           else f"make it writable (chmod u+w) or point {src} at a writable folder")
    return CLIError(f"runs root {runs_root(runs_root_arg)} ({src}): {problem}; {fix}")


def _check_run_dirs(planned, runs_root_arg, report: str | None) -> list:
    """For each planned run directory: None when it can be written, else (read-only) the stored
    report to show instead, where the run is finished and that report exists; anything else
    that cannot be written is a clear error (exit 2) before anything runs."""
    from rankbench.cli.runs import run_state
    from rankbench.rundir import RunDir, write_problem

    out: list[Path | None] = []
    for _eff, d in planned:
        problem = write_problem(d)
        if problem is None:
            out.append(None)
            continue
        stored = RunDir(d).report_dir(report) if report is not None else None
        if (stored is not None and run_state(d, with_reports=False).status == "finished"
                and (stored / RunDir.REPORT_METRICS).exists()):
            out.append(stored)
        else:
            raise _not_writable(problem, Path(d), runs_root_arg)
    if any(s is not None for s in out) and not all(s is not None for s in out):
        ro = next(d for (_e, d), s in zip(planned, out) if s is not None)
        raise CLIError(f"run directory {ro} is read-only, and this command also trains or scores other seeds "
                       f"and then rewrites every report; make it writable (chmod -R u+w {ro}) or run the seeds "
                       f"apart (--seed S)")
    return out


def _show_stored(stored: list[Path], planned) -> int:
    """Re-summarise read-only finished runs from their stored reports: nothing is written."""
    from rankbench.pipeline import RunResult
    from rankbench.summaries import format_seed_table, format_summary, summarize_seeds
    from rankbench.reports import load_report

    results = []
    for (eff, d), rep_dir in zip(planned, stored):
        rep = load_report(rep_dir)
        print(f"run directory: {d} (read-only: its stored report is shown; nothing is written)")
        res = RunResult(cfg=eff, run_dir=Path(d), scores=None, metrics=rep.metrics, report_dir=rep_dir)
        results.append(res)
        print(format_summary(res))
        print("")
    if len(results) > 1:
        print(f"over {len(results)} seeds (mean ± std; not written: the runs are read-only)")
        print(format_seed_table(summarize_seeds(results), len(results)))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from rankbench.cli.runs import run_state

    cfg = _config(args, **{"model.variant": args.variant, "score.protocol": args.protocol})
    launcher = launcher_from_args(args)
    plan = _resolve(cfg, args.seeds, args.runs_root, dry_run=args.dry_run)  # a truth that cannot rank fails here
    planned = plan.planned
    report = plan.report_name(args.calibrate) if plan.truth is not None else None
    stored = _check_run_dirs(planned, args.runs_root, report)
    if args.seeds > 1 and not all(stored):  # the summary over seeds goes under the runs root
        from rankbench.rundir import write_problem

        problem = write_problem(planned[0][1].parent)
        if problem:
            raise _not_writable(problem, planned[0][1].parent / "summary", args.runs_root)
    if args.dry_run:
        where: list[tuple[str, object]] = []
        for (eff, d), st in zip(planned, stored):
            text = f"{d}\n" + _state_text(run_state(d, with_reports=False), eff, report)
            if st is not None:
                text += "\nread-only: its stored report would be shown; nothing would be written"
            where.append(("run directory", text))
        where += dry_run_jobs(planned, launcher)
        where.append(("plan", _plan_text(plan)))
        where += [("truth", _truth_text(plan) if plan.truth is not None else
                   f"cannot be used, a run would stop here (exit 2):\n{plan.truth_problem}"),
                  ("config", "effective (protocol applied), as written into the run directory")]
        return print_dry_run(planned[0][0], where)
    if all(stored):
        return _show_stored(stored, planned)
    from rankbench.pipeline import run

    def job(main: bool, **kw):
        if main:  # first, before any training; each seed's summary then names its report
            for _, d in planned:
                print(f"run directory: {d}")
        train_runs_first(cfg, planned, launcher, runs_root=args.runs_root, echo=kw.get("echo"))
        run(cfg, calibrate=args.calibrate, seeds=args.seeds, runs_root=args.runs_root, plan=plan, **kw)

    return _pipeline(args, cfg, job)


def cmd_ablation(args: argparse.Namespace) -> int:
    from rankbench.cli.runs import run_state
    from rankbench.config import ConfigError
    from rankbench.plan import validate_config
    from rankbench.rundir import write_problem
    from rankbench.supernet import list_variants

    cfg = _config(args, **{"score.protocol": args.protocol})
    variants = list(args.variants or list_variants(space=cfg.space.name))
    for v in variants:  # every row's config is valid before the first is trained
        try:
            validate_config(_with_variant(cfg, v), device_check=False)
        except ConfigError as e:
            raise CLIError(f"--variants {v}: {e}") from None
    launcher = launcher_from_args(args)
    from rankbench.ablation import ablation_dir

    base = _resolve(_with_variant(cfg, variants[0]), args.seeds, args.runs_root, dry_run=False)
    table_dir = ablation_dir(base)
    planned = {v: base.with_variant(v).planned for v in variants}
    for v in variants:  # every run is (re)scored and its report rewritten: all must be writable
        for _, d in planned[v]:
            problem = write_problem(d)
            if problem:
                raise _not_writable(problem, Path(d), args.runs_root)
    problem = write_problem(table_dir)
    if problem:
        raise _not_writable(problem, table_dir, args.runs_root)
    if args.dry_run:
        where: list[tuple[str, object]] = [
            (f"run directory ({v})", f"{d}\n" + _state_text(run_state(d, with_reports=False), eff))
            for v in variants for eff, d in planned[v]]
        where += dry_run_jobs([pr for v in variants for pr in planned[v]], launcher)
        where.append(("ablation table", table_dir))
        return print_dry_run(cfg, where)
    from rankbench.ablation import ablation

    def job(main: bool, **kw):
        ablation(cfg, variants, seeds=args.seeds, runs_root=args.runs_root, launcher=launcher, plan=base, **kw)

    return _pipeline(args, cfg, job)


def _with_variant(cfg, variant: str):
    from dataclasses import replace

    return replace(cfg, model=replace(cfg.model, variant=variant))


def _pipeline(args: argparse.Namespace, cfg, job) -> int:
    """Run ``job(main, progress=..., echo=...)`` (under torchrun, rank 0 alone prints), timed,
    with its expected failures as clean errors."""
    from rankbench.launch import JobsFailedError
    from rankbench.train import TrainingDivergedError
    from rankbench.truth import TruthCoverageError

    main = _init_distributed(cfg)
    t0 = time.perf_counter()
    try:
        job(main, progress=not args.no_progress and main, echo=print if main else None)
    except (TruthCoverageError, TrainingDivergedError) as e:
        raise CLIError(str(e)) from None
    except JobsFailedError as e:  # which runs are missing, each failed job's log
        raise CLIError(str(e), code=EXIT_FAIL) from None
    except KeyboardInterrupt as e:
        return _interrupted(e)
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


def _check_truth_folders(args: argparse.Namespace, out: Path) -> None:
    """The truth CSV's folder and the work directory can be written (exit 2 before any training)."""
    from rankbench.rundir import check_writable, runs_root, runs_root_source

    check_writable(out.parent, "--out" if args.out is not None else "the truth's folder ($RANKBENCH_HOME)")
    if args.work_dir is not None:
        check_writable(args.work_dir, "--work-dir")
    else:
        src = runs_root_source(None)
        check_writable(runs_root() / "truth-work", f"the work directory (under {src})",
                       f"point {src} at a writable folder, or give --work-dir")


def cmd_truth(args: argparse.Namespace) -> int:
    from rankbench.distributed import env_world_size

    if env_world_size() > 1:  # every rank would train and write the same CSV
        raise CLIError("rankbench truth does not run under torchrun: start it as one process "
                       "(the trainings are small; run several presets or spaces side by side instead)")
    cfg = _config(args)
    shard = _shard(args.shard)
    out = _truth_out(args, cfg.preset)
    _check_truth_folders(args, out)
    launcher = launcher_from_args(args)
    if args.dry_run:
        from rankbench.rundir import runs_root

        work = args.work_dir or f"{runs_root() / 'truth-work'}/{cfg.preset}-<fingerprint>"
        where = [("truth CSV", out), ("work directory", work)]
        if launcher is not None:
            from rankbench.launch.truth import truth_dry_run_lines
            from rankbench.spaces import space_from_config

            where += truth_dry_run_lines(space_from_config(cfg), cfg, out, launcher, shards=args.shards,
                                         seeds=args.seeds or cfg.truth.seeds, work_dir=args.work_dir)
        return print_dry_run(cfg, where)
    from rankbench.launch import JobsFailedError
    from rankbench.spaces import space_from_config
    from rankbench.truth import measure_truth, measured_classes

    space = space_from_config(cfg)
    n = len(measured_classes(space, cfg))
    seeds = args.seeds or cfg.truth.seeds
    epochs = cfg.truth.train_epochs or cfg.train.epochs
    print(f"truth CSV: {out}")
    print(f"measuring the truth of {n} hash classes of {space!r} x {seeds} seed(s), {epochs} epochs each "
          f"(network: width {cfg.model.width}, {cfg.model.stacks} stacks x {cfg.model.cells_per_stack} cells)")
    t0 = time.perf_counter()
    try:
        if launcher is not None:  # one job per shard, merged here into the CSV a single process writes
            from rankbench.launch.truth import measure_truth_launched

            truth = measure_truth_launched(space, cfg, out, launcher, seeds=seeds, shards=args.shards,
                                           work_dir=args.work_dir, keep_runs=args.keep_runs)
        else:
            truth = measure_truth(space, cfg, out, seeds=seeds, progress=not args.no_progress,
                                  work_dir=args.work_dir, keep_runs=args.keep_runs, shard=shard)
    except JobsFailedError as e:  # which shards are missing, each failed job's log
        raise CLIError(str(e), code=EXIT_FAIL) from None
    except KeyboardInterrupt as e:
        print(f"rankbench: interrupted; finished trainings are in {out}: rerun the same command to continue",
              file=sys.stderr)
        return interrupted_code(e)
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
