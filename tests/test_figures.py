"""Figures: compute functions on tiny supernets and synthetic tables, files written, CLI errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from rankbench.config import ModelConfig, RunConfig
from rankbench.figures import make_figures
from rankbench.figures.cosine import compute_cosine, default_features, feature_label
from rankbench.figures.distributions import compute_accuracy_by_paths
from rankbench.figures.ranking import compute_rank_agreement, compute_training_curves
from rankbench.figures.sbn_stats import compute_sbn_stats, fit_slope, fit_slopes, plot_sbn_stats
from rankbench.figures.style import VARIANT_ORDER, save_figure, variant_color
from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet

TINY = dict(width=8, cells_per_stack=1)


def _net(variant: str, seed: int = 0):
    torch.manual_seed(seed)
    return create_supernet("s4", variant, **TINY).eval()


def _images(n: int = 6, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _synthetic_scores(variant: str = "lsbn", seed: int = 0, m: int = 4) -> pd.DataFrame:
    subs = create_space("s4", m=m).subnets()
    rng = np.random.default_rng(seed)
    k = np.array([s.num_paths for s in subs])
    truth = 0.85 + 0.01 * k + rng.normal(0, 0.01, len(subs))
    return pd.DataFrame({
        "subnet": [s.code for s in subs], "num_paths": k, "adjacency": "", "ops": "",
        "hash": [s.hash for s in subs],
        "acc_no_calib": truth - 0.05 * (k - 1) + rng.normal(0, 0.02, len(subs)),
        "acc_calib": truth - 0.02 + rng.normal(0, 0.01, len(subs)),
        "truth": truth, "truth_std": 0.002,
    })


def _synthetic_log(epochs: int = 4) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "lr": 0.05 / e, "train_loss": 2.0 / e, "train_acc": 0.2 + 0.1 * e,
                         "images_per_s": 100.0, "wall_s": 1.0})


# -- cosine ----------------------------------------------------------------------------------
def test_cosine_of_a_path_with_itself_is_one():
    net = _net("lsbn")
    df = compute_cosine(net, _images(), cell=1)
    labels = list(df["feature"])
    assert len(labels) == 12 + 6  # 4 nodes x 3 ops, then two sums for each k = 2..4
    cos = df[labels].to_numpy()
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-9)
    np.testing.assert_allclose(cos, cos.T, atol=1e-12)
    assert np.all(cos <= 1 + 1e-9) and np.all(cos >= -1 - 1e-9)
    assert not net.training  # mode left as it was


def test_sum_of_the_same_path_k_times_is_k_times_as_long():
    net = _net("bn")
    path = (0, CONV3X3)
    feats = [(path,) * k for k in (1, 2, 3, 4)] + [((1, MAXPOOL3X3),)]
    df = compute_cosine(net, _images(), cell=2, features=feats)
    np.testing.assert_allclose(df["rel_norm"].to_numpy()[:4], [1, 2, 3, 4], rtol=1e-12)
    labels = list(df["feature"])
    assert labels[1] == "3---+3---"
    # parallel: every multiple of the path has cosine 1 with the path
    np.testing.assert_allclose(df[labels[0]].to_numpy()[:4], 1.0, atol=1e-12)


def test_cosine_is_deterministic_and_independent_of_chunking():
    net = _net("lsbn")
    x = _images(7)
    feats = [((0, CONV1X1),), ((2, CONV3X3),), ((0, CONV1X1), (2, CONV3X3))]
    a = compute_cosine(net, x, cell=0, features=feats, chunk=7)
    b = compute_cosine(net, x, cell=0, features=feats, chunk=3)
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)  # float32 convs: batch size changes rounding
    assert feature_label(feats[2], 4) == "1-3-"


def test_cosine_errors():
    with pytest.raises(ValueError, match="MixPath cell"):
        compute_cosine(_net("spos"), _images(), cell=0)
    with pytest.raises(ValueError, match="out of range"):
        compute_cosine(_net("lsbn"), _images(), cell=3)


def test_default_features_cover_every_single_path():
    feats = default_features(2)
    assert [f for f in feats if len(f) == 1] == [((n, op),) for n in range(2) for op in (CONV3X3, CONV1X1, MAXPOOL3X3)]
    assert [len(f) for f in feats if len(f) > 1] == [2, 2]


# -- shadow BN statistics -------------------------------------------------------------------
def test_fit_slope_through_the_origin():
    x = np.array([1.0, 2.0, -3.0, 0.5])
    assert fit_slope(x, 2.5 * x) == pytest.approx(2.5)
    assert np.isnan(fit_slope(np.zeros(3), np.ones(3)))


def _set_bn(bn, mean, var, gamma, beta):
    with torch.no_grad():
        bn.running_mean.copy_(torch.as_tensor(mean))
        bn.running_var.copy_(torch.as_tensor(var))
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))


@pytest.mark.parametrize("variant", ["lsbn", "esbn"])
def test_sbn_slopes_recover_known_scalings(variant):
    net = _net(variant)
    rng = np.random.default_rng(0)
    true = {}  # (cell, k) -> (mean slope, var slope)
    for c, cell in enumerate(net.cells):
        ch = cell.norm.sbn[0].num_features if variant == "lsbn" else next(iter(cell.norm.sbn.values())).num_features
        mean, var = rng.normal(0, 1, ch), rng.uniform(0.5, 2, ch)
        gamma, beta = rng.uniform(0.5, 1.5, ch), rng.normal(0, 0.2, ch)
        bns = (list(enumerate(cell.norm.sbn, 1)) if variant == "lsbn"
               else [(len(key) - 1, bn) for key, bn in cell.norm.sbn.items()])
        for k, bn in bns:
            sm, sv = 1.5 * k + 0.1 * c, 3.0 * k * k  # known, not the textbook k, k^2
            _set_bn(bn, sm * mean, sv * var, gamma, 0.7 * beta)
            true[(c, k)] = (sm / (1.5 + 0.1 * c), sv / 3.0)
    stats = compute_sbn_stats(net)
    assert set(stats["stat"]) == {"running_mean", "running_var", "gamma", "beta"}
    slopes = fit_slopes(stats)
    for row in slopes.itertuples():
        want_mean, want_var = true[(row.cell, row.k)]
        want = {"running_mean": want_mean, "running_var": want_var, "gamma": 1.0, "beta": 1.0}[row.stat]
        assert row.slope == pytest.approx(want, rel=1e-6), row  # float32 buffers
    assert set(slopes["k"]) == ({2, 3, 4} if variant == "lsbn" else {1, 2, 3, 4})
    exp = slopes.set_index(["cell", "k", "stat"])["expected"]
    assert exp[(0, 2, "running_mean")] == 2 and exp[(0, 3, "running_var")] == 9 and exp[(0, 4, "gamma")] == 1


def test_sbn_stats_need_shadow_bns():
    with pytest.raises(ValueError, match="lsbn or esbn"):
        compute_sbn_stats(_net("bn"))


# -- tables from scores and logs ------------------------------------------------------------
def test_rank_agreement_and_distribution_tables():
    scores = _synthetic_scores()
    scores.loc[0, "truth"] = np.nan  # a subnet without a truth is left out, not ranked
    r = compute_rank_agreement(scores)
    assert set(r["calibration"]) == {"no_calib", "calib"}
    assert (r["n"] == 254).all()
    assert r["score"].max() > 1.0 and r["truth"].max() > 1.0  # percent
    np.testing.assert_allclose(r["truth_std"], 0.2)
    d = compute_accuracy_by_paths(scores.assign(variant="bn", run="r1"))
    assert len(d) == 2 * 255 and set(d["num_paths"]) == {1, 2, 3, 4}
    t = compute_training_curves(_synthetic_log())
    assert t["train_acc"].max() == pytest.approx(60.0)


# -- files -----------------------------------------------------------------------------------
def _check_files(paths, stem):
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{stem}.{e}" for e in ("png", "pdf", "csv"))
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        elif p.suffix == ".pdf":
            assert data[:5] == b"%PDF-"
        else:
            assert len(pd.read_csv(p)) > 0
    assert not [p for p in paths[0].parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_save_figure_writes_png_pdf_and_csv_atomically(tmp_path):
    # every plot function is drawn and saved by test_make_figures_on_run_dirs; here the
    # esbn variant of the SBN figure (subsets grouped by size), on fewer axes to stay fast
    net = _net("esbn")
    stats = compute_sbn_stats(net, cells=[1])
    stats = stats[stats["stat"].isin(["running_mean", "running_var"]) & (stats["k"] <= 2)]
    paths = save_figure(plot_sbn_stats(stats, cell=1), tmp_path / "sub" / "sbn", stats)
    _check_files(paths, "sbn")
    pd.testing.assert_frame_equal(pd.read_csv(paths[2]), stats.reset_index(drop=True), check_dtype=False)


def test_every_variant_has_its_own_colour():
    colors = [variant_color(v) for v in VARIANT_ORDER]
    assert len(set(colors)) == len(colors) == 5
    assert variant_color("new-variant") == variant_color("new-variant")


def _fake_run(root, variant: str, seed: int = 1, m: int = 2, trained: bool = True):
    """A run directory as training and scoring leave it, with an untrained tiny supernet
    (m = 2 keeps the figures small, so the test is fast); ``trained=False``: scores only."""
    cfg = RunConfig(preset="test", model=ModelConfig(variant=variant, m=m, width=8, cells_per_stack=1))
    cfg = RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "seed": seed}})
    d = root / f"{variant}-test-m4-seed{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    if trained:
        torch.manual_seed(seed)
        torch.save(create_supernet("s4", variant, m=m, **TINY).state_dict(), d / "supernet.pt")
        (d / "train_done.json").write_text("{}")
        _synthetic_log().to_csv(d / "train_log.csv", index=False)
    _synthetic_scores(variant, seed, m).to_csv(d / "scores.csv", index=False)
    return d


def test_make_figures_on_run_dirs(tmp_path, monkeypatch):
    import rankbench.figures as figs

    monkeypatch.setattr(figs, "feature_images", lambda cfg, n: _images(min(n, 4)))
    runs = [_fake_run(tmp_path / "runs", "lsbn"), _fake_run(tmp_path / "runs", "bn", trained=False)]
    notes = []
    paths = make_figures(runs, tmp_path / "fig", cell=1, log=notes.append)
    rel = {str(p.relative_to(tmp_path / "fig")) for p in paths}
    lsbn, bn = runs[0].name, runs[1].name
    for stem in ("training_curves", "rank_agreement", "accuracy_by_paths", "cosine_cell1", "sbn_stats_cell1"):
        assert {f"{lsbn}/{stem}.{e}" for e in ("png", "pdf", "csv")} <= rel
    assert f"{lsbn}/sbn_slopes.csv" in rel
    # the scores-only run gets what its files allow, and says what it skipped
    assert {r.split("/")[1].split(".")[0] for r in rel if r.startswith(bn)} == {"rank_agreement", "accuracy_by_paths"}
    assert any("supernet.pt" in n for n in notes) and any("train_log.csv" in n for n in notes)
    assert {"accuracy_by_paths.png", "accuracy_by_paths.csv", "training_curves.pdf"} <= rel  # across runs
    assert set(pd.read_csv(tmp_path / "fig" / "accuracy_by_paths.csv")["variant"]) == {"lsbn", "bn"}
    assert all(p.exists() for p in paths)
    cos = pd.read_csv(tmp_path / "fig" / lsbn / "cosine_cell1.csv")
    assert list(cos["feature"]) == ["3-", "1-", "m-", "-3", "-1", "-m", "33", "31"]


def test_make_figures_fails_before_writing_on_a_bad_run_dir(tmp_path):
    good = _fake_run(tmp_path / "runs", "bn", trained=False)
    with pytest.raises(FileNotFoundError, match="not a rankbench run directory"):
        make_figures([good, tmp_path], tmp_path / "fig")
    assert not (tmp_path / "fig").exists()


def test_cli_rejects_a_directory_that_is_not_a_run(tmp_path, capsys):
    from rankbench.cli import EXIT_INVALID, EXIT_NOT_FOUND, main

    assert main(["figures", str(tmp_path)]) == EXIT_INVALID
    assert "not a rankbench run directory" in capsys.readouterr().err
    assert main(["figures", str(tmp_path / "missing")]) == EXIT_NOT_FOUND
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()
