"""``rankbench train``: train (or resume, or reuse) a supernet; ``rankbench list``: registries."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rankbench.cli import EXIT_FAIL, EXIT_OK, CLIError, interrupted_code
from rankbench.cli._config import add_config_options, add_tensorboard_option, config_from_args, print_dry_run


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a supernet (resumable; a finished run is reused)",
        description="Train a one-shot supernet into a run directory (runs/<variant>-<preset>-<space>-seed<S>-"
                    "<fingerprint>/ unless --out is given). A run with the same training config that "
                    "already finished is reused; an interrupted one continues with --resume. Under "
                    "torchrun (torchrun --nproc_per_node N -m rankbench train ...) it trains with "
                    "DistributedDataParallel; data.batch_size is then the global batch.")
    p.add_argument("--variant", help="supernet variant (rankbench list variants); default: the preset's "
                                     "model.variant, else lsbn")
    p.add_argument("--seed", type=int, help="training seed (train.seed)")
    p.add_argument("--epochs", type=int, help="training epochs (train.epochs)")
    p.add_argument("--out", type=Path, help="run directory (default: named after the config under --runs-root)")
    p.add_argument("--runs-root", type=Path, help="where run directories go (default $RANKBENCH_RUNS or ./runs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    add_config_options(p)
    add_tensorboard_option(p)
    p.set_defaults(func=run_train)

    lp = subparsers.add_parser("list", help="list what a registry holds: variants, spaces, protocols, presets, "
                                            "references, samplers, truths, figures",
                               description="List what the registries hold.")
    lp.add_argument("what", choices=LISTS)
    lp.set_defaults(func=run_list)


def build_config(args: argparse.Namespace):
    """Preset, then the named options, then --set overrides; validated."""
    return config_from_args(args, {"model.variant": args.variant, "train.seed": args.seed,
                                   "train.epochs": args.epochs})


def run_train(args: argparse.Namespace) -> int:
    from rankbench import distributed, rundir
    from rankbench.train import CHECKPOINT, DONE, LOG, TrainingDivergedError, train_supernet

    from rankbench.cli.runs import run_state

    cfg = build_config(args)  # validated: a bad value exits here, before anything is created
    run_dir = args.out if args.out is not None else rundir.run_dir_for(cfg, args.runs_root)
    state = run_state(run_dir, with_reports=False)
    _check_can_train(args, run_dir, state)
    if args.dry_run:
        return print_dry_run(cfg, [("run directory", run_dir), ("run", _state_line(state, cfg, args.resume))])
    distributed.init_from_env(cfg.train.device)  # under torchrun: join the process group
    if not distributed.is_main():
        return _run_train_quiet(cfg, args)
    progress = not args.no_progress
    reused = rundir.is_finished(run_dir)
    print(f"run directory: {run_dir}" + (f" ({distributed.describe()})" if distributed.is_distributed() else ""))
    try:
        # a reused run says so once, below (train_supernet would announce it too)
        train_supernet(cfg, run_dir, resume=args.resume, progress=progress and not reused)
    except TrainingDivergedError as e:
        raise CLIError(str(e), code=EXIT_FAIL) from None
    except KeyboardInterrupt as e:
        where = (f"checkpoint: {run_dir / CHECKPOINT}" if (run_dir / CHECKPOINT).exists()
                 else "no checkpoint was written yet")
        print(f"rankbench: training interrupted; {where}\n"
              f"continue: rerun the same command with --resume", file=sys.stderr)
        return interrupted_code(e)
    done = json.loads((run_dir / DONE).read_text())
    if reused:
        print(f"reused: this training already finished (same training config); delete {run_dir} to train again")
    space = " ".join([cfg.space.name] + [f"{k}={v}" for k, v in cfg.space.settings().items()])  # any space
    print(f"variant {cfg.model.variant}, preset {cfg.preset}, space {space}, seed {cfg.train.seed}: "
          f"{done['epochs']} epochs in {done['wall_s']:.1f} s on {done['device']}")
    print(f"final train loss {done['train_loss']:.4f}, train accuracy {done['train_acc']:.4f}, "
          f"{done['images_per_s']:.0f} images/s, {done['epoch_s']:.1f} s/epoch")
    print(f"weights: {run_dir / 'supernet.pt'}; log: {run_dir / LOG}")
    return EXIT_OK


def _run_train_quiet(cfg, args: argparse.Namespace) -> int:
    """A rank other than 0: train alongside rank 0, print nothing."""
    from rankbench import rundir
    from rankbench.train import TrainingDivergedError, train_supernet

    run_dir = args.out if args.out is not None else rundir.run_dir_for(cfg, args.runs_root)
    try:
        train_supernet(cfg, run_dir, resume=args.resume, progress=False)
    except TrainingDivergedError:
        return EXIT_FAIL
    except KeyboardInterrupt as e:
        return interrupted_code(e)
    return EXIT_OK


def _check_can_train(args: argparse.Namespace, run_dir: Path, state) -> None:
    """Before anything is created: an interrupted run needs --resume (the hint names the
    option, not the Python API), and a run that will be written must be writable. A finished
    run is only read (reused), so a read-only one is fine."""
    from rankbench.rundir import runs_root, runs_root_source, write_problem

    if state.status in ("interrupted", "training") and not args.resume:
        raise CLIError(f"{run_dir} holds an interrupted training ({state.epochs} epochs); continue it: rerun "
                       f"the same command with --resume (or delete that directory to start again)")
    if state.status == "finished":
        return
    problem = write_problem(run_dir)
    if problem is None:
        return
    if args.out is not None:
        what, fix = f"--out {run_dir}", "give a writable folder"
    elif run_dir.exists():
        what, fix = f"run directory {run_dir}", f"make it writable (chmod -R u+w {run_dir})"
    else:
        src = runs_root_source(args.runs_root)
        what = f"runs root {runs_root(args.runs_root)} ({src})"
        fix = f"point {src} at a {'folder' if 'is a file' in problem else 'writable folder'}"
    raise CLIError(f"{what}: {problem}; {fix}")


def _state_line(state, cfg, resume: bool) -> str:
    if state.status == "new":
        return f"new: trains {cfg.train.epochs} epochs"
    if state.status == "finished":
        return f"exists, finished ({state.epochs_done} epochs): reused, not trained again"
    then = "resumed from its checkpoint" if resume else "needs --resume"
    return f"exists, unfinished ({state.epochs} epochs): {then}"


#: what ``rankbench list`` shows: one registry each
LISTS = ("variants", "spaces", "protocols", "presets", "references", "samplers", "truths", "figures")


def run_list(args: argparse.Namespace) -> int:
    if args.what == "references":
        from rankbench.references import REFERENCES

        _print_table({n: f"[{r.label}] {r.doc}" + (f" (needs: {r.needs})" if r.needs else "")
                      for n in REFERENCES.names() for r in [REFERENCES.get(n)]})
    elif args.what == "samplers":
        from rankbench.training.samplers import SAMPLERS

        _print_table(SAMPLERS.describe())
    elif args.what == "truths":
        from rankbench.truth import TRUTHS

        _print_table(TRUTHS.describe())
    elif args.what == "figures":
        from rankbench.figures import get_figure, list_figures

        _print_table({n: f"[{get_figure(n).scope}] {get_figure(n).doc}" for n in list_figures()})
    elif args.what == "variants":
        from rankbench.supernet import list_variants, variant_info

        _print_table({v: f"[{', '.join(variant_info(v).spaces)}] {variant_info(v).description}"
                      for v in list_variants()})
    elif args.what == "spaces":
        from rankbench.spaces import SPACES

        _print_table(SPACES.describe())
    elif args.what == "protocols":
        from rankbench.scoring.protocols import PROTOCOLS

        _print_table(PROTOCOLS.describe())
    else:
        from importlib import resources

        from rankbench.config import list_presets

        docs = {}
        for name in list_presets():
            text = (resources.files("rankbench.presets") / f"{name}.toml").read_text()
            docs[name] = _first_sentence(text)
        _print_table(docs)
    return EXIT_OK


def _print_table(rows: dict[str, str]) -> None:
    width = max((len(k) for k in rows), default=0)
    for name, doc in rows.items():
        print(f"{name:<{width}}  {doc}".rstrip())


def _first_sentence(toml_text: str) -> str:
    """The first sentence of a preset's leading comment block."""
    lines = []
    for ln in toml_text.splitlines():
        if not ln.startswith("#"):
            break
        lines.append(ln.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    return text[: end + 1] if end >= 0 else text
