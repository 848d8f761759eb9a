"""Tau over training (``train.eval_every``): the rows it writes, that it leaves the training
bit-identical, that an interrupted run resumes without losing or repeating rows, its config
rules, and its figure drawn from synthetic CSVs.

Tiny sizes (S4 with m = 2, width 4, one cell, 16x16 images) on one CPU thread; the truth is a
synthetic CSV over the space's hash classes (two repeats each), so the interval resamples it.
"""
from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_splits
import torch
from torch import nn

from rankbench.config import apply_overrides, config_problems, load_preset
from rankbench.numerics import weights_digest
from rankbench.spaces import create_space
from rankbench.supernet import supernet_from_config
from rankbench.train import fit, load_supernet, standard_hooks, train_supernet
from rankbench.training.csvlog import write_log
from rankbench.training.hooks import Hook
from rankbench.training.tau_table import TAU_COLUMNS, TAU_CSV, read_tau_table, write_tau_table
from rankbench.training.tau_tracking import (TAU_TB_DIR, is_due, preserved_state, tau_subset, tau_tracker,
                                             tracked_candidates)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "space.m": 2,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 2, "train.num_threads": 1, "train.device": "cpu",
    "score.calib_batches": 2, "score.calib_batch_size": 25, "score.eval_batch_size": 50,
    "train.eval_candidates": 8, "train.checkpoint_interval_s": 0,
}


@pytest.fixture(scope="module")
def truth_csv(tmp_path_factory):
    """A truth over every hash class of S4 (m = 2): two repeats (seeds) each."""
    rng = np.random.default_rng(0)
    rows = []
    for h in dict.fromkeys(a.hash for a in create_space("s4", m=2).candidates()):
        base = 0.5 + 0.4 * rng.random()
        rows += [{"hash": h, "seed": s, "validation_accuracy": base + 0.02 * rng.random()} for s in (0, 1)]
    path = tmp_path_factory.mktemp("truth") / "truth.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _cfg(truth_csv, **over):
    return apply_overrides(load_preset("quick"), {**TINY, "truth.source": str(truth_csv), **over})


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(100, 50, 50)


# -- the config ----------------------------------------------------------------------------------
def test_fields_stay_out_of_the_fingerprint_and_are_checked(truth_csv):
    cfg = _cfg(truth_csv)
    assert cfg.train.eval_every == 0 and cfg.train.eval_candidates == 8
    other = _cfg(truth_csv, **{"train.eval_every": 3, "train.eval_candidates": 100, "train.eval_images": 20})
    assert other.training_fingerprint("cpu") == cfg.training_fingerprint("cpu")
    assert other.training_fingerprint("cuda") == cfg.training_fingerprint("cuda")
    problems = config_problems(_cfg(truth_csv, **{"train.eval_every": -1, "train.eval_candidates": 2,
                                                  "train.eval_images": -5}))
    assert any(p.startswith("train.eval_every = -1") for p in problems)
    assert any(p.startswith("train.eval_candidates = 2") for p in problems)
    assert any(p.startswith("train.eval_images = -5") for p in problems)
    assert not config_problems(other)
    from rankbench.training.tau_tracking import TauTracker

    subset = tau_subset(other)
    assert TauTracker(other, "unused", None, subset).score_cfg.eval_size == 20  # eval_images: the scoring's
    all_images = _cfg(truth_csv, **{"train.eval_images": 0})  # 0: the report's own images
    assert TauTracker(all_images, "unused", None, subset, every=1).score_cfg == all_images.score


def test_due_epochs_and_the_subset_drawn():
    assert [e for e in range(1, 8) if is_due(e, 3, 7)] == [3, 6, 7]
    assert [e for e in range(1, 4) if is_due(e, 1, 3)] == [1, 2, 3]
    assert not any(is_due(e, 0, 5) for e in range(6))
    space = create_space("s4", m=2)
    assert [a.name for a in tracked_candidates(space, 8, 0, 0)] == [a.name for a in space.candidates(8, 0)]
    run = [a.name for a in space.candidates(12, 1)]
    sub = [a.name for a in tracked_candidates(space, 5, 12, 1)]
    assert len(sub) == 5 and set(sub) <= set(run) and sub == [n for n in run if n in sub]  # the run's, in order
    assert [a.name for a in tracked_candidates(space, 50, 12, 1)] == run


def test_a_truth_that_cannot_rank_the_subset_fails_before_training(truth_csv, tmp_path):
    thin = tmp_path / "thin.csv"
    pd.read_csv(truth_csv).head(4).to_csv(thin, index=False)  # two hash classes
    cfg = _cfg(truth_csv, **{"train.eval_every": 1, "truth.source": str(thin)})
    with pytest.raises(ValueError, match="covers 2 of the 8 candidates"):
        train_supernet(cfg, runs_root=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- the rows, and a training left as it was ------------------------------------------------------
def test_rows_written_and_weights_bit_identical(truth_csv, tmp_path):
    plain = train_supernet(_cfg(truth_csv), runs_root=tmp_path / "plain", progress=False)
    tracked = train_supernet(_cfg(truth_csv, **{"train.eval_every": 1, "train.tensorboard": True}),
                             runs_root=tmp_path / "tracked", progress=False)
    assert plain.name == tracked.name  # the same training fingerprint, the same run name
    done = [json.loads((d / "train_done.json").read_text()) for d in (plain, tracked)]
    assert done[0]["weights_digest"] == done[1]["weights_digest"]
    assert weights_digest(load_supernet(plain)[0]) == weights_digest(load_supernet(tracked)[0])
    assert not (plain / TAU_CSV).exists()

    df = pd.read_csv(tracked / TAU_CSV)
    assert tuple(df.columns) == TAU_COLUMNS
    refs, curves = df[df["epoch"].isna()], df[df["epoch"].notna()]
    assert set(refs["setting"]) >= {"ref_params", "ref_flops"}
    assert list(zip(curves["epoch"].astype(int), curves["setting"])) == [(1, "no_calib"), (1, "calib"),
                                                                        (2, "no_calib"), (2, "calib")]
    assert (df["n"] == 8).all()  # every candidate of the subset has a truth
    assert df["kendall_tau"].between(-1, 1).all() and (df["ci_low"] <= df["ci_high"]).all()
    assert (df["ci_low"] >= -1).all() and (df["ci_high"] <= 1).all()
    # the reference rankers' tau recomputed from their scores on the same subset
    cfg = _cfg(truth_csv, **{"train.eval_every": 1})
    subset = tau_subset(cfg)
    from rankbench.metrics import kendall_tau

    params = refs.set_index("setting").loc["ref_params", "kendall_tau"]
    assert params == pytest.approx(kendall_tau(subset.references["params"], subset.truth), abs=1e-12)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tracked / "tensorboard" / TAU_TB_DIR))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"tau/no_calib", "tau/calib", "tau/calib_ci_low", "tau/ref_params"} <= tags
    steps = [e.step for e in acc.Scalars("tau/calib")]
    assert len(steps) == 2 and steps[1] == 2 * steps[0] > 0  # epoch ends, against the global step
    logged = [e.value for e in acc.Scalars("tau/calib")]
    assert logged == pytest.approx(curves[curves["setting"] == "calib"]["kendall_tau"].tolist(), abs=1e-6)


def test_state_is_restored_exactly_even_after_an_error():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    net[1].eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    with pytest.raises(RuntimeError, match="boom"), preserved_state(net):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        net.train()
        net(torch.randn(2, 3, 8, 8))  # BN statistics move
        random.random(), np.random.rand(), torch.rand(5)
        raise RuntimeError("boom")
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net[0].training and not net[1].training
    got = (random.random(), np.random.rand(), torch.rand(1))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# -- resuming ---------------------------------------------------------------------------------------
class _StopAt(Hook):
    """Ctrl-C at the end of an epoch, once (placed before the tracker: its checkpoint is written,
    its evaluation is not)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, loop, row):
        if loop.pos.epoch == self.epoch:
            raise KeyboardInterrupt


def _fit(cfg, splits, run_dir, *, before=(), resume=False, on_epoch_end=None):
    torch.manual_seed(cfg.train.seed)
    net = supernet_from_config(cfg)
    tracker = tau_tracker(cfg, run_dir, splits)
    hooks = standard_hooks(cfg, run_dir, progress=False, extra=[*before, tracker], on_epoch_end=on_epoch_end)
    fit(net, lambda rng: net.space.sample_arch(rng, net.num_cells), splits, cfg, run_dir, resume=resume,
        progress=False, hooks=hooks)
    return net


def _stop_after(epoch):
    def cb(epochs_done, row):
        if epochs_done == epoch:
            raise KeyboardInterrupt

    return cb


def test_resume_keeps_rows_without_repeating_them(truth_csv, splits, tmp_path):
    cfg = _cfg(truth_csv, **{"train.epochs": 3, "train.eval_every": 1})
    ref = _fit(cfg, splits, tmp_path / "ref")
    expected = (tmp_path / "ref" / TAU_CSV).read_text()
    assert [r["epoch"] for r in read_tau_table(tmp_path / "ref" / TAU_CSV) if r["epoch"]] == [1, 1, 2, 2, 3, 3]

    # Ctrl-C after epoch 2 was evaluated: its rows are kept, and not written twice
    d = tmp_path / "after"
    with pytest.raises(KeyboardInterrupt):
        _fit(cfg, splits, d, on_epoch_end=_stop_after(2))
    assert [r["epoch"] for r in read_tau_table(d / TAU_CSV) if r["epoch"]] == [1, 1, 2, 2]
    net = _fit(cfg, splits, d, resume=True)
    assert (d / TAU_CSV).read_text() == expected
    assert weights_digest(net) == weights_digest(ref)

    # Ctrl-C between epoch 2's checkpoint and its evaluation: evaluated on resume; a row written
    # after the checkpoint (a SIGKILL later in the run) is dropped and computed again
    d = tmp_path / "between"
    with pytest.raises(KeyboardInterrupt):
        _fit(cfg, splits, d, before=[_StopAt(2)])
    rows = read_tau_table(d / TAU_CSV)
    assert [r["epoch"] for r in rows if r["epoch"]] == [1, 1]
    write_tau_table(d / TAU_CSV, rows + [{**rows[-1], "epoch": 3, "kendall_tau": 0.99}])
    net = _fit(cfg, splits, d, resume=True)
    assert (d / TAU_CSV).read_text() == expected
    assert weights_digest(net) == weights_digest(ref)


# -- the figure ------------------------------------------------------------------------------------
def _synthetic_run(root, cfg, variant, seed, shift):
    from dataclasses import replace

    cfg = replace(cfg, model=replace(cfg.model, variant=variant), train=replace(cfg.train, seed=seed))
    d = root / f"{variant}-seed{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    write_log(d / "train_log.csv", [{"epoch": e, "lr": 0.1, "train_loss": 2.0 / e, "train_acc": 0.1 * e,
                                     "images_per_s": 100.0, "wall_s": 1.0} for e in range(1, 7)])
    rows = [{"epoch": None, "setting": s, "kendall_tau": t, "ci_low": t - 0.1, "ci_high": t + 0.1, "spearman": t,
             "n": 64} for s, t in (("ref_params", 0.35), ("ref_flops", 0.3))]
    for e in (2, 4, 6):
        for s, t in (("no_calib", 0.1 * e / 6 + shift), ("calib", 0.5 * e / 6 + shift)):
            rows.append({"epoch": e, "setting": s, "kendall_tau": t, "ci_low": t - 0.15, "ci_high": t + 0.15,
                         "spearman": t, "n": 64})
    write_tau_table(d / TAU_CSV, rows)
    return d


def test_figure_renders_from_synthetic_csvs(truth_csv, tmp_path):
    from rankbench.figures import draw_figure, get_figure
    from rankbench.figures._context import RunContext, RunsContext, _Plan
    from rankbench.figures.tau_over_training import compute_tau_over_training, load_tau_table

    cfg = _cfg(truth_csv, **{"train.eval_every": 2, "train.epochs": 6})
    runs = [_synthetic_run(tmp_path / "runs", cfg, v, s, shift) for v, s, shift in
            (("lsbn", 1, 0.0), ("lsbn", 2, 0.1), ("bn", 1, -0.2))]
    one = draw_figure("tau_over_training", RunContext(runs[0]), tmp_path / "one")
    assert {p.name for p in one} == {"tau_over_training.png", "tau_over_training.pdf", "tau_over_training.csv"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in one if p.suffix == ".png")
    single = pd.read_csv(tmp_path / "one" / "tau_over_training.csv")
    calib = single[single["setting"] == "calib"]
    assert (calib["band"] == "95% interval").all() and calib["band_low"].tolist() == pytest.approx(
        (calib["kendall_tau"] - 0.15).tolist(), abs=1e-5)  # the figure's CSV: 6 significant digits

    ctxs = [RunContext(d) for d in runs]
    ctx = RunsContext(ctxs, _Plan(runs, {d: None for d in runs}, False))
    assert get_figure("compare_tau_over_training").applies(ctx)
    paths = draw_figure("compare_tau_over_training", ctx, tmp_path / "all")
    assert any(p.suffix == ".png" for p in paths)
    summary = pd.read_csv(tmp_path / "all" / "tau_over_training.csv")
    lsbn = summary[(summary["variant"] == "lsbn") & (summary["setting"] == "calib") & (summary["epoch"] == 6)].iloc[0]
    assert lsbn["n_runs"] == 2 and lsbn["band"] == "min-max over runs"
    assert (lsbn["band_low"], lsbn["kendall_tau"], lsbn["band_high"]) == pytest.approx((0.5, 0.55, 0.6), abs=1e-5)
    assert set(summary.loc[summary["epoch"].isna(), "setting"]) == {"ref_params", "ref_flops"}
    # a run without the CSV: the figure says why it does not apply
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps(cfg.to_dict()))
    notes: list[str] = []
    assert draw_figure("tau_over_training", RunContext(bare), tmp_path / "none", notes.append) == []
    assert notes and "train.eval_every" in notes[0]
    assert len(compute_tau_over_training(load_tau_table(runs[2]))) == 2 + 3 * 2
