"""Paper protocol: calibrated Kendall tau with the test split class-sorted vs class-mixed.

The ``paper`` protocol calibrates BN statistics over the whole test split *in loader order*
(momentum 0.1, no reset), as the public MixPath code does over the official, class-mixed
``test_batch``. An image source used to be read class-sorted, so each calibration batch was
(almost) one class and the last classes dominated the running statistics. This recipe measures
what that did: on the same trained supernets, the paper protocol's calibrated tau with the test
split in class-sorted order ("before") and in the class-mixed order rankbench uses now
(``data.order = "mixed"``, "after"). Uncalibrated scores do not depend on the order (eval mode),
so both settings drop the same 30 candidates (the public code's keep rule).

    python analysis/paper_calibration_order.py runs/lsbn-quick-s4-m4-seed2020-* [...] --out DIR

Writes ``paper_calibration_order.csv`` and ``.md`` (one row per run, then mean ± sd over runs).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rankbench._io import atomic_path, write_text
from rankbench.data.splits import load_splits
from rankbench.metrics import kendall_tau
from rankbench.numerics import setup_compute
from rankbench.plan import resolve
from rankbench.rundir import RunDir
from rankbench.scoring import score_candidates
from rankbench.train import load_supernet, resolve_device


def class_sorted(splits):
    """The same splits with the test split in class-sorted order (stable): the old loader order."""
    order = np.argsort(splits.test.labels.numpy(), kind="stable")
    return dataclasses.replace(splits, test=splits.test.subset(order))


def measure(run_dir: Path, *, progress: bool) -> dict:
    from rankbench.config import apply_overrides

    cfg = apply_overrides(RunDir(run_dir).load_config(), {"score.protocol": "paper"})
    p = resolve(cfg, truth="require")
    cfg = p.cfg
    device = resolve_device(cfg.train.device)
    setup_compute(cfg.train, device)
    net, _ = load_supernet(run_dir, map_location=device)
    mixed = load_splits(cfg.data, progress=progress)
    hashes = [c.hash for c in p.candidates]
    truth, _ = p.truth.values(hashes, reduce=cfg.truth.reduce, seed=cfg.score.seed)
    kw = dict(protocol=p.protocol, data_cfg=cfg.data, progress=progress)
    nocalib = score_candidates(net, p.candidates, mixed, cfg.score, calibrate=False, **kw)["accuracy"].to_numpy(float)
    keep = np.asarray(p.protocol.keep_mask(nocalib, int(cfg.score.drop_lowest)), dtype=bool)
    row = {"run": RunDir(run_dir).name, "variant": cfg.model.variant, "seed": cfg.train.seed,
           "candidates": len(hashes), "kept": int(keep.sum()),
           "tau_nocalib": kendall_tau(nocalib[keep], truth[keep])}
    for label, splits in (("class_sorted", class_sorted(mixed)), ("class_mixed", mixed)):
        calib = score_candidates(net, p.candidates, splits, cfg.score, calibrate=True, **kw)["accuracy"].to_numpy(float)
        row[f"tau_calib_{label}"] = kendall_tau(calib[keep], truth[keep])
        row[f"mean_acc_calib_{label}"] = float(np.mean(calib[keep]))
    row["tau_calib_mixed_minus_sorted"] = row["tau_calib_class_mixed"] - row["tau_calib_class_sorted"]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="finished run directories")
    ap.add_argument("--out", type=Path, default=Path("analysis/out/paper_calibration_order"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for r in args.runs:
        rows.append(measure(r, progress=not args.no_progress))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "paper_calibration_order.csv", ".csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    cols = ["tau_nocalib", "tau_calib_class_sorted", "tau_calib_class_mixed", "tau_calib_mixed_minus_sorted"]
    lines = ["| run | seed | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append(f"| {r['run']} | {r['seed']} | " + " | ".join(f"{r[c]:+.3f}" for c in cols) + " |")
    if len(df) >= 2:
        lines.append(f"| mean ± sd over {len(df)} runs | | " + " | ".join(
            f"{statistics.mean(df[c]):+.3f} ± {statistics.stdev(df[c]):.3f}" for c in cols) + " |")
    write_text(args.out / "paper_calibration_order.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
