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
    assert r["truth_resampled"] is False
    assert not any(key.endswith(("_ci_candidates", "_truth_noise_share")) for key in r)
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


@pytest.mark.parametrize("name", ["kendall_tau", "spearman", "pearson"])
def test_truth_noise_vectorised_equals_loop(name: str) -> None:
    # the same draws through the all-at-once path and through one metric call per resample
    s, t, reps, g = _noisy_truth(80, 12, 3, 0.5, 0)
    fn = METRICS.get(name)
    fast = bootstrap_ci(name, s, t, n_boot=150, seed=3, truth_repeats=reps, groups=g)
    slow = bootstrap_ci(lambda a, b: fn(a, b), s, t, n_boot=150, seed=3, truth_repeats=reps, groups=g)
    assert fast.n_used == slow.n_used == 150
    assert tuple(fast) == pytest.approx(tuple(slow), abs=1e-12)
    # and against scipy on the literal resamples (recorded through the loop path)
    seen = []
    bootstrap_ci(lambda a, b: seen.append((a, b)) or 0.0, s, t, n_boot=20, seed=3, truth_repeats=reps, groups=g)
    ref = {"kendall_tau": stats.kendalltau, "spearman": stats.spearmanr, "pearson": stats.pearsonr}[name]
    vals = M._bootstrap_values(fn, s, t, 20, 3, M._truth_noise(reps, g, s.size))
    # the first 20 calls are the resamples with the truth's noise (then the same without)
    assert vals == pytest.approx([ref(a, b).statistic for a, b in seen[:20]], abs=1e-12)


def test_truth_noise_draws_one_mean_per_class() -> None:
    """Every candidate of a class gets the same drawn truth, a mean of R of its repeats."""
    s, t, reps, g = _noisy_truth(60, 6, 3, 0.5, 1)
    index = np.arange(60.0)  # as scores, the resampled scores reveal which candidates were drawn
    seen = []
    bootstrap_ci(lambda a, b: seen.append((a.astype(int), b)) or 0.0, index, t, n_boot=50, seed=0,
                 truth_repeats=reps, groups=g)
    changed = 0
    for idx, y in seen[:50]:  # then the same draws against the fixed truth
        for c in np.unique(g[idx]):
            yc = y[g[idx] == c]
            assert (yc == yc[0]).all()
            r = reps[np.flatnonzero(g == c)[0]]
            r = r[~np.isnan(r)]
            means = {round(float(np.mean(m)), 9) for m in itertools.product(r, repeat=r.size)}
            assert round(float(yc[0]), 9) in means
            changed += yc[0] != t[np.flatnonzero(g == c)[0]]
    assert changed > 0


def test_truth_noise_interval_against_a_naive_simulation() -> None:
    """The spread of tau under the scheme, simulated naively with scipy, matches the bootstrap's."""
    s, t, reps, g = _noisy_truth(60, 8, 2, 0.7, 2)
    rng = np.random.default_rng(123)
    cls = np.unique(g)
    sims, fixed = [], []
    for _ in range(1000):
        idx = rng.integers(0, 60, 60)
        drawn = {}
        for c in cls:
            r = reps[np.flatnonzero(g == c)[0]]
            drawn[c] = np.mean(rng.choice(r, size=r.size, replace=True))
        sims.append(stats.kendalltau(s[idx], [drawn[c] for c in g[idx]]).statistic)
        fixed.append(stats.kendalltau(s[idx], t[idx]).statistic)
    # re-centred on the candidates-only median (a drawn truth is noisier: attenuation)
    sims, fixed = np.array(sims), np.array(fixed)
    sims = np.clip(sims - (np.nanmedian(sims) - np.nanmedian(fixed)), min(np.nanmin(sims), np.nanmin(fixed)),
                   max(np.nanmax(sims), np.nanmax(fixed)))
    lo, hi = np.nanquantile(sims, [0.025, 0.975])
    ci = bootstrap_ci(kendall_tau, s, t, n_boot=2000, seed=5, truth_repeats=reps, groups=g)
    assert ci.low == pytest.approx(lo, abs=0.04) and ci.high == pytest.approx(hi, abs=0.04)
    cand = bootstrap_ci(kendall_tau, s, t, n_boot=2000, seed=5)
    assert ci.high - ci.low > 1.1 * (cand.high - cand.low)  # the truth's noise widens it


def test_rank_metrics_reports_the_truth_noise() -> None:
    s, t, reps, g = _noisy_truth(120, 15, 3, 0.8, 3)
    r = rank_metrics(s, t, n_boot=200, truth_repeats=reps, groups=g)
    plain = rank_metrics(s, t, n_boot=200)
    assert r["truth_resampled"] is True and r["truth_classes"] == len(np.unique(g))
    per_class = np.sum(~np.isnan(reps), 1)[np.unique(g, return_index=True)[1]]
    assert r["truth_classes_resampled"] == int((per_class >= 2).sum())
    for key in ("kendall_tau", "spearman", "pearson"):
        assert r[key] == plain[key]
        assert r[key + "_ci_candidates"] == plain[key + "_ci"]  # the same candidate draws
        share = r[key + "_truth_noise_share"]
        assert 0.0 < share <= 1.0
        full = M._bootstrap_values(METRICS.get(key), s, t, 200, 0, M._truth_noise(reps, g, s.size))
        cand = M._bootstrap_values(METRICS.get(key), s, t, 200, 0)
        assert share == pytest.approx(1 - np.var(cand, ddof=1) / np.var(full, ddof=1))
        assert r[key + "_ci"] != plain[key + "_ci"]
    assert r["precision_at_10_ci_candidates"] == plain["precision_at_10_ci"]
    assert 0.0 <= r["worst_rank_at_20_truth_noise_share"] <= 1.0
    # a truth without noise (one repeat, or equal repeats) changes nothing: share 0
    same = np.repeat(t[:, None], 3, axis=1)
    r1 = rank_metrics(s, t, n_boot=100, truth_repeats=same, groups=g)
    assert r1["kendall_tau_ci"] == r1["kendall_tau_ci_candidates"] == rank_metrics(s, t, n_boot=100)["kendall_tau_ci"]
    assert r1["kendall_tau_truth_noise_share"] == 0.0 and r1["truth_classes_resampled"] == len(np.unique(g))
    # drop_lowest drops the same rows of the repeats
    d = rank_metrics(s, t, n_boot=50, drop_lowest=10, truth_repeats=reps, groups=g)
    keep = np.sort(np.argsort(s, kind="stable")[10:])
    assert d["kendall_tau_ci"] == rank_metrics(s[keep], t[keep], n_boot=50, truth_repeats=reps[keep],
                                               groups=g[keep])["kendall_tau_ci"]


def test_truth_noise_interval_is_recentred_on_the_point_estimate() -> None:
    """Scores that agree closely with a noisy truth: every drawn truth lowers tau, so the plain
    percentile interval lies below the point estimate; the re-centred one holds it."""
    rng = np.random.default_rng(7)
    mu = rng.normal(size=30)
    reps = mu[:, None] + rng.normal(0, 0.4, (30, 2))
    t = np.round(reps.mean(1), 12)
    s = t + rng.normal(0, 0.05, 30)
    tau = kendall_tau(s, t)
    raw = M._interval(M._bootstrap_values(kendall_tau, s, t, 500, 0, M._truth_noise(reps, None, 30)), 0.05)
    assert raw.high < tau
    ci = bootstrap_ci(kendall_tau, s, t, n_boot=500, truth_repeats=reps)
    cand = bootstrap_ci(kendall_tau, s, t, n_boot=500)
    assert ci.low < tau < ci.high and ci.high - ci.low > cand.high - cand.low
    assert ci.high - ci.low <= raw.high - raw.low + 1e-12  # the spread is kept (or clipped at the top)
    # a bounded metric stays in its range: P@K of a near-perfect ranker cannot exceed 1
    p = bootstrap_ci(precision_at_k, s, t, n_boot=500, truth_repeats=reps)
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
        rank_metrics(s, t, truth_repeats=reps[:-1], groups=g[:-1])
    empty = reps.copy()
    empty[3] = np.nan
    with pytest.raises(ValueError, match="without any truth repeat, at index 3"):
        bootstrap_ci(kendall_tau, s, t, truth_repeats=empty)
    with pytest.raises(ValueError, match="groups must be"):
        bootstrap_ci(kendall_tau, s, t, truth_repeats=reps, groups=g[:5])


def test_truth_noise_bootstrap_is_fast() -> None:
    """1000 resamples of 1000 candidates with the truth's noise: all at once, not per resample."""
    s, t, reps, g = _noisy_truth(1000, 34, 2, 0.5, 6)
    t0 = time.perf_counter()
    for name in ("kendall_tau", "spearman"):
        bootstrap_ci(name, s, t, n_boot=1000, truth_repeats=reps, groups=g)
    assert time.perf_counter() - t0 < 8.0  # ~0.5 s on one idle core; a per-resample loop takes minutes


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
    monkeypatch.setattr(M, "kendall_tau", lambda a, b: 0.554)
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
