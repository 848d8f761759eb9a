"""Tau over training (``train.eval_every``): what it costs a quick-preset training, side by side.

Trains the preset's supernet twice in one process, into two temporary run directories: without
tau tracking, then with ``train.eval_every`` (default 5: four evaluations in the quick preset's
20 epochs) at the default subset size (``train.eval_candidates``), against the preset's truth.
Prints each training's wall-clock seconds (``train_supernet``; the data decoded beforehand), the
seconds of each tau evaluation, whether the trained weights are identical (they must be), the
rows written, and the evaluations' cost amortised over a whole training of the preset at
several ``eval_every`` (from the measured epoch and evaluation times).

    python bench/bench_tau_tracking.py                              # quick preset, 20 epochs
    python bench/bench_tau_tracking.py --epochs 2 --eval-every 2    # short: one evaluation
    python bench/bench_tau_tracking.py --epochs 2 --eval-every 2 --eval-images 200

Ends with ``ratio tau_tracking_overhead <with / without>`` (wall-clock of the two trainings; the
issue's target: <= 1.25).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import load_splits
from rankbench.numerics import setup_compute
from rankbench.train import resolve_device, train_supernet
from rankbench.training import tau_tracking
from rankbench.training.tau_table import TAU_CSV, read_tau_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--variant", default="lsbn")
    ap.add_argument("--epochs", type=int, default=0, help="0: the preset's")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--eval-candidates", type=int, default=0, help="0: the config's default")
    ap.add_argument("--eval-images", type=int, default=0, help="train.eval_images (0: score.eval_size, all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    args = ap.parse_args()

    preset_epochs = load_preset(args.preset).train.epochs
    args.epochs = args.epochs or preset_epochs
    over: dict[str, object] = {"model.variant": args.variant, "train.epochs": args.epochs, "train.device": args.device,
                               "train.checkpoint_interval_s": 0}
    if args.eval_candidates:
        over["train.eval_candidates"] = args.eval_candidates
    if args.eval_images:
        over["train.eval_images"] = args.eval_images
    for kv in args.set:
        k, _, v = kv.partition("=")
        over[k] = v
    base = apply_overrides(load_preset(args.preset), over)
    setup_compute(base.train, resolve_device(args.device))  # portable dispatch and threads, before any kernel
    load_splits(base.data, progress=False)  # decoded and cached before anything is timed
    print(f"preset {args.preset}, {args.variant}, {args.epochs} epochs on {args.device} "
          f"({torch.get_num_threads()} threads); eval_every {args.eval_every}, "
          f"eval_candidates {base.train.eval_candidates}, eval_images {base.train.eval_images or 'all'}")

    evals: list[float] = []
    real = tau_tracking.TauTracker.evaluate

    def timed(self, loop):  # the tracker's own seconds per evaluation
        out = real(self, loop)
        evals.append(self.eval_s[-1])
        return out

    tau_tracking.TauTracker.evaluate = timed  # type: ignore[method-assign]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for every in (0, args.eval_every):
            cfg = apply_overrides(base, {"train.eval_every": every})
            t0 = time.perf_counter()
            run_dir = train_supernet(cfg, runs_root=Path(tmp) / f"every{every}", progress=False)
            wall = time.perf_counter() - t0
            done = json.loads((run_dir / "train_done.json").read_text())
            results[every] = (wall, done["weights_digest"], done["wall_s"])
            print(f"eval_every {every}: {wall:.2f} s (training epochs {done['wall_s']:.2f} s), "
                  f"weights {done['weights_digest']}")
            if every:
                rows = read_tau_table(run_dir / TAU_CSV)
                for r in rows:
                    print(f"  epoch {r['epoch'] if r['epoch'] is not None else '-':>3} {r['setting']:<12} "
                          f"tau {r['kendall_tau']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]  n {r['n']}")
    off, on = results[0], results[args.eval_every]
    print(f"tau evaluations: {len(evals)}, {sum(evals):.2f} s in all "
          f"({', '.join(f'{s:.2f}' for s in evals)} s each)")
    print(f"weights identical with and without tau tracking: {off[1] == on[1]}")
    epoch_s = off[2] / args.epochs
    if evals and epoch_s > 0:  # the evaluations amortised over a whole training of the preset
        each = sum(evals) / len(evals)
        for every in sorted({1, 2, 5, 10, preset_epochs}):
            n = sum(tau_tracking.is_due(e, every, preset_epochs) for e in range(1, preset_epochs + 1))
            print(f"projected, {preset_epochs} epochs of {epoch_s:.2f} s, eval_every {every}: "
                  f"{1 + n * each / (preset_epochs * epoch_s):.2f}x the training's epochs")
    print(f"ratio tau_tracking_overhead {on[0] / off[0]:.3f}")


if __name__ == "__main__":
    main()
