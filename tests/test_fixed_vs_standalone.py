"""Slow regression check: an nb101 supernet trained on one fixed cell (``train.sampler =
fixed:<arch>``) learns like that cell's stand-alone NB101 network (nasbench-pytorch's
``Network``, as the measured truth trains it).

The two networks compute the same function for the cell (the weights the arch uses are NB101's
network's, ``tests/test_nb101_supernet.py``), so with the same data, schedule and seeds their
training curves should differ only as much as one seed differs from another, unless the
weight-sharing cell trains differently: its full-width weights are initialised for ``C`` input
channels and sliced, an optimiser step also moves the unused slices, its projections run at
full width. Setup: ``nb101-quick`` (width 16, 3 stacks x 1 cell, 16 x 16 images, 4,000 training
images), plain BN (``model.variant = bn``, as NB101), ``EPOCHS`` epochs, seeds ``SEEDS``, both
arms with the same ``RunConfig`` and the same loop (:func:`rankbench.train.fit`).

Tolerance, per epoch and metric (training loss and accuracy of the epoch): ``s`` is the
pooled standard deviation over seeds within each arm (the seed noise, measured here), and the
two arms' means must differ by at most ``K * s * sqrt(2 / n)``, i.e. ``K`` standard errors of a
difference of two means of ``n`` seeds (``K = 4``, ``n = 5``: under equal means a t statistic
with 8 degrees of freedom passes 4 with probability 0.4% per comparison, ~2.4% for the six). A
floor ``FLOOR`` keeps a chance near-zero spread from making the band vanish. Run with
``pytest -m slow tests/test_fixed_vs_standalone.py -s`` (prints the table; ~1.5 min on one
CPU thread).

Measured (2026-12, CPU, 1 thread; epoch-3 means over the 5 seeds): training loss 1.758
(supernet) vs 1.783 (stand-alone), seed sd 0.014, tolerance 0.036; training accuracy 0.342 vs
0.326, seed sd 0.009, tolerance 0.023. The supernet is ahead by ~2.7 standard errors at epochs
2-3: in part its initialisation (He-normal by *full-width* output channels, so a sliced conv
starts sqrt(c / C) smaller than NB101's, which under BN means larger effective steps);
initialising the stand-alone convs at that scale moved it to 1.766 / 0.335.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import load_splits
from rankbench.nb101.network import IgnoreArch, build_network
from rankbench.spaces import create_space
from rankbench.train import fit, standard_hooks, train_supernet
from rankbench.training.csvlog import read_log

pytestmark = pytest.mark.slow

#: a 7-vertex cell from the bundled NB101 sample: conv1x1, conv1x1, maxpool, conv3x3, conv3x3;
#: two vertices feed the output (NB101's channel split) and input -> output (the projection)
ARCH = "11m33_12c24d"
EPOCHS = 3
SEEDS = (2020, 2021, 2022, 2023, 2024)
K = 4.0
FLOOR = {"train_loss": 0.01, "train_acc": 0.005}


def _cfg(seed: int):
    return apply_overrides(load_preset("nb101-quick"), {
        "model.variant": "bn", "train.epochs": EPOCHS, "train.seed": seed, "train.device": "cpu",
        "train.sampler": f"fixed:{ARCH}", "train.checkpoint_interval_s": 0})


def _supernet_curve(seed: int, root: Path) -> list[dict[str, float]]:
    run_dir = train_supernet(_cfg(seed), root / f"supernet-{seed}", progress=False)
    return read_log(run_dir / "train_log.csv")


def _standalone_curve(seed: int, root: Path, splits) -> list[dict[str, float]]:
    """As rankbench.truth.measure_truth trains a cell: nasbench-pytorch's Network, fit()."""
    cfg = _cfg(seed)
    spec = create_space("nb101").arch_from_name(ARCH).spec
    torch.manual_seed(seed)  # the initial weights
    net = build_network(spec, stem_channels=cfg.model.width, num_stacks=cfg.model.stacks,
                        cells_per_stack=cfg.model.cells_per_stack, num_classes=cfg.model.num_classes,
                        momentum=cfg.model.bn_momentum)
    run_dir = root / f"standalone-{seed}"
    fit(IgnoreArch(net), lambda rng: None, splits, cfg, run_dir, progress=False,
        hooks=standard_hooks(cfg, run_dir, progress=False))
    return read_log(run_dir / "train_log.csv")


def test_a_fixed_arch_supernet_trains_like_its_standalone_network(tmp_path):
    splits = load_splits(_cfg(SEEDS[0]).data, progress=False)
    curves = {"supernet": [_supernet_curve(s, tmp_path) for s in SEEDS],
              "standalone": [_standalone_curve(s, tmp_path, splits) for s in SEEDS]}
    n = len(SEEDS)
    lines, failures = [], []
    for metric in ("train_loss", "train_acc"):
        # values[arm]: seeds x epochs
        values = {arm: np.array([[row[metric] for row in c] for c in cs]) for arm, cs in curves.items()}
        assert all(v.shape == (n, EPOCHS) and np.isfinite(v).all() for v in values.values())
        for e in range(EPOCHS):
            sup, alone = values["supernet"][:, e], values["standalone"][:, e]
            spread = math.sqrt((sup.var(ddof=1) + alone.var(ddof=1)) / 2)
            tol = max(K * spread * math.sqrt(2 / n), FLOOR[metric])
            diff = sup.mean() - alone.mean()
            lines.append(f"{metric} epoch {e + 1}: supernet {sup.mean():.4f} ({', '.join(f'{v:.4f}' for v in sup)}) "
                         f"standalone {alone.mean():.4f} ({', '.join(f'{v:.4f}' for v in alone)}) "
                         f"diff {diff:+.4f} seed sd {spread:.4f} tol {tol:.4f}")
            if abs(diff) > tol:
                failures.append(lines[-1])
    print("\n".join(lines))
    # training worked at all: the loss falls and the accuracy beats chance by the last epoch
    for arm, cs in curves.items():
        assert all(c[-1]["train_loss"] < c[0]["train_loss"] and c[-1]["train_acc"] > 0.2 for c in cs), arm
    assert not failures, "the fixed-arch supernet trains unlike its stand-alone network:\n" + "\n".join(failures)
