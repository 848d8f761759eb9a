"""Ranking metrics: against scipy, on hand-computed tiny cases, and on their error cases."""
from __future__ import annotations

import itertools
import math
import time
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

import rankbench.metrics as M
from rankbench.metrics import (
    METRICS,
    best_rank_at_k,
    bootstrap_ci,
    group_mean,
    kendall_tau,
    list_metrics,
    paired_difference,
    pearson,
    precision_at_10_naslib,
    precision_at_k,
    precision_at_k_awnas,
    rank_metrics,
    spearman,
    split_half_reliability,
    top1_regret,
    worst_rank_at_k,
)


def _sample(n: int, ties: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values on both sides, like isomorphic subnets / coarse accuracies
        x = rng.integers(0, 6, n).astype(float)
        y = np.round(x + rng.normal(0, 2, n))
    else:
        x = rng.normal(size=n)
        y = x + rng.normal(size=n)
    return x, y


# -- against scipy -------------------------------------------------------------------------
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [3, 4, 7, 30, 255, 3000])
def test_correlations_match_scipy(n: int, ties: bool) -> None:
    for seed in range(3):
        x, y = _sample(n, ties, seed)
        assert kendall_tau(x, y) == pytest.approx(
            stats.kendalltau(x, y, variant="b").statistic, abs=1e-12, nan_ok=True)
        assert spearman(x, y) == pytest.approx(
            stats.spearmanr(x, y).statistic, abs=1e-12, nan_ok=True)
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_kendall_heavy_ties_and_reversal() -> None:
    x = np.repeat([1.0, 2.0, 3.0], 5)
    y = np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 3)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    z = np.arange(10.0)
    assert kendall_tau(z, -z) == -1.0
    assert kendall_tau(z, z) == 1.0


# -- hand-computed tiny cases --------------------------------------------------------------
def test_kendall_by_hand() -> None:
    # 6 pairs; only (idx1, idx2) is discordant (scores 2<3, truth 3>2): (5 - 1) / 6 = 2/3
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # scores [1,2,2,3], truth [1,2,3,3]: pairs (0,1) (0,2) (0,3) (1,3) concordant, none
    # discordant; (1,2) tied in scores, (2,3) tied in truth. n0 = 6, n1 = n2 = 1:
    # tau_b = 4 / sqrt(5 * 5) = 0.8
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)


def test_spearman_by_hand() -> None:
    # ranks equal the values; d = [0, 1, 1, 0]; rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties: scores [1,1,2] -> ranks [1.5,1.5,3]; truth [1,2,3] -> [1,2,3].
    # centred: [-0.5,-0.5,1] and [-1,0,1]; cov = 0.5 + 0 + 1 = 1.5;
    # norms sqrt(0.25+0.25+1) = sqrt(1.5) and sqrt(2): rho = 1.5 / sqrt(3) = 0.8660
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3))


def test_pearson_by_hand() -> None:
    # x = [1,2,3] centred [-1,0,1]; y = [1,2,4], mean 7/3, centred [-4/3,-1/3,5/3]
    # cov sum = 4/3 + 0 + 5/3 = 3; sum dx^2 = 2; sum dy^2 = (16+1+25)/9 = 14/3
    # r = 3 / sqrt(2 * 14/3) = 3 / sqrt(28/3)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(28 / 3))


def test_correlations_undefined_on_constant_input() -> None:
    for fn in (kendall_tau, spearman, pearson):
        assert math.isnan(fn([1.0, 1.0, 1.0, 1.0], [1, 2, 3, 4]))
        assert math.isnan(fn([1, 2, 3, 4], [0.1] * 4))


def test_precision_by_hand() -> None:
    # n = 10, k = 0.2 -> K = 2. Predicted top 2: idx 9, 8. True top 2: idx 9 (truth 9)
    # and idx 0 (truth 8.5). One of two shared -> 0.5
    scores = np.arange(10.0)
    truth = np.array([8.5, 1, 2, 3, 4, 5, 6, 7, 0, 9])
    assert precision_at_k(scores, truth, k=0.2) == 0.5
    assert precision_at_k(scores, scores, k=0.2) == 1.0
    assert precision_at_k(scores, -scores, k=0.2) == 0.0
    assert precision_at_k(scores, truth, k=1.0) == 1.0  # K = n: everything is in both


def test_precision_ties_are_broken_at_random_in_expectation() -> None:
    # n = 4, k = 0.5 -> K = 2. Scores: idx0 = 3 is in; idx1, idx2 tie at 2 for one seat.
    # True top 2: idx0, idx1. A coin picks idx1 (overlap 2 -> 1.0) or idx2 (overlap 1 -> 0.5):
    # expected precision 0.75
    assert precision_at_k([3, 2, 2, 0], [4, 3, 1, 2], k=0.5) == pytest.approx(0.75)
    # constant scores: each of 4 candidates is in the predicted top 2 with prob 1/2;
    # overlap expectation 2 * 1/2 = 1 of K = 2 -> 0.5 (what random guessing gets)
    assert precision_at_k([1, 1, 1, 1], [4, 3, 2, 1], k=0.5) == pytest.approx(0.5)


def test_precision_k_rounding() -> None:
    # n = 25, k = 0.1: K = round(2.5) = 3 (halves up; Python's round would give 2).
    # scores = truth except idx 22 (3rd best by truth) is scored lowest; predicted top 3:
    # idx 24, 23, 21; true top 3: idx 24, 23, 22 -> 2 / 3. With K = 2 it would be 1.0.
    truth = np.arange(25.0)
    scores = truth.copy()
    scores[22] = -1
    assert precision_at_k(scores, truth, k=0.1) == pytest.approx(2 / 3)
    # n = 4, k = 0.1: K = max(1, round(0.4)) = 1; top-scored idx 3 is the true best -> 1.0
    assert precision_at_k([1, 2, 3, 4], [1, 2, 3, 4], k=0.1) == 1.0


def test_best_worst_rank_by_hand() -> None:
    # n = 5, k = 0.4 -> K = 2: supernet's top 2 = idx0 (0.9), idx1 (0.8).
    # True ranks: 90 (idx1) -> 1, 80 (idx2) -> 2, 70 (idx0) -> 3, 60 -> 4, 50 -> 5.
    # BR = min(3, 1) = 1 (20 %), WR = max(3, 1) = 3 (60 %)
    scores = [0.9, 0.8, 0.1, 0.2, 0.5]
    truth = [70, 90, 80, 60, 50]
    assert best_rank_at_k(scores, truth, k=0.4) == 1.0
    assert worst_rank_at_k(scores, truth, k=0.4) == 3.0
    assert best_rank_at_k(scores, truth, k=0.4, percentile=True) == pytest.approx(20.0)
    assert worst_rank_at_k(scores, truth, k=0.4, percentile=True) == pytest.approx(60.0)


def test_best_worst_rank_ties() -> None:
    # Truth ties use the competition rank: truth [5, 5, 3, 1] -> ranks [1, 1, 3, 4].
    # k = 0.25 -> K = 1; top-scored is idx1 -> BR = WR = 1
    assert best_rank_at_k([0, 9, 1, 2], [5, 5, 3, 1], k=0.25) == 1.0
    assert worst_rank_at_k([0, 9, 1, 2], [5, 5, 3, 1], k=0.25) == 1.0
    # Score ties at the cut are all in the top K: scores [2, 2, 1, 0], K = 1 -> idx0 and
    # idx1 both count; truth [1, 4, 3, 2] -> their true ranks 4 and 1: BR = 1, WR = 4
    assert best_rank_at_k([2, 2, 1, 0], [1, 4, 3, 2], k=0.25) == 1.0
    assert worst_rank_at_k([2, 2, 1, 0], [1, 4, 3, 2], k=0.25) == 4.0
    # constant scores: the whole set is the top K
    assert worst_rank_at_k([1, 1, 1], [3, 2, 1], k=0.1) == 3.0


def test_top1_regret_by_hand() -> None:
    # best truth 95; top score 0.9 is shared by idx1 (90) and idx2 (92): mean 91 -> 4
    assert top1_regret([0.5, 0.9, 0.9, 0.1], [95, 90, 92, 80]) == pytest.approx(4.0)
    # the top-scored is the true best -> 0
    assert top1_regret([1, 2, 3], [10, 20, 30]) == 0.0
    # constant scores: mean of all truths (20) vs best (30) -> 10, a random pick's regret
    assert top1_regret([1, 1, 1], [10, 20, 30]) == pytest.approx(10.0)


# -- bootstrap -----------------------------------------------------------------------------
def test_bootstrap_deterministic_and_seed_dependent() -> None:
    x, y = _sample(60, False, 0)
    a = bootstrap_ci(kendall_tau, x, y, n_boot=300, seed=7)
    b = bootstrap_ci(kendall_tau, x, y, n_boot=300, seed=7)
    c = bootstrap_ci(kendall_tau, x, y, n_boot=300, seed=8)
    assert tuple(a) == tuple(b)
    assert tuple(a) != tuple(c)
    low, high = a  # unpacks as a plain (low, high) pair
    assert low < high and a.n_used == a.n_boot == 300


def test_bootstrap_ci_contains_point_estimate_on_correlated_sample() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=100)
    y = x + 0.3 * rng.normal(size=100)
    for fn in (kendall_tau, spearman, pearson, precision_at_k):
        low, high = bootstrap_ci(fn, x, y, n_boot=300)
        assert low <= fn(x, y) <= high
    assert bootstrap_ci(kendall_tau, x, y, n_boot=300).low > 0.5


@pytest.mark.parametrize("name", ["kendall_tau", "spearman", "pearson"])
@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_vectorised_equals_loop(name: str, ties: bool) -> None:
    # the same draws go through the multiplicity-weighted fast path and the plain loop
    x, y = _sample(40, ties, 1)
    fn = METRICS.get(name)
    fast = bootstrap_ci(name, x, y, n_boot=200, seed=2)
    slow = bootstrap_ci(lambda s, t: fn(s, t), x, y, n_boot=200, seed=2)
    assert fast.n_used == slow.n_used
    assert tuple(fast) == pytest.approx(tuple(slow), abs=1e-12)


def test_bootstrap_skips_undefined_resamples() -> None:
    # only idx 9 differs; resamples without it have constant scores (p = 0.9^10 ~ 0.35)
    scores = np.r_[np.zeros(9), 1.0]
    truth = np.arange(10.0)
    for fn in (kendall_tau, lambda s, t: kendall_tau(s, t), spearman, pearson):
        ci = bootstrap_ci(fn, scores, truth, n_boot=200)
        assert 0 < ci.n_used < 200
        assert np.isfinite(ci.low) and np.isfinite(ci.high)
    none = bootstrap_ci(kendall_tau, [1, 1, 1, 1], [1, 2, 3, 4], n_boot=20)
    assert none.n_used == 0 and math.isnan(none.low)


# -- rank_metrics --------------------------------------------------------------------------
def test_rank_metrics_keys_and_values() -> None:
    x, y = _sample(50, True, 4)
    r = rank_metrics(x, y, k=(0.1, 0.2), n_boot=100)
    assert r["n"] == 50 and r["n_dropped"] == 0
    assert r["kendall_tau"] == kendall_tau(x, y)
    assert r["precision_at_10"] == precision_at_k(x, y, k=0.1)
    assert r["worst_rank_at_20"] == worst_rank_at_k(x, y, k=0.2)
    assert r["best_rank_at_10_pct"] == pytest.approx(100 * best_rank_at_k(x, y, k=0.1) / 50)
    for key in ("kendall_tau", "spearman", "pearson", "top1_regret", "precision_at_20"):
        low, high = r[key + "_ci"]
        assert low <= high and r[key + "_ci_n"] <= 100
    assert r["precision_at_10_naslib"] == precision_at_10_naslib(x, y)
    assert r["truth_resampled"] is False and r["truth_noise"].startswith("not given")
    assert r["resampling_unit"] == "candidate" and r["n_classes"] == 50
    assert not any(key.endswith(("_ci_fixed_truth", "_truth_noise_share")) for key in r)
    assert r["kendall_tau_disattenuated"] is None and r["disattenuation"].startswith("none")
    bare = rank_metrics(x, y, ci=False)
    assert not any(key.endswith("_ci") for key in bare)
    assert rank_metrics(x, y, k=0.05, ci=False)["precision_at_5"] == precision_at_k(x, y, 0.05)


def test_rank_metrics_drop_lowest() -> None:
    # idx0 is scored lowest but is the true best: its 4 pairs are discordant, the other 6
    # concordant -> tau = (6 - 4) / 10 = 0.2; without it the ranking is perfect -> 1.0
    scores = [1, 2, 3, 4, 5]
    truth = [10, 2, 3, 4, 5]
    assert rank_metrics(scores, truth, ci=False)["kendall_tau"] == pytest.approx(0.2)
    r = rank_metrics(scores, truth, ci=False, drop_lowest=1)
    assert r["kendall_tau"] == 1.0 and r["n"] == 4 and r["n_dropped"] == 1
    with pytest.raises(ValueError, match="at least 3"):
        rank_metrics(scores, truth, drop_lowest=3)


# -- registry ------------------------------------------------------------------------------
def test_registry_lists_the_metrics() -> None:
    assert list_metrics() == [
        "kendall_tau", "spearman", "pearson", "precision_at_k", "precision_at_10_naslib",
        "best_rank_at_k", "worst_rank_at_k", "top1_regret",
    ]


@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_is_a_float_and_rejects_nan(name: str) -> None:
    x, y = _sample(20, False, 5)
    fn = METRICS.get(name)
    assert isinstance(fn(x, y), float) and math.isfinite(fn(x, y))
    y[[3, 11]] = np.nan
    with pytest.raises(ValueError, match=r"truth has 2 NaN/inf value\(s\) of 20, at index 3, 11"):
        fn(x, y)


# -- per hash class ------------------------------------------------------------------------
def test_group_mean() -> None:
    # group a: idx1, idx3 -> (2 + 4) / 2 = 3; group b: idx0, idx2 -> (1 + 3) / 2 = 2
    g, m = group_mean([1.0, 2.0, 3.0, 4.0], ["b", "a", "b", "a"])
    assert list(g) == ["a", "b"]
    assert m.tolist() == [3.0, 2.0]
    g, m = group_mean([5.0, 1.0, 2.0], [7, 7, 7])
    assert g.tolist() == [7] and m.tolist() == [pytest.approx(8 / 3)]
    with pytest.raises(ValueError, match="differ in length"):
        group_mean([1.0, 2.0], ["a"])
    with pytest.raises(ValueError, match="NaN"):
        group_mean([1.0, np.nan], ["a", "b"])


# -- errors --------------------------------------------------------------------------------
def test_input_errors() -> None:
    with pytest.raises(ValueError, match="scores has 1 NaN/inf value\\(s\\) of 4, at index 2"):
        kendall_tau([1, 2, np.nan, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="differ in length: 4 vs 3"):
        spearman([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError, match="a ranking needs at least 3"):
        pearson([1, 2], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        kendall_tau(np.ones((3, 2)), np.ones((3, 2)))
    for bad_k in (0, 1.5, 10, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            precision_at_k([1, 2, 3], [1, 2, 3], k=bad_k)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(kendall_tau, [1, 2, 3], [1, 2, 3], n_boot=0)
    with pytest.raises(KeyError, match="unknown metric"):
        bootstrap_ci("tau", [1, 2, 3], [1, 2, 3])


# -- exact per-class means -------------------------------------------------------------------
def _bincount_mean(values, groups) -> np.ndarray:
    """The old per-class mean (bincount sum / count): 1 ulp off for some constant classes."""
    _, inv = np.unique(groups, return_inverse=True)
    return np.bincount(inv, weights=values) / np.bincount(inv)


def _decimal_means(values, groups) -> dict:
    """Exact class means of the values read as the decimals they print as (Fractions)."""
    out: dict = {}
    for v, g in zip(values, groups):
        out.setdefault(g, []).append(Fraction(repr(float(v))))
    return {g: sum(vs) / len(vs) for g, vs in out.items()}


def _dense(exact: dict, keys) -> np.ndarray:
    order = sorted(set(exact.values()))
    return np.array([order.index(exact[k]) for k in keys], dtype=float)


def test_group_mean_is_exact_where_ties_matter() -> None:
    # a constant class keeps its value: 0.1 three times sums to 0.30000000000000004
    assert _bincount_mean([0.1] * 3, [0] * 3)[0] != 0.1  # what the old code gave
    g, m = group_mean([0.1, 0.1, 0.1, 0.1, 0.1], ["a", "a", "a", "b", "b"])
    assert m.tolist() == [0.1, 0.1]
    # 0.1 + 0.7 != 0.3 + 0.5 in floats, exactly or not; both means are 0.4 and must tie
    assert math.fsum([0.1, 0.7]) != math.fsum([0.3, 0.5])
    _, m = group_mean([0.1, 0.7, 0.3, 0.5], ["a", "a", "b", "b"])
    assert m[0] == m[1] == 0.4
    _, raw = group_mean([0.1, 0.7, 0.3, 0.5], ["a", "a", "b", "b"], decimals=None)
    assert raw[0] != raw[1]  # without rounding: the correctly rounded binary means differ
    # the order of a class's members does not matter
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 1000, 200) / 1000
    grp = rng.integers(0, 20, 200)
    perm = rng.permutation(200)
    assert group_mean(vals, grp)[1].tolist() == group_mean(vals[perm], grp[perm])[1].tolist()
    # against exact rational means
    exact = _decimal_means(vals, grp)
    u, m = group_mean(vals, grp)
    assert m.tolist() == [np.round(float(exact[k]), M.MEAN_DECIMALS) for k in u]


def _tie_breaking_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subnets in hash classes: truth constant per class (values whose bincount mean is off by
    an ulp for some class sizes), scores whose class means tie in decimal arithmetic only."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, 40)
    groups = np.repeat(np.arange(40), sizes)
    class_truth = rng.choice([0.1, 0.2, 0.35, 0.7], 40)
    truth = class_truth[groups]
    pairs = [(0.1, 0.7), (0.3, 0.5), (0.2, 0.6), (0.35, 0.45), (0.4, 0.4)]  # all mean 0.4
    scores = np.empty(groups.size)
    for c in range(40):
        members = np.flatnonzero(groups == c)
        if c % 2 == 0 and members.size == 2:
            scores[members] = pairs[rng.integers(len(pairs))]
        else:
            scores[members] = rng.integers(0, 10, members.size) / 10
    return scores, truth, groups


@pytest.mark.parametrize("seed", range(4))
def test_per_class_tau_and_spearman_match_scipy_on_exact_class_values(seed: int) -> None:
    scores, truth, groups = _tie_breaking_case(seed)
    u, gs = group_mean(scores, groups)
    _, gt = group_mean(truth, groups)
    es, et = _dense(_decimal_means(scores, groups), u), _dense(_decimal_means(truth, groups), u)
    assert kendall_tau(gs, gt) == pytest.approx(stats.kendalltau(es, et).statistic, abs=1e-12)
    assert spearman(gs, gt) == pytest.approx(stats.spearmanr(es, et).statistic, abs=1e-12)
    # the class values tie exactly where the exact ones do
    assert (_dense(dict(zip(u, gt)), u) == et).all() and (_dense(dict(zip(u, gs)), u) == es).all()


def test_the_tie_case_breaks_the_old_per_class_mean() -> None:
    """The cases above are ones the bincount mean gets wrong (else they would prove nothing)."""
    wrong = 0
    for seed in range(4):
        scores, truth, groups = _tie_breaking_case(seed)
        u = np.unique(groups)
        et = _dense(_decimal_means(truth, groups), u)
        es = _dense(_decimal_means(scores, groups), u)
        old = kendall_tau(_bincount_mean(scores, groups), _bincount_mean(truth, groups))
        wrong += old != pytest.approx(stats.kendalltau(es, et).statistic, abs=1e-12)
    assert wrong >= 2


# -- P@K as NASLib and aw_nas compute it ---------------------------------------------------
def _naslib_precision(ytest, test_pred, k: int = 10) -> float:
    """NASLib's PredictorEvaluator.compare, transcribed with Python lists."""
    top_ytest = [y > sorted(ytest)[max(-len(ytest), -k - 1)] for y in ytest]
    top_pred = [y > sorted(test_pred)[max(-len(test_pred), -k - 1)] for y in test_pred]
    return sum(a and b for a, b in zip(top_ytest, top_pred)) / k


def _awnas_precision(true_scores, predict_scores, ratio: float) -> float:
    """aw_nas's test_xk for one ratio, transcribed."""
    true_inds = np.argsort(true_scores)[::-1]
    reorder_predict = np.array(predict_scores)[true_inds]
    ranks = np.argsort(reorder_predict)[::-1]
    k = int(len(ranks) * ratio)
    return len(np.where(ranks[:k] < k)[0]) / float(k)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [3, 10, 11, 12, 57, 200])
def test_naslib_and_awnas_precision_match_their_code(n: int, ties: bool) -> None:
    for seed in range(5):
        x, y = _sample(n, ties, seed)
        assert precision_at_10_naslib(x, y) == _naslib_precision(list(y), list(x))
        assert precision_at_10_naslib(x, y, top=20) == _naslib_precision(list(y), list(x), k=20)
        if n >= 10:
            assert precision_at_k_awnas(x, y, 0.1) == _awnas_precision(y, x, 0.1)


def test_naslib_precision_by_hand() -> None:
    # n = 12: the top 10 by each side are everything above its 11th-highest value
    truth = np.arange(12.0)
    assert precision_at_10_naslib(truth, truth) == 1.0
    # two candidates tie at the cut of the scores: neither is in (strict >), one seat empty
    scores = truth.copy()
    scores[[1, 2]] = 1.5  # 11th-highest score is now 1.5: only idx 3..11 are above it
    assert precision_at_10_naslib(scores, truth) == pytest.approx(0.9)
    # ours breaks that tie at random in expectation; K = round(1.2) = 1 there, so compare K = 10
    assert precision_at_k(scores, truth, k=10 / 12) == pytest.approx(9.5 / 10)
    # n <= 10: everything above the minimum counts, still divided by 10
    assert precision_at_10_naslib([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="top"):
        precision_at_10_naslib([1, 2, 3], [1, 2, 3], top=0)
    assert math.isnan(precision_at_k_awnas([1, 2, 3], [1, 2, 3], 0.1))  # K = floor(0.3) = 0


# -- the truth's noise in the intervals ----------------------------------------------------
def _noisy_truth(n: int, n_cls: int, n_rep: int, noise: float, seed: int):
    """Candidates in hash classes with R noisy repeats per class (some missing), scores."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_cls, n)
    mu = rng.normal(size=n_cls)
    reps = np.round(mu[:, None] + rng.normal(0, noise, (n_cls, n_rep)), 3)
    if n_rep > 2:
        reps[rng.random((n_cls, n_rep)) < 0.2] = np.nan
        reps[:, 0] = np.round(mu + rng.normal(0, noise, n_cls), 3)
    truth = np.array([np.round(np.nanmean(r), 12) for r in reps])[groups]
    scores = np.round(mu[groups] + rng.normal(0, 1.0, n), 2)
    return scores, truth, reps[groups], groups


# -- the resampling unit: hash classes ------------------------------------------------------
#: intervals of the per-candidate bootstrap recorded before classes became the unit (seed 7,
#: 300 resamples, ``_sample``-like data below): groups=None must reproduce them exactly
_OLD_PAIRS_BOOTSTRAP = {
    False: {"kendall_tau": (0.771244517819798, 0.8675009390765193),
            "spearman": (0.919927021112562, 0.9725635057489554),
            "pearson": (0.94764335441992, 0.9782486461130274),
            "precision_at_k": (0.5, 1.0),
            "top1_regret": (0.0, 0.21956637358996267)},
    True: {"kendall_tau": (0.28515351176949144, 0.6154537003762053),
           "spearman": (0.36881842053532904, 0.749882548396087),
           "pearson": (0.4014735254383769, 0.7384050294010837),
           "precision_at_k": (0.0, 0.29743990384615365),
           "worst_rank_at_k": (14.475000000000001, 42.0)},
}


@pytest.mark.parametrize("ties", [False, True])
def test_without_groups_each_candidate_is_its_own_class(ties: bool) -> None:
    """groups=None is the old per-candidate (pairs) bootstrap, draw for draw."""
    if ties:
        rng = np.random.default_rng(4)
        x = rng.integers(0, 6, 50).astype(float)
        y = np.round(x + rng.normal(0, 2, 50))
    else:
        rng = np.random.default_rng(3)
        x = rng.normal(size=100)
        y = x + 0.3 * rng.normal(size=100)
    for name, old in _OLD_PAIRS_BOOTSTRAP[ties].items():
        new = bootstrap_ci(name, x, y, n_boot=300, seed=7)
        assert tuple(new) == pytest.approx(old, abs=1e-12), name
        # and groups that put every candidate in its own class (classes in candidate order) are the same
        ids = [f"hash{i:04d}" for i in range(x.size)]
        assert tuple(bootstrap_ci(name, x, y, n_boot=300, seed=7, groups=ids)) == tuple(new)
    # the draws: candidate indices uniform with replacement, n per resample, from default_rng(seed)
    idx = np.random.default_rng(7).integers(0, x.size, size=(300, x.size))
    naive = [stats.kendalltau(x[i], y[i]).statistic for i in idx]
    assert tuple(bootstrap_ci("kendall_tau", x, y, n_boot=300, seed=7)) == pytest.approx(
        tuple(np.nanquantile(naive, [0.025, 0.975])), abs=1e-12)


def _clustered(n_cls: int, seed: int, copy_noise: float = 0.3):
    """Classes of 1-14 isomorphic copies sharing one truth; scores = class value + copy noise."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 15, n_cls)
    g = np.repeat(np.arange(n_cls), sizes)
    mu = rng.normal(size=n_cls)
    s = np.round((mu + rng.normal(0, 0.7, n_cls))[g] + rng.normal(0, copy_noise, g.size), 4)
    return s, mu[g], g


def test_a_drawn_class_brings_all_its_candidates() -> None:
    s, t, g = _clustered(12, 0)
    index = np.arange(s.size, dtype=float)  # as scores, a resample reveals which candidates it holds
    seen = []
    bootstrap_ci(lambda a, b: seen.append(a.astype(int)) or 0.0, index, t, n_boot=40, seed=1, groups=g)
    sizes = np.bincount(g)
    for held in seen:
        mult = np.bincount(held, minlength=s.size)
        per_class = {c: set(mult[g == c]) for c in np.unique(g)}
        assert all(len(m) == 1 for m in per_class.values())  # all copies of a class, the same number of times
        assert sum(m.pop() for m in per_class.values()) == 12  # 12 classes drawn
        assert held.size == sum(mult[np.flatnonzero(g == c)[0]] * sizes[c] for c in np.unique(g))


@pytest.mark.parametrize("reduce", ["mean", "random"])
@pytest.mark.parametrize("name", ["kendall_tau", "spearman", "pearson"])
def test_truth_noise_vectorised_equals_loop(name: str, reduce: str) -> None:
    """The multiplicity-weighted path equals one metric call per resample (and scipy), for class
    draws with redrawn truths, per class (mean) or per row (random)."""
    s, t, reps, g = _noisy_truth(80, 12, 3, 0.5, 0)
    fn = METRICS.get(name)
    kw = dict(n_boot=150, seed=3, truth_repeats=reps, groups=g, truth_reduce=reduce)
    fast = bootstrap_ci(name, s, t, **kw)
    slow = bootstrap_ci(lambda a, b: fn(a, b), s, t, **kw)
    assert fast.n_used == slow.n_used == 150
    assert tuple(fast) == pytest.approx(tuple(slow), abs=1e-12)
    seen = []
    bootstrap_ci(lambda a, b: seen.append((a, b)) or 0.0, s, t, **{**kw, "n_boot": 20})
    cls = M._classes(g, s.size)
    vals = M._bootstrap_values(fn, s, t, 20, 3, cls, M._truth_noise(reps, cls, reduce), ("drawn",))["drawn"]
    ref = {"kendall_tau": stats.kendalltau, "spearman": stats.spearmanr, "pearson": stats.pearsonr}[name]
    assert vals == pytest.approx([ref(a, b).statistic for a, b in seen], abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_class_level_kendall_equals_the_weighted_knight(ties: bool) -> None:
    """Two fast paths of tau-b with multiplicities: per class pair (truth constant in a class)
    and Knight's algorithm on the candidates; both equal scipy on the expanded sample."""
    x, _ = _sample(90, ties, 6)
    rng = np.random.default_rng(6)
    g = rng.integers(0, 14, 90)
    classes = M._Classes(M._classes(g, 90))
    wc = M._class_counts(rng, classes.n_cls, 60).astype(float)
    w = wc[:, classes.cls]
    for yc in (np.round(rng.normal(size=(1, classes.n_cls)), 1), np.round(rng.normal(size=(60, classes.n_cls)), 1)):
        y = yc[:, classes.cls]
        fast = M._class_kendall(x, yc, wc, classes)
        knight = M._w_kendall(x, y[0] if yc.shape[0] == 1 else y, w)
        assert fast == pytest.approx(knight, abs=1e-12, nan_ok=True)
        for r in range(0, 60, 7):
            idx = np.repeat(np.arange(90), w[r].astype(int))
            ref = stats.kendalltau(x[idx], y[min(r, y.shape[0] - 1)][idx]).statistic
            assert knight[r] == pytest.approx(ref, abs=1e-12, nan_ok=True)


def _draws(reps: np.ndarray, reduce: str, rows: int, seed: int = 0) -> np.ndarray:
    cls = np.zeros(3, dtype=np.intp)  # three candidates of one class
    noise = M._truth_noise(np.repeat(reps[None, :], 3, axis=0), cls, reduce)
    return M._draw_truths(np.random.default_rng(seed), noise, rows, cls)


@pytest.mark.parametrize("r", [2, 3, 5, 10])
def test_variance_matched_truth_draws(r: int) -> None:
    """A drawn class mean varies as a fresh mean of R repeats (s^2 / R, not the plain resample's
    s^2 (R-1) / R^2) and is centred on the class mean; a drawn single repeat varies as s^2."""
    reps = np.random.default_rng(r).normal(0.9, 0.01, r)
    s2 = np.var(reps, ddof=1)
    mean = _draws(reps, "mean", 200_000)
    assert (mean == mean[:, :1]).all()  # one draw per class, shared by its candidates
    assert mean[:, 0].mean() == pytest.approx(reps.mean(), abs=4 * math.sqrt(s2 / r / 200_000))
    assert np.var(mean[:, 0]) == pytest.approx(s2 / r, rel=0.02)
    plain = np.random.default_rng(0).choice(reps, size=(200_000, r)).mean(1)  # what it corrects
    assert np.var(plain) == pytest.approx(s2 * (r - 1) / r**2, rel=0.02)
    single = _draws(reps, "random", 200_000)
    assert (single[:, 0] != single[:, 1]).any()  # one draw per row
    assert np.var(single) == pytest.approx(s2, rel=0.02)
    # the draws take the shape of the repeats: a mean of R of them, pulled out by sqrt(R/(R-1))
    k = math.sqrt(r / (r - 1))
    if r <= 3:
        means = {round(float(np.mean(c)), 9) for c in itertools.product(reps, repeat=r)}
        allowed = {round(reps.mean() + k * (m - reps.mean()), 6) for m in means}
        assert {round(float(v), 6) for v in mean[:2000, 0]} <= allowed
    # equal repeats (a noise-free truth): every draw is the truth itself
    assert (_draws(np.full(r, 0.9), "mean", 50) == 0.9).all()


def test_one_repeat_is_not_estimable_and_says_so() -> None:
    s, t, g = _clustered(15, 1)
    one = t[:, None]
    r = rank_metrics(s, t, n_boot=100, truth_repeats=one, groups=g)
    fixed = rank_metrics(s, t, n_boot=100, groups=g)
    assert r["truth_noise"].startswith("not estimable (1 repeat)") and r["truth_resampled"] is False
    assert r["truth_classes"] == 15 and r["truth_classes_resampled"] == 0
    assert r["kendall_tau_ci"] == fixed["kendall_tau_ci"]  # the class bootstrap, truth held fixed
    assert r["kendall_tau_disattenuated"] is None and "not estimable" in r["disattenuation"]
    assert not any(k.endswith(("_truth_noise_share", "_ci_fixed_truth")) for k in r)
    assert fixed["truth_noise"].startswith("not given")
    # some classes with 2 repeats: those vary, the rest are held fixed, and the result says so
    two = np.c_[t, np.where(g < 5, t + 0.1, np.nan)]
    p = rank_metrics(s, t, n_boot=100, truth_repeats=two, groups=g)
    assert p["truth_noise"].startswith("partly estimable: 10 of 15 classes have 1 repeat")
    assert p["truth_resampled"] is True and p["truth_classes_resampled"] == 5
    assert M._noise_status(M._truth_noise(np.c_[t, t + 0.1], M._classes(g, t.size), "random")).startswith(
        "resampled: each candidate's single repeat")


def test_class_bootstrap_is_wider_than_the_subnet_bootstrap_on_clustered_data() -> None:
    """Copies of a class are not independent: drawing them one by one understates the spread."""
    s, t, g = _clustered(34, 2)
    subnet = bootstrap_ci(kendall_tau, s, t, n_boot=400)
    cls = bootstrap_ci(kendall_tau, s, t, n_boot=400, groups=g)
    assert (cls.high - cls.low) > 2.0 * (subnet.high - subnet.low)
    r = rank_metrics(s, t, n_boot=50, groups=g)
    assert r["resampling_unit"] == "hash class" and r["n_classes"] == 34
    assert rank_metrics(s, t, n_boot=50)["resampling_unit"] == "candidate"


def test_paper_protocol_rows_are_resampled_as_networks() -> None:
    """The paper protocol's rows: duplicate ordered choices of one network, one random repeat of
    the truth per row. Classes (networks) are drawn, never rows, and each row redraws its repeat."""
    rng = np.random.default_rng(5)
    s, mu, g = _clustered(20, 5)
    rows = np.repeat(np.arange(s.size), rng.integers(1, 5, s.size))  # 1-4 rows per network
    reps = np.round(mu[rows][:, None] + rng.normal(0, 0.3, (20, 3))[g[rows]], 4)
    truth = reps[np.arange(rows.size), rng.integers(0, 3, rows.size)]  # one random repeat per row
    kw = dict(n_boot=200, truth_repeats=reps, groups=g[rows], truth_reduce="random")
    r = rank_metrics(s[rows], truth, **kw)
    assert r["n"] == rows.size and r["n_classes"] == 20 and r["truth_resampled"] is True
    by_row = bootstrap_ci(kendall_tau, s[rows], truth, n_boot=200)
    assert r["kendall_tau_ci"][1] - r["kendall_tau_ci"][0] > 2 * (by_row.high - by_row.low)
    seen = []
    bootstrap_ci(lambda a, b: seen.append(b) or 0.0, s[rows], truth, **{**kw, "n_boot": 30})
    assert all(len(np.unique(np.round(b, 9))) > 20 for b in seen)  # rows of one class draw their own repeat


def test_truth_noise_interval_against_a_naive_simulation() -> None:
    """The two-level bootstrap, simulated naively with scipy: classes with replacement, then each
    drawn class's mean of a resample of its repeats, scaled by sqrt(R/(R-1)) around its mean."""
    s, t, reps, g = _noisy_truth(60, 8, 2, 0.7, 2)
    rng = np.random.default_rng(123)
    cls = np.unique(g)
    sims = []
    for _ in range(1500):
        drawn = rng.choice(cls, size=cls.size)
        truth_of = {}
        for c in cls:
            r = reps[np.flatnonzero(g == c)[0]]
            r = r[~np.isnan(r)]
            k = math.sqrt(r.size / (r.size - 1)) if r.size > 1 else 0.0
            truth_of[c] = r.mean() + k * (np.mean(rng.choice(r, size=r.size)) - r.mean())
        idx = np.concatenate([np.flatnonzero(g == c) for c in drawn])
        sims.append(stats.kendalltau(s[idx], [truth_of[c] for c in g[idx]]).statistic)
    lo, hi = np.nanquantile(sims, [0.025, 0.975])
    ci = bootstrap_ci(kendall_tau, s, t, n_boot=1500, seed=5, truth_repeats=reps, groups=g)
    assert ci.low == pytest.approx(lo, abs=0.05) and ci.high == pytest.approx(hi, abs=0.05)
    fixed = bootstrap_ci(kendall_tau, s, t, n_boot=1500, seed=5, groups=g)
    assert ci.high - ci.low > 1.05 * (fixed.high - fixed.low)  # the truth's noise widens it


def test_rank_metrics_reports_the_truth_noise() -> None:
    s, t, reps, g = _noisy_truth(120, 15, 3, 0.8, 3)
    r = rank_metrics(s, t, n_boot=200, truth_repeats=reps, groups=g)
    plain = rank_metrics(s, t, n_boot=200, groups=g)
    assert r["truth_resampled"] is True and r["truth_classes"] == r["n_classes"] == len(np.unique(g))
    per_class = np.sum(~np.isnan(reps), 1)[np.unique(g, return_index=True)[1]]
    assert r["truth_classes_resampled"] == int((per_class >= 2).sum())
    assert r["truth_noise"].startswith("resampled: each class's mean of its")
    assert r["disattenuation"] == M.DISATTENUATION
    cls = M._classes(g, s.size)
    noise = M._truth_noise(reps, cls, "mean")
    for key in ("kendall_tau", "spearman", "pearson"):
        assert r[key] == plain[key]
        assert r[key + "_ci_fixed_truth"] == plain[key + "_ci"]  # the same class draws
        v = M._bootstrap_values(METRICS.get(key), s, t, 200, 0, cls, noise, ("drawn", "drawn_again"))
        assert r[key + "_ci"] == tuple(M._interval(v["drawn"], 0.05))  # plain percentiles, not re-centred
        share = r[key + "_truth_noise_share"]
        assert 0.0 < share <= 1.0
        both = np.r_[v["drawn"], v["drawn_again"]]
        assert share == pytest.approx(np.mean((v["drawn"] - v["drawn_again"]) ** 2) / 2 / np.var(both, ddof=1))
        lo, hi = r[key + "_disattenuated_ci"]
        assert -1.0 <= lo <= r[key + "_disattenuated"] <= hi <= 1.0
    assert r["precision_at_10_ci_fixed_truth"] == plain["precision_at_10_ci"]
    assert "worst_rank_at_20_truth_noise_share" not in r  # a share only for the correlations
    assert "precision_at_10_disattenuated" not in r  # only the correlations are disattenuated
    # a truth whose repeats agree (estimable, no noise) changes nothing: share 0, no correction
    same = np.repeat(t[:, None], 3, axis=1)
    r1 = rank_metrics(s, t, n_boot=100, truth_repeats=same, groups=g)
    no_repeats = rank_metrics(s, t, n_boot=100, groups=g)
    assert r1["kendall_tau_ci"] == r1["kendall_tau_ci_fixed_truth"] == no_repeats["kendall_tau_ci"]
    assert r1["kendall_tau_truth_noise_share"] == 0.0 and r1["truth_classes_resampled"] == len(np.unique(g))
    assert r1["kendall_tau_disattenuated"] == r1["kendall_tau"]
    # drop_lowest drops the same rows of the repeats and of the groups
    d = rank_metrics(s, t, n_boot=50, drop_lowest=10, truth_repeats=reps, groups=g)
    keep = np.sort(np.argsort(s, kind="stable")[10:])
    assert d["kendall_tau_ci"] == rank_metrics(s[keep], t[keep], n_boot=50, truth_repeats=reps[keep],
                                               groups=g[keep])["kendall_tau_ci"]


def test_truth_noise_share_is_a_variance_decomposition() -> None:
    """The share equals E[Var(tau* | class draw)] / Var(tau*) measured by brute force: many truth
    draws for each of many class draws."""
    s, t, reps, g = _noisy_truth(120, 15, 3, 0.8, 3)
    share = rank_metrics(s, t, n_boot=500, truth_repeats=reps, groups=g, k=0.1)["kendall_tau_truth_noise_share"]
    classes = M._Classes(M._classes(g, s.size))
    noise = M._truth_noise(reps, classes.cls, "mean")
    rng = np.random.default_rng(9)
    wc = M._class_counts(rng, classes.n_cls, 200)
    inner = np.stack([M._eval_resamples(kendall_tau, s, wc, classes, yc=M._draw_class_truths(rng, noise, 200))
                      for _ in range(25)])  # (truth draws, class draws)
    assert share == pytest.approx(inner.var(0, ddof=1).mean() / inner.var(ddof=1), abs=0.08)


def test_disattenuated_tau_moves_towards_the_noise_free_truth() -> None:
    """Scores that track the noise-free values closely, a truth of 2 noisy repeats: tau against the
    measured truth is attenuated; the disattenuated value recovers part of it (first order), and
    its interval covers the tau against the noise-free values."""
    errs_raw, errs_dis, covered = [], [], 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        mu = rng.normal(size=40)
        reps = np.round(mu[:, None] + rng.normal(0, 0.5, (40, 2)), 6)
        t = np.round(reps.mean(1), 12)
        s = mu + rng.normal(0, 0.2, 40)
        target = kendall_tau(s, mu)
        r = rank_metrics(s, t, n_boot=300, seed=seed, truth_repeats=reps, k=0.1)
        assert sum(r["kendall_tau_ci"]) / 2 < r["kendall_tau"]  # the plain interval sits low: attenuation
        errs_raw.append(target - r["kendall_tau"])
        errs_dis.append(target - r["kendall_tau_disattenuated"])
        lo, hi = r["kendall_tau_disattenuated_ci"]
        covered += lo <= target <= hi
    assert np.mean(errs_raw) > 0.05  # a noisy truth lowers tau
    assert 0 <= np.mean(errs_dis) < 0.75 * np.mean(errs_raw)  # corrected, not over-corrected
    assert covered >= 7
    p = bootstrap_ci(precision_at_k, s, t, n_boot=300, truth_repeats=reps)  # a bounded metric stays in range
    assert 0.0 <= p.low <= p.high <= 1.0


def test_truth_noise_with_huge_noise_dominates() -> None:
    s, t, reps, g = _noisy_truth(200, 10, 2, 5.0, 4)
    r = rank_metrics(s, t, n_boot=300, truth_repeats=reps, groups=g, k=0.1)
    assert r["kendall_tau_truth_noise_share"] > 0.5


def test_truth_noise_input_errors() -> None:
    s, t, reps, g = _noisy_truth(30, 5, 2, 0.5, 5)
    with pytest.raises(ValueError, match="different truth_repeats"):
        bad = reps.copy()
        bad[np.flatnonzero(g == g[0])[-1]] += 1
        if (g == g[0]).sum() == 1:
            pytest.skip("class of one")
        bootstrap_ci(kendall_tau, s, t, truth_repeats=bad, groups=g)
    with pytest.raises(ValueError, match="truth_repeats must be"):
        rank_metrics(s, t, truth_repeats=reps[:-1], groups=g)
    empty = reps.copy()
    empty[3] = np.nan
    with pytest.raises(ValueError, match="without any truth repeat, at index 3"):
        bootstrap_ci(kendall_tau, s, t, truth_repeats=empty)
    with pytest.raises(ValueError, match="groups must be"):
        bootstrap_ci(kendall_tau, s, t, truth_repeats=reps, groups=g[:5])
    with pytest.raises(ValueError, match="groups must be"):
        rank_metrics(s, t, groups=g[:5])
    with pytest.raises(ValueError, match="truth_reduce must be"):
        bootstrap_ci(kendall_tau, s, t, truth_repeats=reps, groups=g, truth_reduce="median")


def test_truth_noise_bootstrap_is_fast() -> None:
    """1000 resamples of 1000 candidates with the truth's noise: all at once, not per resample."""
    s, t, reps, g = _noisy_truth(1000, 34, 2, 0.5, 6)
    t0 = time.perf_counter()
    for name in ("kendall_tau", "spearman"):
        bootstrap_ci(name, s, t, n_boot=1000, truth_repeats=reps, groups=g)
        bootstrap_ci(name, s, reps[:, 0], n_boot=1000, truth_repeats=reps, groups=g, truth_reduce="random")
    assert time.perf_counter() - t0 < 8.0  # ~1.5 s on one idle core; a per-resample loop takes minutes


# -- paired differences --------------------------------------------------------------------
def _seeds(n_seeds: int, noise_a: float, noise_b: float, seed: int):
    s, t, reps, g = _noisy_truth(150, 20, 2, 0.3, seed)
    rng = np.random.default_rng(seed + 100)
    mu = t  # each seed's supernet scores: the truth plus its own noise
    a = [mu + rng.normal(0, noise_a, mu.size) for _ in range(n_seeds)]
    b = [mu + rng.normal(0, noise_b, mu.size) for _ in range(n_seeds)]
    return a, b, t, reps, g


def test_paired_difference_point_estimate_is_the_mean_over_seeds() -> None:
    a, b, t, reps, g = _seeds(4, 0.5, 1.0, 0)
    d = paired_difference(a, b, reps, g, n_boot=100)
    naive = [stats.kendalltau(x, t).statistic - stats.kendalltau(y, t).statistic for x, y in zip(a, b)]
    assert d["difference"] == pytest.approx(np.mean(naive), abs=1e-12)
    assert d["per_seed"] == pytest.approx(naive, abs=1e-12)
    assert d["mean_a"] == pytest.approx(np.mean([stats.kendalltau(x, t).statistic for x in a]), abs=1e-12)
    assert (d["n_seeds"], d["n"], d["ci_n"], d["truth_resampled"]) == (4, 150, 100, True)
    sp = paired_difference(a, b, reps, g, metric="spearman", n_boot=50)
    assert sp["difference"] == pytest.approx(
        np.mean([stats.spearmanr(x, t).statistic - stats.spearmanr(y, t).statistic for x, y in zip(a, b)]))
    # default truth: each class's mean over its repeats, as the truth's table has it
    assert paired_difference(a, b, reps, g, truth=t, n_boot=100) == d


def test_paired_difference_identical_is_exactly_zero() -> None:
    a, _, _, reps, g = _seeds(3, 0.5, 0.5, 1)
    d = paired_difference(a, a, reps, g, n_boot=200)
    assert d["difference"] == 0.0 and d["ci"] == (0.0, 0.0)


def test_paired_difference_resolves_a_better_ranker() -> None:
    a, b, _, reps, g = _seeds(5, 0.3, 1.5, 2)
    d = paired_difference(a, b, reps, g, n_boot=300)
    assert d["ci"][0] > 0 and d["ci"][0] <= d["difference"] <= d["ci"][1]
    r = paired_difference(b, a, reps, g, n_boot=300)
    assert r["ci"][1] < 0 and r["difference"] == pytest.approx(-d["difference"])


def test_paired_difference_interval_includes_seed_to_seed_variation() -> None:
    # seed 0: A far better; seed 1: B far better; candidates and truth nearly noise-free.
    # Resampling seeds must make the interval span both signs.
    rng = np.random.default_rng(0)
    t = np.arange(200.0)
    good, bad = t + rng.normal(0, 5, 200), t + rng.normal(0, 80, 200)
    reps = np.c_[t, t]
    d = paired_difference([good, bad], [bad, good], reps, None, n_boot=400)
    assert d["difference"] == pytest.approx(0.0, abs=1e-12)
    assert d["ci"][0] < -0.2 and d["ci"][1] > 0.2
    one = paired_difference([good], [bad], reps, None, n_boot=400)  # one seed: only candidates
    assert one["ci"][0] > 0.2


def test_paired_difference_errors_and_no_repeats() -> None:
    a, b, t, _, _ = _seeds(2, 0.5, 1.0, 3)
    d = paired_difference(a, b, None, None, truth=t, n_boot=50)
    assert d["truth_resampled"] is False and d["ci_n"] == 50
    with pytest.raises(ValueError, match="give the truth"):
        paired_difference(a, b, None, None)
    with pytest.raises(ValueError, match="same number"):
        paired_difference(a, b[:1], None, None, truth=t)
    with pytest.raises(ValueError, match="same 150 candidates"):
        paired_difference(a, [b[0], b[1][:-1]], None, None, truth=t)


def test_paired_difference_draws_classes_once_for_both_arms() -> None:
    """Seeds, then hash classes (one draw for both arms and every seed), then the truth: on
    clustered data the class draw widens the interval over the per-candidate one, and arms
    that differ only by a constant per class cancel in every replicate."""
    s, t, g = _clustered(34, 7)
    rng = np.random.default_rng(8)
    cls_err = lambda: rng.normal(0, 0.8, 34)[g]  # a supernet's error is shared by a class's copies
    a = [t + cls_err() + rng.normal(0, 0.1, t.size) for _ in range(3)]
    b = [t + cls_err() + rng.normal(0, 0.1, t.size) for _ in range(3)]
    reps = np.c_[t, t + 0.01 * (g % 3)]
    by_class = paired_difference(a, b, reps, g, n_boot=300)
    by_row = paired_difference(a, b, None, None, truth=t, n_boot=300)
    assert by_class["difference"] == pytest.approx(by_row["difference"], abs=0.01)  # the truth's mean differs a little
    assert (by_class["ci"][1] - by_class["ci"][0]) > 1.3 * (by_row["ci"][1] - by_row["ci"][0])
    assert (by_class["n_classes"], by_row["n_classes"], by_class["n"]) == (34, t.size, t.size)
    assert by_class["truth_resampled"] is True and by_class["truth_noise"].startswith("resampled")
    assert by_row["truth_noise"].startswith("not given")
    one = paired_difference(a, b, t[:, None], g, n_boot=50)  # 1 repeat: held fixed, said so
    assert one["truth_resampled"] is False and one["truth_noise"].startswith("not estimable (1 repeat)")
    # random-repeat truth (paper protocol): redrawn per row
    rr = paired_difference(a, b, reps, g, truth=reps[:, 0], n_boot=50, truth_reduce="random")
    assert rr["truth_resampled"] is True and rr["truth_noise"].startswith("resampled: each candidate's")


# -- split-half reliability ----------------------------------------------------------------
def test_split_half_with_two_seeds_is_the_seed_vs_seed_tau() -> None:
    rng = np.random.default_rng(0)
    mu = rng.normal(size=100)
    reps = np.round(mu[:, None] + rng.normal(0, 0.7, (100, 2)), 3)
    r = split_half_reliability(reps)
    assert r["n_splits"] == 1 and r["n_seeds"] == 2 and r["n_classes"] == 100
    tau = stats.kendalltau(reps[:, 0], reps[:, 1]).statistic
    assert r["split_half_tau"] == pytest.approx(tau, abs=1e-12)
    pr = math.sin(math.pi * tau / 2)
    rel = 2 * pr / (1 + pr)
    assert r["reliability"] == pytest.approx(rel)
    assert r["estimated_tau"] == pytest.approx(2 / math.pi * math.asin(math.sqrt(rel)))
    need = math.sin(math.pi * 0.85 / 2) ** 2
    k = need * (1 - pr) / (pr * (1 - need))  # inverse Spearman-Brown from one seed
    assert r["seeds_needed_exact"] == pytest.approx(k) and r["seeds_needed"] == math.ceil(k)


def test_split_half_reproduces_the_issue_numbers(monkeypatch) -> None:
    # issue 11: seed-vs-seed tau 0.554 with 2 seeds -> ~0.76; ~6 seeds reach ~0.86
    import rankbench.metrics.reliability

    monkeypatch.setattr(rankbench.metrics.reliability, "kendall_tau", lambda a, b: 0.554)
    r = split_half_reliability(np.arange(20.0).reshape(10, 2))
    assert r["estimated_tau"] == pytest.approx(0.762, abs=0.001)
    assert r["seeds_needed"] == 6 and r["projected_tau"]["6"] == pytest.approx(0.858, abs=0.001)
    assert r["projected_tau"]["2"] == r["estimated_tau"]


@pytest.mark.parametrize("n_seeds", [2, 3, 4, 6])
def test_split_half_estimate_on_synthetic_truth(n_seeds: int) -> None:
    """Classes with normal true values and normal seed noise: the estimate matches the tau of
    the seed mean against the true values, and the reliability its known value."""
    rng = np.random.default_rng(n_seeds)
    mu = rng.normal(size=600)
    sigma = 0.9
    reps = mu[:, None] + rng.normal(0, sigma, (600, n_seeds))
    r = split_half_reliability(reps, n_splits=20)
    assert r["reliability"] == pytest.approx(1 / (1 + sigma**2 / n_seeds), abs=0.05)
    assert r["estimated_tau"] == pytest.approx(stats.kendalltau(reps.mean(1), mu).statistic, abs=0.04)
    assert r["n_splits"] == {2: 1, 3: 3, 4: 3, 6: 10}[n_seeds]
    # more seeds, better truth; the projection at this count is the estimate itself
    assert r["projected_tau"][str(n_seeds)] == pytest.approx(r["estimated_tau"], abs=1e-9)
    taus = [r["projected_tau"][k] for k in ("1", "2", "4", "8", "16")]
    assert taus == sorted(taus)


def test_split_half_random_splits_and_errors() -> None:
    rng = np.random.default_rng(1)
    reps = rng.normal(size=(50, 1)) + rng.normal(0, 0.5, (50, 8))
    a = split_half_reliability(reps, n_splits=5, seed=1)
    assert a["n_splits"] == 5 and a == split_half_reliability(reps, n_splits=5, seed=1)
    assert split_half_reliability(reps, n_splits=5, seed=2)["split_half_tau"] != a["split_half_tau"]
    reps[[3, 7], 2] = np.nan  # incomplete classes are left out
    assert split_half_reliability(reps, n_splits=5)["n_classes"] == 48
    with pytest.raises(ValueError, match=">= 2 seeds"):
        split_half_reliability(reps[:, :1])
    with pytest.raises(ValueError, match="target"):
        split_half_reliability(reps, target=1.0)


def test_split_half_needs_enough_classes_and_says_when_it_cannot() -> None:
    rng = np.random.default_rng(2)
    mu = rng.normal(size=30)
    reps = mu[:, None] + rng.normal(0, 0.3, (30, 3))
    assert M.MIN_RELIABILITY_CLASSES == 10
    assert split_half_reliability(reps[:10])["estimable"] is True
    for n in (1, 3, 9):
        r = split_half_reliability(reps[:n])
        assert r["estimable"] is False and r["status"] == f"not estimable ({n} classes with all 3 repeats; needs >= 10)"
        assert all(r[k] is None for k in ("reliability", "estimated_tau", "split_half_tau", "seeds_needed"))
        assert (r["n_classes"], r["n_seeds"], r["projected_tau"]) == (n, 3, {})
    assert split_half_reliability(reps[:5], min_classes=5)["estimable"] is True
    # the run summary prints "not estimable" and claims nothing about what a ranker can reach
    from rankbench.summaries import _reliability_line

    line = _reliability_line({"reliability": split_half_reliability(reps[:3]),
                              "repeats_per_class": {"1": 31, "3": 3}})
    assert "not estimable (3 classes" in line and "no ranker" not in line and "1.000" not in line
    assert "31 of 34 classes have a single repeat" in line
    ok = _reliability_line({"reliability": split_half_reliability(reps), "repeats_per_class": {"3": 30}})
    assert "no ranker can be expected" in ok
