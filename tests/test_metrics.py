"""Ranking metrics: against scipy, on hand-computed tiny cases, and on their error cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rankbench.metrics import (
    METRICS,
    best_rank_at_k,
    bootstrap_ci,
    group_mean,
    kendall_tau,
    list_metrics,
    pearson,
    precision_at_k,
    rank_metrics,
    spearman,
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
        "kendall_tau", "spearman", "pearson", "precision_at_k",
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
