"""Real-scale check (``pytest -m slow``, ~4 minutes on 2 CPU cores): the README's main job,
``rankbench run --variant lsbn --calibrate`` on the bundled data with the quick preset.

The floors below are regression guards, far under what the quick preset gives (measured over
training seeds 2020-2022: tau per subnet 0.30-0.39 without calibration, 0.39-0.47 with), and
far above what a broken pipeline gives (a supernet that ranks at random: about 0).
"""
from __future__ import annotations

import json

import pytest

from rankbench.config import load_preset
from rankbench.pipeline import run

pytestmark = pytest.mark.slow


def test_quick_preset_ranks_well_above_chance(tmp_path):
    cfg = load_preset("quick")
    (res,), _ = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=200, echo=None)
    m = json.loads((res.report_dir / "metrics.json").read_text())
    cov = m["truth"]["coverage"]
    assert (cov["covered"], cov["candidates"], cov["classes_covered"]) == (255, 255, 34)
    no_calib, calib = (m["metrics"][k]["per_subnet"]["kendall_tau"] for k in ("no_calib", "calib"))
    assert no_calib > 0.15, no_calib
    assert calib > 0.25, calib
    assert m["metrics"]["calib"]["mean_accuracy"] > 0.2  # 10 classes: chance is 0.1
    assert {"params", "flops"} <= set(m["references"])  # the reference rankers stand beside it
    # a rerun reuses the training and every cached score: the same numbers
    (again,), _ = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=200, echo=None)
    assert again.metrics["training_reused"]
    assert again.scores.equals(res.scores) and again.report_dir == res.report_dir


def test_nb101_quick_preset_runs_against_real_nb101_truth(tmp_path):
    """`rankbench run --space nb101 --variant lsbn --calibrate`: the full NB101 space on the
    bundled data, ranked against NB101's own 108-epoch accuracy, NB101's shorter budgets beside it."""
    cfg = load_preset("nb101-quick")
    (res,), _ = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=200, echo=None)
    m = res.metrics
    assert m["truth"]["source"] == "nb101" and m["truth"]["coverage"]["covered"] == cfg.score.candidates
    assert {"params", "flops", "nb101_4", "nb101_12", "nb101_36"} <= set(m["references"])
    # NB101's own 36-epoch accuracy ranks its 108-epoch accuracy far above chance: the truth is real
    assert m["references"]["nb101_36"]["per_subnet"]["kendall_tau"] > 0.4
