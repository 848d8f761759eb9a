"""Figures: compute functions on tiny supernets and synthetic tables, files written, runs grouped
by config, reports chosen and named, CLI errors."""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rankbench.config import RunConfig, apply_overrides
from rankbench.figures import MixedConfigError, comparison_figures, make_figures
from rankbench.figures.registry import SCOPES, figure_of_file, get_figure, list_figures, register_figure
from rankbench.figures._groups import group_runs
from rankbench.figures.cosine import applies_to, compute_cosine, default_features, feature_label
from rankbench.figures.distributions import compute_accuracy_by_group
from rankbench.figures.ranking import compute_rank_agreement, compute_training_curves
from rankbench.figures.sbn_stats import (compute_sbn_stats, fit_slope, has_shadow_bns, pearson, plot_sbn_stats,
                                         rel_mean_abs_diff, sbn_comparison, sbn_summary, shadow_bn_sites,
                                         shadow_bn_variants)
from rankbench.figures.style import order_variants, save_figure, variant_color, variant_label
from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.reports import ReportError, report_name, report_setup
from rankbench.spaces import create_space, list_spaces
from rankbench.supernet import create_supernet, list_variants, variant_info

TINY = dict(width=8, cells_per_stack=1)


def _net(variant: str, seed: int = 0, m: int = 4):
    torch.manual_seed(seed)
    return create_supernet("s4", variant, m=m, **TINY).eval()


def _images(n: int = 6, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _synthetic_scores(seed: int = 0, m: int = 4) -> pd.DataFrame:
    space = create_space("s4", m=m)
    subs = space.candidates()
    rng = np.random.default_rng(seed)
    k = np.array([space.describe(s)["num_paths"] for s in subs])
    truth = 0.85 + 0.01 * k + rng.normal(0, 0.01, len(subs))
    return pd.DataFrame({
        "name": [s.name for s in subs], "num_paths": k, "adjacency": "", "ops": "",
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


def test_cosine_errors_and_s4_only():
    with pytest.raises(ValueError, match="MixPath cell"):
        compute_cosine(_net("spos"), _images(), cell=0)
    with pytest.raises(ValueError, match="out of range"):
        compute_cosine(_net("lsbn"), _images(), cell=3)
    assert applies_to(_net("lsbn")) is None
    other = SimpleNamespace(space=SimpleNamespace(name="nb101"), num_cells=1, cells=[nn.Identity()], variant="lsbn")
    assert "S4 only" in applies_to(other)
    with pytest.raises(ValueError, match="S4 only, not nb101"):
        compute_cosine(other, _images())


def test_default_features_cover_every_single_path():
    feats = default_features(2)
    assert [f for f in feats if len(f) == 1] == [((n, op),) for n in range(2) for op in (CONV3X3, CONV1X1, MAXPOOL3X3)]
    assert [len(f) for f in feats if len(f) > 1] == [2, 2]


# -- shadow BN statistics -------------------------------------------------------------------
def test_slope_correlation_and_relative_difference():
    x = np.array([1.0, 2.0, -3.0, 0.5])
    assert fit_slope(x, 2.5 * x) == pytest.approx(2.5)
    assert np.isnan(fit_slope(np.zeros(3), np.ones(3)))
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0) and pearson(x, -x) == pytest.approx(-1.0)
    assert np.isnan(pearson(x, np.ones(4)))
    assert rel_mean_abs_diff(x, x) == 0.0
    assert rel_mean_abs_diff(x, x + x.std()) == pytest.approx(1.0)
    assert np.isnan(rel_mean_abs_diff(np.ones(3), x[:3]))


def _set_bn(bn, mean, var, gamma, beta, tracked: int = 1):
    with torch.no_grad():
        bn.running_mean.copy_(torch.as_tensor(mean))
        bn.running_var.copy_(torch.as_tensor(var))
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))
        bn.num_batches_tracked.fill_(tracked)


def _shadow(cell, variant):
    """(k, bn) of a cell's shadow BNs."""
    sbn = cell.norm.sbn
    return list(enumerate(sbn, 1)) if variant == "lsbn" else [(len(key) - 1, bn) for key, bn in sbn.items()]


@pytest.mark.parametrize("variant", ["lsbn", "esbn"])
def test_sbn_slopes_recover_known_scalings(variant):
    net = _net(variant)
    rng = np.random.default_rng(0)
    true = {}  # (cell, k) -> (mean slope, var slope)
    for c, cell in enumerate(net.cells):
        bns = _shadow(cell, variant)
        ch = bns[0][1].num_features
        mean, var = rng.normal(0, 1, ch), rng.uniform(0.5, 2, ch)
        gamma, beta = rng.uniform(0.5, 1.5, ch), rng.normal(0, 0.2, ch)
        for k, bn in bns:
            sm, sv = 1.5 * k + 0.1 * c, 3.0 * k * k  # known, not the textbook k, k^2
            _set_bn(bn, sm * mean, sv * var, gamma, 0.7 * beta)
            true[(c, k)] = (sm / (1.5 + 0.1 * c), sv / 3.0)
    stats = compute_sbn_stats(net)
    assert set(stats["stat"]) == {"running_mean", "running_var", "gamma", "beta"}
    table = sbn_comparison(stats)
    for row in table[table["stat"].isin(["running_mean", "running_var"])].itertuples():
        want = true[(row.cell, row.k)][0 if row.stat == "running_mean" else 1]
        assert row.slope == pytest.approx(want, rel=1e-6), row  # float32 buffers
        assert row.pearson_r == pytest.approx(1.0, abs=1e-6)
    # the mean scales by 1.5 k + 0.1 c relative to k = 1: within 25% of k, so it holds; the
    # variance by k^2 exactly
    assert set(table.loc[table["stat"] == "running_var", "verdict"]) == {"holds"}
    gb = table[table["stat"].isin(["gamma", "beta"])]
    assert gb["slope"].isna().all() and (gb["verdict"] == "close").all()
    np.testing.assert_allclose(gb["rel_mean_abs_diff"], 0.0, atol=1e-6)
    assert set(table["k"]) == ({2, 3, 4} if variant == "lsbn" else {1, 2, 3, 4})
    exp = table.set_index(["cell", "k", "stat"])["expected"]
    assert exp[(0, 2, "running_mean")] == 2 and exp[(0, 3, "running_var")] == 9 and np.isnan(exp[(0, 4, "gamma")])


def test_sbn_gamma_beta_judged_by_correlation_not_slope():
    """Gammas near 1 drawn independently per shadow BN: a slope through 0 says ~1 ("holds"),
    correlation and relative difference say they are unrelated; copies with small noise are
    close, with noise of one sd only related."""
    net = _net("lsbn", m=4)
    rng = np.random.default_rng(1)
    cell = net.cells[0]
    ch = cell.norm.sbn[0].num_features
    g1, b1 = 1.0 + rng.normal(0, 0.05, ch), rng.normal(0, 0.1, ch)
    mean, var = rng.normal(0, 1, ch), rng.uniform(0.5, 2, ch)
    noise = {2: None, 3: 0.1, 4: 0.6}  # k -> noise in units of the reference's sd (None: independent)
    for k, bn in _shadow(cell, "lsbn"):
        if k == 1:
            g, b = g1, b1
        elif noise[k] is None:
            g, b = 1.0 + rng.normal(0, 0.05, ch), rng.normal(0, 0.1, ch)
        else:
            g = g1 + noise[k] * g1.std() * rng.normal(size=ch)
            b = b1 + noise[k] * b1.std() * rng.normal(size=ch)
        _set_bn(bn, k * mean, k * var, g, b)  # the mean scales by k, the variance by k (not k^2)
    table = sbn_comparison(compute_sbn_stats(net, cells=[0])).set_index(["k", "stat"])
    x = cell.norm.sbn[0].weight.detach().double().numpy()
    y = cell.norm.sbn[1].weight.detach().double().numpy()
    assert fit_slope(x, y) == pytest.approx(1.0, abs=0.02)  # the old test: "slope ~1, holds"
    assert table.loc[(2, "gamma"), "verdict"] == "unrelated" and abs(table.loc[(2, "gamma"), "pearson_r"]) < 0.5
    assert table.loc[(2, "gamma"), "rel_mean_abs_diff"] > 0.8
    assert table.loc[(3, "gamma"), "verdict"] == "close" and table.loc[(3, "beta"), "verdict"] == "close"
    assert table.loc[(4, "gamma"), "verdict"] == "related" and table.loc[(4, "beta"), "verdict"] == "related"
    assert table.loc[(4, "beta"), "rel_mean_abs_diff"] == pytest.approx(0.6 * np.sqrt(2 / np.pi), rel=0.3)
    assert (table.xs("running_mean", level="stat")["verdict"] == "holds").all()
    var = table.xs("running_var", level="stat")
    assert (var["verdict"] == "off-scale").all() and var.loc[4, "slope"] == pytest.approx(4)
    assert "does not hold" in var.loc[4, "statement"] and "SBN_4" in var.loc[4, "statement"]
    lines = sbn_summary(table.reset_index().assign(cell=0))
    assert any(line.startswith("k=2 gamma: unrelated (median r") for line in lines)
    assert any(line.startswith("k=3 beta: close") for line in lines)
    assert "running mean: median slope for k = 2..4: 2.00 -> 3.00 -> 4.00; grows with k" in lines


class _VertexNorm(nn.Module):
    """An nb101-like (vertex, op) site with one BN per fan-in, exposing shadow_bns()."""

    def __init__(self, ch: int, fan_ins: int):
        super().__init__()
        self.bns_by_fan_in = nn.ModuleList(nn.BatchNorm2d(ch) for _ in range(fan_ins))

    def shadow_bns(self):
        return [(f"fan_in_{i + 1}", i + 1, bn) for i, bn in enumerate(self.bns_by_fan_in)]


def test_sbn_sites_are_found_generically_and_untrained_bns_left_out():
    net = nn.Module()
    net.cells = nn.ModuleList([nn.ModuleDict({"v2": _VertexNorm(4, 3), "v3": _VertexNorm(4, 2)})])
    net.num_cells, net.variant = 1, "lsbn"
    rng = np.random.default_rng(2)
    for site in net.cells[0].values():
        mean = rng.normal(0, 1, 4)
        for k, bn in enumerate(site.bns_by_fan_in, 1):
            _set_bn(bn, k * mean, k * k * np.ones(4), np.ones(4), np.zeros(4))
    net.cells[0]["v2"].bns_by_fan_in[2].num_batches_tracked.zero_()  # fan-in 3 never drawn at v2
    sites = shadow_bn_sites(net)
    assert [(name, cell, len(e)) for name, cell, e in sites] == [("cells.0.v2", 0, 3), ("cells.0.v3", 0, 2)]
    notes = []
    stats = compute_sbn_stats(net, log=notes.append)
    assert sorted(stats.groupby("site")["k"].max().items()) == [("cells.0.v2", 2), ("cells.0.v3", 2)]
    assert notes == ["1 of 5 shadow BNs never saw a batch (a k the training never drew there) and are left out: "
                     "cells.0.v2.fan_in_3"]
    by_site = sbn_comparison(stats, per_site=True)
    assert set(by_site["site"]) == {"cells.0.v2", "cells.0.v3"}
    mean = by_site[by_site["stat"] == "running_mean"]
    np.testing.assert_allclose(mean["slope"], 2.0) and (mean["verdict"] == "holds").all()


@pytest.mark.parametrize("space,variant", [(s, v) for s in list_spaces() for v in list_variants(s)])
def test_shadow_bns_are_found_on_every_space(space, variant):
    """Every variant the registry calls shadow-BN has sites in every cell of its supernet, each
    compared with its own single-input BN; the others have none."""
    torch.manual_seed(0)
    net = create_supernet(space, variant, width=8, stacks=1, cells_per_stack=2).train()
    assert has_shadow_bns(net) == (variant in shadow_bn_variants(space))
    if variant not in shadow_bn_variants(space):
        return
    rng = random.Random(0)
    with torch.no_grad():
        for _ in range(6):
            net(_images(2, side=8), net.space.sample(rng))
    notes = []
    stats = compute_sbn_stats(net, log=notes.append)
    assert set(stats["cell"]) == {0, 1}
    if stats["k"].max() < 2:  # nb1shot1-1: a vertex is fed by one input (block 1) or always by two
        assert any("without a trained single-input BN" in n for n in notes), notes
    for site, g in stats[stats["stat"] == "running_mean"].groupby("site"):
        ones = g[g["k"] == 1].groupby("bn")["value"].apply(np.asarray)
        ref = g.groupby("bn")["ref"].apply(np.asarray).iloc[0]
        np.testing.assert_allclose(np.mean(np.stack(list(ones)), axis=0), ref, rtol=1e-12, err_msg=site)


def test_sbn_stats_need_shadow_bns():
    with pytest.raises(ValueError, match="no shadow BNs"):
        compute_sbn_stats(_net("bn"))
    assert shadow_bn_sites(_net("scale")) == []


# -- tables from scores and logs ------------------------------------------------------------
def test_rank_agreement_and_distribution_tables():
    scores = _synthetic_scores()
    scores.loc[0, "truth"] = np.nan  # a subnet without a truth is left out, not ranked
    r = compute_rank_agreement(scores)
    assert set(r["calibration"]) == {"no_calib", "calib"}
    assert (r["n"] == 254).all()
    assert r["score"].max() > 1.0 and r["truth"].max() > 1.0  # percent
    np.testing.assert_allclose(r["truth_std"], 0.2)
    d = compute_accuracy_by_group(scores.assign(variant="bn", run="r1"))
    assert len(d) == 2 * 255 and set(d["num_paths"]) == {1, 2, 3, 4} and set(d["group"]) == {variant_label("bn")}
    # another space's column; a report without calibration has one panel
    other = scores.assign(num_edges=scores["num_paths"] * 2, acc_calib=np.nan)
    d = compute_accuracy_by_group(other, by="num_edges")
    assert set(d["num_edges"]) == {2, 4, 6, 8} and set(d["calibration"]) == {"no_calib"}
    t = compute_training_curves(_synthetic_log())
    assert t["train_acc"].max() == pytest.approx(60.0)


# -- style: the variant registry is the one source --------------------------------------------
@pytest.mark.parametrize("variant", list_variants())
def test_labels_and_colours_come_from_the_registry(variant):
    info = variant_info(variant)
    assert variant_label(variant) == info.label and variant_color(variant) == info.colour


def test_registry_colours_differ_and_order_is_the_registrys():
    names = list_variants()
    assert len({variant_color(v) for v in names}) == len(names)
    assert order_variants(list(reversed(names)) + ["zz-new"]) == names + ["zz-new"]
    assert variant_color("zz-new") == variant_color("zz-new") and variant_label("zz-new") == "zz-new"


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
    for cell in net.cells:
        for _, bn in _shadow(cell, "esbn"):
            bn.num_batches_tracked.fill_(1)
    stats = compute_sbn_stats(net, cells=[1])
    stats = stats[stats["stat"].isin(["running_mean", "gamma"]) & (stats["k"] <= 2)]
    paths = save_figure(plot_sbn_stats(stats, cell=1, ref_name="mean of the 1-input BNs"), tmp_path / "sub" / "sbn",
                        stats)
    _check_files(paths, "sbn")
    pd.testing.assert_frame_equal(pd.read_csv(paths[2]), stats.reset_index(drop=True), check_dtype=False)


def _cfg(variant: str, seed: int = 1, m: int = 2, **overrides) -> RunConfig:
    return apply_overrides(RunConfig(preset="test"), {"model.variant": variant, "model.width": 8,
                                                      "model.cells_per_stack": 1, "space.m": m, "train.seed": seed,
                                                      **overrides})


def _add_report(d, cfg, *, calibrate: bool = True, seed: int = 0) -> str:
    setup = report_setup(cfg, calibrate=calibrate, truth_digest="t")
    name = report_name(setup)
    r = d / "reports" / name
    r.mkdir(parents=True)
    (r / "metrics.json").write_text(json.dumps({"report": name, "setup": setup, "config": cfg.to_dict(),
                                                "metrics": {}}))
    scores = _synthetic_scores(seed, cfg.space.m)
    if not calibrate:
        scores["acc_calib"] = np.nan
    scores.to_csv(r / "scores.csv", index=False)
    return name


def _fake_run(root, variant: str, seed: int = 1, m: int = 2, trained: bool = True, scored: bool = True,
              **overrides):
    """A run directory as training and scoring leave it, with a tiny supernet whose BNs saw
    a few batches of every subnet (m = 2 keeps the figures small, so the test is fast);
    ``trained=False``: a report only."""
    cfg = _cfg(variant, seed, m, **overrides)
    tag = "-".join(f"{k.split('.')[-1]}{v}" for k, v in overrides.items())
    d = root / f"{variant}-test-m{m}-seed{seed}{'-' + tag if tag else ''}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    if trained:
        torch.manual_seed(seed)
        net = create_supernet("s4", variant, m=m, **TINY).train()
        with torch.no_grad():
            for arch in create_space("s4", m=m).candidates():
                net(_images(2, seed=seed), arch)
        torch.save(net.state_dict(), d / "supernet.pt")
        from rankbench.training.tau_table import TAU_CSV, write_tau_table

        # a made-up tau table (figure plumbing only: no number here is a measurement)
        write_tau_table(d / TAU_CSV, [{"epoch": e, "setting": s, "kendall_tau": 0.1 * e, "ci_low": 0.1 * e - 0.1,
                                       "ci_high": 0.1 * e + 0.2, "spearman": 0.2, "n": 15}
                                      for e in (1, 2) for s in ("no_calib", "calib")]
                        + [{"epoch": None, "setting": "ref_params", "kendall_tau": 0.3, "ci_low": 0.1,
                            "ci_high": 0.5, "spearman": 0.4, "n": 15}])
        (d / "train_done.json").write_text("{}")
        _synthetic_log().to_csv(d / "train_log.csv", index=False)
    if scored:
        _add_report(d, cfg, seed=seed)
    return d


def test_make_figures_on_run_dirs(tmp_path, monkeypatch):
    import rankbench.figures.cosine as cosine

    monkeypatch.setattr(cosine, "feature_images", lambda cfg, n: _images(min(n, 4)))
    runs = [_fake_run(tmp_path / "runs", "lsbn"), _fake_run(tmp_path / "runs", "bn", trained=False)]
    report = next((runs[0] / "reports").iterdir()).name
    notes = []
    paths = make_figures(runs, tmp_path / "fig", cell=1, per_run=True, log=notes.append)
    rel = {str(p.relative_to(tmp_path / "fig")) for p in paths}
    lsbn, bn = runs[0].name, runs[1].name
    for stem in ("training_curves", f"{report}/rank_agreement", f"{report}/accuracy_by_num_paths", "cosine_cell1",
                 "sbn_stats_cell1"):
        assert {f"{lsbn}/{stem}.{e}" for e in ("png", "pdf", "csv")} <= rel
    assert f"{lsbn}/sbn_comparison.csv" in rel
    sbn = pd.read_csv(tmp_path / "fig" / lsbn / "sbn_comparison.csv")
    assert {"pearson_r", "rel_mean_abs_diff", "slope", "verdict", "statement"} <= set(sbn.columns)
    assert set(sbn["k"]) == {2} and sbn["statement"].str.contains("SBN_2").all()
    # the scores-only run gets what its files allow, and says what it skipped
    assert {r.split("/")[-1].split(".")[0] for r in rel if r.startswith(bn)} == {"rank_agreement",
                                                                                    "accuracy_by_num_paths"}
    assert any("supernet.pt" in n for n in notes) and any("train_log.csv" in n for n in notes)
    assert {"accuracy_by_num_paths.png", "accuracy_by_num_paths.csv"} <= rel  # across runs
    assert "training_curves.pdf" not in rel  # one trained run: nothing to compare
    acc = pd.read_csv(tmp_path / "fig" / "accuracy_by_num_paths.csv")
    assert set(acc["variant"]) == {"lsbn", "bn"} and set(acc["report"]) == {report}
    assert set(acc["group"]) == {"LSBN (seed 1)", "BN (seed 1)"}
    ra = pd.read_csv(tmp_path / "fig" / lsbn / report / "rank_agreement.csv")
    assert set(ra["report"]) == {report}  # the CSV names the report it read
    assert all(p.exists() for p in paths)
    cos = pd.read_csv(tmp_path / "fig" / lsbn / "cosine_cell1.csv")
    assert list(cos["feature"]) == ["3-", "1-", "m-", "-3", "-1", "-m", "33", "31"]


def test_runs_of_different_configs_are_not_pooled(tmp_path):
    """A 1-epoch and a 20-epoch LSBN run are refused, or with allow_mixed drawn as two
    labelled groups, never as one "LSBN (2 runs)"."""
    runs = [_fake_run(tmp_path / "runs", "lsbn", seed=1, trained=False, **{"train.epochs": 1}),
            _fake_run(tmp_path / "runs", "lsbn", seed=2, trained=False, **{"train.epochs": 20})]
    with pytest.raises(MixedConfigError, match="differ in train.epochs") as e:
        make_figures(runs, tmp_path / "fig")
    assert "--allow-mixed" in str(e.value) and runs[0].name in str(e.value)
    assert not (tmp_path / "fig").exists()  # refused before writing anything
    comparison_figures(runs, tmp_path / "fig", allow_mixed=True)
    groups = set(pd.read_csv(tmp_path / "fig" / "accuracy_by_num_paths.csv")["group"])
    assert groups == {"LSBN (seed 1, train.epochs=1)", "LSBN (seed 2, train.epochs=20)"}


def test_groups_pool_seeds_and_ignore_what_cannot_change_a_number(tmp_path):
    cfgs = [_cfg("lsbn", 1), _cfg("lsbn", 2, **{"train.device": "cpu", "train.num_threads": 3}),
            _cfg("lsbn", 3, **{"train.checkpoint_interval_s": 0.0, "train.tensorboard": True}), _cfg("bn", 1)]
    runs = [tmp_path / f"r{i}" for i in range(4)]
    groups = group_runs(runs, cfgs)
    assert [g.label for g in groups] == ["BN (seed 1)", "LSBN (3 seeds)"]  # the registry's order
    assert groups[1].runs == tuple(runs[:3]) and groups[1].seeds == (1, 2, 3)
    with pytest.raises(MixedConfigError, match="model.width"):
        group_runs(runs[:2], [cfgs[0], _cfg("lsbn", 2, **{"model.width": 16})])
    mixed = group_runs(runs[:2], [cfgs[0], _cfg("lsbn", 1, **{"model.width": 16})], allow_mixed=True)
    assert [g.label for g in mixed] == ["LSBN (seed 1, model.width=16)", "LSBN (seed 1, model.width=8)"]


def test_reports_are_chosen_named_and_not_mixed(tmp_path):
    run = _fake_run(tmp_path / "runs", "lsbn", trained=False)
    cfg = _cfg("lsbn")
    paper = _add_report(run, apply_overrides(cfg, {"score.protocol": "paper"}), calibrate=False, seed=5)
    clean = next(p.name for p in (run / "reports").iterdir() if p.name != paper)
    with pytest.raises(ReportError, match="holds 2 reports") as e:
        make_figures([run], tmp_path / "fig")
    assert paper in str(e.value) and clean in str(e.value)
    assert not (tmp_path / "fig").exists()
    paths = make_figures([run], tmp_path / "fig", report="paper")
    assert {p.parent.name for p in paths} == {paper}
    acc = pd.read_csv(tmp_path / "fig" / run.name / paper / "accuracy_by_num_paths.csv")
    assert set(acc["report"]) == {paper} and set(acc["calibration"]) == {"no_calib"}
    with pytest.raises(ReportError, match="no report match"):
        make_figures([run], tmp_path / "fig", report="nope")
    # two runs, each with its only report, of different setups: refused unless allowed, then labelled
    a = _fake_run(tmp_path / "other", "lsbn", trained=False)
    b = _fake_run(tmp_path / "other", "bn", trained=False, scored=False)
    _add_report(b, apply_overrides(_cfg("bn"), {"score.protocol": "paper"}))
    with pytest.raises(MixedConfigError, match="report.protocol"):
        comparison_figures([a, b], tmp_path / "cmp")
    comparison_figures([a, b], tmp_path / "cmp", allow_mixed=True)
    acc = pd.read_csv(tmp_path / "cmp" / "accuracy_by_num_paths.csv")
    labels = sorted(set(acc["group"]))
    assert labels == ["BN (seed 1, report.protocol=paper)", "LSBN (seed 1, report.protocol=clean)"]


def test_accuracy_by_the_spaces_column(tmp_path, monkeypatch):
    """A space whose group column is not num_paths (as nb101's) gets accuracy by that column."""
    import rankbench.figures._runs as runs_mod

    run = _fake_run(tmp_path / "runs", "lsbn", trained=False)
    rep = next((run / "reports").iterdir())
    scores = pd.read_csv(rep / "scores.csv")
    scores.assign(num_edges=scores["num_paths"] + 3).to_csv(rep / "scores.csv", index=False)
    monkeypatch.setattr(runs_mod, "space_of", lambda cfg: SimpleNamespace(group_column="num_edges"))
    paths = make_figures([run], tmp_path / "fig")
    assert {p.stem for p in paths} == {"rank_agreement", "accuracy_by_num_edges"}
    acc = pd.read_csv(tmp_path / "fig" / run.name / rep.name / "accuracy_by_num_edges.csv")
    assert set(acc["num_edges"]) == {4, 5}


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
    err = capsys.readouterr().err
    assert "does not exist" in err or "no such run directory" in err
    assert not (tmp_path / "figures").exists()


# -- the registry: every figure drawn on a tiny run ---------------------------------------------
DOCS = __import__("pathlib").Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Contexts of every scope on tiny inputs: a trained and scored LSBN run (m = 2), a scored
    and trained BN run beside it, and the shipped quick ablation's tables."""
    import shutil

    import rankbench.figures.cosine as cosine
    from rankbench.figures._context import AblationContext, RunContext, RunsContext, _Plan
    from rankbench.reports import load_report

    root = tmp_path_factory.mktemp("tiny")
    runs = [_fake_run(root / "runs", "lsbn"), _fake_run(root / "runs", "bn")]
    ctxs = [RunContext(d, load_report(d), cell=1, images=4) for d in runs]
    abl = root / "ablation"
    abl.mkdir()
    shutil.copy(DOCS / "ablation-quick.csv", abl / "ablation.csv")
    shutil.copy(DOCS / "ablation-quick-paired.csv", abl / "paired.csv")
    old = cosine.feature_images
    cosine.feature_images = lambda cfg, n: _images(min(n, 4))
    yield {"run": ctxs[0], "runs": RunsContext(ctxs, _Plan(runs, {c.path: c.report for c in ctxs}, False)),
           "ablation": AblationContext(abl)}
    cosine.feature_images = old


@pytest.mark.parametrize("name", list_figures())
def test_every_registered_figure_draws_on_a_tiny_run(name, tiny, tmp_path):
    """The contract of a registered figure: it applies to a run that has what it needs, writes
    a PNG and a PDF (and a CSV of its numbers) whose names the registry maps back to it, and
    says what it is in one line."""
    spec = get_figure(name)
    ctx = tiny[spec.scope]
    assert spec.doc and spec.scope in SCOPES
    assert spec.applies(ctx), spec.why_not(ctx)
    paths = spec(ctx, tmp_path)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert all(p.with_suffix(".pdf") in paths for p in pngs)
    assert all(figure_of_file(p, spec.scope) is spec for p in pngs)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_registry_orders_figures_and_refuses_bad_entries():
    assert [get_figure(n).scope for n in list_figures()] == sorted((get_figure(n).scope for n in list_figures()),
                                                                   key=SCOPES.index)
    assert list_figures("run")[:2] == ["training_curves", "rank_agreement"]  # the page's order
    with pytest.raises(ValueError, match="scope must be one of"):
        register_figure("x", "everything")
    with pytest.raises(ValueError, match="registered twice"):
        register_figure("rank_agreement", "run")(lambda ctx, out: [])
    with pytest.raises(KeyError, match="unknown figure 'nope'; known:"):
        get_figure("nope")


def test_figures_that_do_not_apply_say_why(tmp_path):
    from rankbench.figures import draw_figure
    from rankbench.figures._context import RunContext

    run = _fake_run(tmp_path / "runs", "bn", trained=False, scored=False)
    ctx = RunContext(run)
    notes = []
    for name in list_figures("run"):
        assert draw_figure(name, ctx, tmp_path / "out", notes.append) == []
    assert not (tmp_path / "out").exists()
    assert any("no train_log.csv" in n for n in notes) and any("no report" in n for n in notes)
    assert any("no trained supernet" in n for n in notes)


# -- rank agreement: the report's own keep rule, interval and reference rankers -----------------
def _paper_run(root, kept_column: bool):
    from rankbench.scoring import get_protocol

    cfg = get_protocol("paper").apply(_cfg("lsbn", m=4, **{"score.protocol": "paper"}))
    run = _fake_run(root, "lsbn", m=4, trained=False, scored=False)
    setup = report_setup(cfg, calibrate=True, truth_digest="t")
    r = run / "reports" / report_name(setup)
    r.mkdir(parents=True)
    scores = _synthetic_scores(3, m=4)
    keep = np.ones(len(scores), dtype=bool)
    keep[np.argsort(scores["acc_no_calib"].to_numpy(), kind="stable")[:30]] = False
    if kept_column:
        scores["kept"] = keep
    metrics = {"metrics": {"no_calib": {"per_subnet": {"kendall_tau_ci": [0.1, 0.2]}}, "calib": {}},
               "references": {"params": {"description": "parameters",
                                         "per_subnet": {"kendall_tau": 0.4, "kendall_tau_ci": [0.3, 0.5]}}}}
    (r / "metrics.json").write_text(json.dumps({"report": r.name, "setup": setup, "config": cfg.to_dict(), **metrics}))
    scores.to_csv(r / "scores.csv", index=False)
    return run, scores, keep


@pytest.mark.parametrize("kept_column", [True, False])
def test_rank_agreement_of_a_paper_report_uses_its_keep_rule(tmp_path, kept_column):
    """A paper report ranks all but the 30 lowest by uncalibrated accuracy: the figure's tau is
    over those, both with and without calibration, whether scores.csv carries ``kept`` or not."""
    from rankbench.figures import run_figures
    from rankbench.metrics import kendall_tau

    run, scores, keep = _paper_run(tmp_path / "runs", kept_column)
    paths = run_figures(run, tmp_path / "fig", names=["rank_agreement"])
    ra = pd.read_csv(next(p for p in paths if p.name == "rank_agreement.csv"))
    for calib, col in (("no_calib", "acc_no_calib"), ("calib", "acc_calib")):
        d = ra[ra["calibration"] == calib]
        want = kendall_tau(scores.loc[keep, col], scores.loc[keep, "truth"])
        assert d["kendall_tau"].iloc[0] == pytest.approx(want)
        assert d["n"].iloc[0] == 255 - 30 and d["n_dropped"].iloc[0] == 30 and (~d["kept"]).sum() == 30
        assert d["kendall_tau"].iloc[0] != pytest.approx(kendall_tau(scores[col], scores["truth"]))
    nc = ra[ra["calibration"] == "no_calib"]
    assert (nc["tau_ci_low"] == 0.1).all() and (nc["tau_ci_high"] == 0.2).all()  # the report's interval
    assert ra.loc[ra["calibration"] == "calib", "tau_ci_low"].isna().all()


def test_rank_agreement_keep_rule_edge_cases():
    scores = _synthetic_scores()
    scores["kept"] = ["True"] * 250 + ["False"] * 5  # read back as text from an older pandas
    r = compute_rank_agreement(scores)
    assert (r["n"] == 250).all()
    with pytest.raises(ValueError, match="keep mask has 3 values"):
        compute_rank_agreement(scores, keep=np.ones(3, dtype=bool))
    scores["kept"] = "maybe"
    with pytest.raises(ValueError, match="not booleans"):
        compute_rank_agreement(scores)


# -- titles say what a figure's runs are ---------------------------------------------------------
def test_titles_say_unfinished_and_overridden(tmp_path):
    from rankbench.config import load_preset
    from rankbench.figures._context import RunContext, status_note

    quick = load_preset("quick")
    assert status_note(quick) == ""
    assert status_note(apply_overrides(quick, {"train.device": "cpu", "model.variant": "bn", "train.seed": 3})) == ""
    note = status_note(apply_overrides(quick, {"train.epochs": 2}), finished=False, epochs_done=1)
    assert note == "UNFINISHED (1 of 2 epochs); overrides preset quick: train.epochs=2"
    from rankbench.scoring import get_protocol

    paper = get_protocol("paper").apply(apply_overrides(quick, {"score.protocol": "paper"}))
    assert status_note(paper) == "overrides preset quick: score.protocol=paper"  # not its 1000 candidates
    run = _fake_run(tmp_path / "runs", "bn", trained=False, scored=False)
    (run / "config.json").write_text(json.dumps(apply_overrides(quick, {"model.width": 8}).to_dict()))
    _synthetic_log(3).to_csv(run / "train_log.csv", index=False)  # no train_done.json: still training
    title = RunContext(run).title("Supernet training")
    assert "UNFINISHED (3 of 20 epochs)" in title and "overrides preset quick: model.width=8" in title


# -- training curves: mean and band per group ----------------------------------------------------
def test_training_curves_are_a_mean_and_band_per_group():
    from rankbench.figures.ranking import summarize_training_curves

    logs = [_synthetic_log(4).assign(run=f"r{i}", variant="lsbn", group="LSBN (3 seeds)",
                                     train_loss=lambda d, i=i: d["train_loss"] + i) for i in range(3)]
    logs.append(_synthetic_log(2).assign(run="b", variant="bn", group="BN (seed 1)"))
    s = summarize_training_curves(compute_training_curves(pd.concat(logs)))
    lsbn = s[s["group"] == "LSBN (3 seeds)"]
    assert list(lsbn["n_runs"]) == [3] * 4
    np.testing.assert_allclose(lsbn["train_loss_mean"], 2.0 / np.arange(1, 5) + 1.0)
    np.testing.assert_allclose(lsbn["train_loss_sd"], 1.0)
    assert s.loc[s["group"] == "BN (seed 1)", "train_loss_sd"].isna().all()


# -- shadow BNs whose affine parameters never moved ----------------------------------------------
def test_sbn_gamma_beta_still_at_init_are_untrained_not_unrelated():
    net = _net("lsbn", m=4)
    rng = np.random.default_rng(4)
    cell = net.cells[0]
    ch = cell.norm.sbn[0].num_features
    mean, var = rng.normal(0, 1, ch), rng.uniform(0.5, 2, ch)
    for k, bn in _shadow(cell, "lsbn"):
        trained = k != 2  # SBN_2 saw batches (running statistics) but its gamma / beta never moved
        g = 1 + rng.normal(0, 0.05, ch) if trained else np.ones(ch)
        b = rng.normal(0, 0.1, ch) if trained else np.zeros(ch)
        _set_bn(bn, k * mean, k * k * var, g, b)
    table = sbn_comparison(compute_sbn_stats(net, cells=[0])).set_index(["k", "stat"])
    for stat, init in (("gamma", "1"), ("beta", "0")):
        assert table.loc[(2, stat), "verdict"] == "untrained"
        assert f"stayed at its initial {init}: never trained" in table.loc[(2, stat), "statement"]
        assert table.loc[(3, stat), "verdict"] == "unrelated"  # trained, independent draws
    assert table.loc[(2, "running_var"), "verdict"] == "holds"
    # the reference untrained: every comparison of gamma says so
    with torch.no_grad():
        cell.norm.sbn[0].weight.fill_(1.0)
    table = sbn_comparison(compute_sbn_stats(net, cells=[0])).set_index(["k", "stat"])
    assert (table.xs("gamma", level="stat")["verdict"] == "untrained").all()
    assert "reference (SBN_1) stayed at its initial 1" in table.loc[(3, "gamma"), "statement"]


# -- many runs: comparisons by default, per-run figures on request -------------------------------
def test_many_runs_draw_the_comparisons_only_unless_per_run(tmp_path):
    runs = [_fake_run(tmp_path / "runs", v, seed=s, trained=False) for v in ("bn", "lsbn") for s in (1, 2)]
    for d in runs:
        _synthetic_log().to_csv(d / "train_log.csv", index=False)
    notes = []
    paths = make_figures(runs, tmp_path / "fig", log=notes.append, progress=False)
    assert {p.relative_to(tmp_path / "fig").parent for p in paths} == {__import__("pathlib").Path(".")}
    assert {p.stem for p in paths} == {"accuracy_by_num_paths", "training_curves"}
    assert any("--per-run" in n for n in notes)
    curves = pd.read_csv(tmp_path / "fig" / "training_curves.csv")
    assert set(curves["n_runs"]) == {2} and set(curves["group"]) == {"BN (2 seeds)", "LSBN (2 seeds)"}
    acc = pd.read_csv(tmp_path / "fig" / "accuracy_by_num_paths.csv")
    assert acc["run"].nunique() == 4
    from rankbench.cli import main

    assert main(["figures", str(runs[0]), str(runs[1]), "--per-run", "--out", str(tmp_path / "cli")]) == 0
    assert {p.name for p in (tmp_path / "cli").iterdir() if p.is_dir()} == {runs[0].name, runs[1].name}


# -- the ablation figures -------------------------------------------------------------------------
def test_ablation_tables_for_the_forest_plots():
    from rankbench.figures.ablation import compute_ablation_tau, compute_paired_differences

    tau = compute_ablation_tau(pd.read_csv(DOCS / "ablation-quick.csv"))
    row = tau[(tau["variant"] == "bn") & (tau["calibration"] == "no_calib") & (tau["level"] == "subnet")].iloc[0]
    assert row["tau"] == pytest.approx(0.0435405) and row["n_seeds"] == 5  # docs/ablation-quick.csv of 22729f4
    half = 2.7764451 * row["sd"] / np.sqrt(5)  # t(0.975, 4)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((row["tau"] - half, row["tau"] + half))
    refs = tau[tau["kind"] == "reference"]
    assert set(refs["variant"]) == {"params", "flops"} and (refs["calibration"] == "").all()
    paired = compute_paired_differences(pd.read_csv(DOCS / "ablation-quick-paired.csv"))
    assert paired["section"].value_counts().to_dict() == {"no calibration": 10, "BN calibration": 10,
                                                          "calibration vs none": 5}
    md = (DOCS / "ablation-quick.md").read_text()
    assert int(paired["excludes_zero"].sum()) == md.split("Paired differences")[1].count(" * |")
    one_seed = pd.DataFrame([{"variant": "lsbn", "calibration": True, "n_seeds": 1, "kendall_tau_subnet": 0.3,
                              "kendall_tau_subnet_std": np.nan, "kendall_tau_subnet_ci_low": 0.2,
                              "kendall_tau_subnet_ci_high": 0.4}])
    r = compute_ablation_tau(one_seed).iloc[0]
    assert (r["ci_low"], r["ci_high"], r["interval"]) == (0.2, 0.4, "95% bootstrap")
