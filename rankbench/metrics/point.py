"""Point metrics of a ranking (registered in :data:`METRICS`): correlations, top-K
agreement, regret; the input checks and rank helpers they share; per-class means."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from rankbench._registry import Registry

MetricFn = Callable[..., float]

METRICS: Registry[MetricFn] = Registry("metric")
register_metric = METRICS.register


def list_metrics() -> list[str]:
    """Names of the registered metrics, in registration order."""
    return METRICS.names()


# -- input checks --------------------------------------------------------------------------
def _as_1d(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        where = ", ".join(map(str, bad[:10])) + (", ..." if bad.size > 10 else "")
        raise ValueError(
            f"{name} has {bad.size} NaN/inf value(s) of {arr.size}, at index {where}; "
            "drop candidates without a value explicitly before computing metrics"
        )
    return arr


def _check(scores: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = _as_1d(scores, "scores")
    t = _as_1d(truth, "truth")
    if s.size != t.size:
        raise ValueError(f"scores and truth differ in length: {s.size} vs {t.size}")
    if s.size < 3:
        raise ValueError(f"a ranking needs at least 3 candidates; got {s.size}")
    return s, t


def _num_top(k: float, n: int) -> int:
    """K = max(1, round(k * n)), halves rounded up (not Python's round-half-to-even)."""
    if isinstance(k, bool) or not (0.0 < float(k) <= 1.0):
        raise ValueError(f"k is a fraction of the candidates in (0, 1]; got {k!r}")
    return max(1, int(math.floor(float(k) * n + 0.5)))


# -- rank helpers --------------------------------------------------------------------------
def _average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks, ascending; tied values share the mean of the ranks they occupy."""
    order = np.argsort(a, kind="stable")
    sa = a[order]
    starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])
    ends = np.r_[starts[1:], a.size]
    ranks = np.empty(a.size)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def _true_rank(truth: np.ndarray) -> np.ndarray:
    """Competition rank, 1 = best: 1 + the number of candidates with a strictly higher truth."""
    st = np.sort(truth)
    return truth.size - np.searchsorted(st, truth, side="right") + 1


def _tied_pairs(sorted_vals: np.ndarray | tuple[np.ndarray, ...]) -> int:
    """Number of tied pairs in an array sorted so that equal values (or rows) are adjacent."""
    cols = sorted_vals if isinstance(sorted_vals, tuple) else (sorted_vals,)
    change = np.zeros(cols[0].size - 1, dtype=bool)
    for c in cols:
        change |= c[1:] != c[:-1]
    run = np.diff(np.flatnonzero(np.r_[True, change, True])).astype(np.int64)
    return int((run * (run - 1) // 2).sum())


def _count_inversions(v: np.ndarray) -> int:
    """Pairs i < j with v[i] > v[j] (strict), for non-negative ints < len(v); O(n log^2 n).

    Bottom-up merge sort, one vectorised step per level: every element of a block's right
    half counts the elements of its left half that are greater, found by binary search."""
    n = v.size
    m = np.int64(max(n, 1))
    v = v.astype(np.int64)
    pos = np.arange(n, dtype=np.int64)
    total = 0
    w = 1
    while w < n:
        blk = pos // (2 * w)
        right = (pos // w) % 2 == 1
        key = blk * m + v  # sorted within each w-block, so the left halves are sorted overall
        left = key[~right]
        rb = blk[right]
        hi = np.searchsorted(left, (rb + 1) * m, side="left")
        le = np.searchsorted(left, key[right], side="right")
        total += int((hi - le).sum())
        v = np.sort(key) % m  # merge: sort within each 2w-block
        w *= 2
    return total


# -- correlations --------------------------------------------------------------------------
@register_metric("kendall_tau")
def kendall_tau(scores: ArrayLike, truth: ArrayLike) -> float:
    """Kendall's tau-b (ties on either side), the field's standard supernet ranking measure.

    O(n log n) (Knight's algorithm); NaN when either side is constant."""
    x, y = _check(scores, truth)
    n = x.size
    order = np.lexsort((y, x))  # by x, then y: pairs tied in x are never counted discordant
    xs, ys = x[order], y[order]
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs(xs)
    n2 = _tied_pairs(np.sort(y))
    n3 = _tied_pairs((xs, ys))
    yr = np.unique(ys, return_inverse=True)[1]
    nd = _count_inversions(yr)
    nc = n0 - n1 - n2 + n3 - nd
    if n1 == n0 or n2 == n0:
        return float("nan")
    tau = (nc - nd) / math.sqrt(float(n0 - n1) * float(n0 - n2))
    return float(min(1.0, max(-1.0, tau)))


def _pearson_arrays(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xm = x - x.mean()
    ym = y - y.mean()
    r = float(np.dot(xm, ym) / math.sqrt(float(np.dot(xm, xm)) * float(np.dot(ym, ym))))
    return min(1.0, max(-1.0, r))


@register_metric("spearman")
def spearman(scores: ArrayLike, truth: ArrayLike) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (ties share a rank)."""
    x, y = _check(scores, truth)
    return _pearson_arrays(_average_ranks(x), _average_ranks(y))


@register_metric("pearson")
def pearson(scores: ArrayLike, truth: ArrayLike) -> float:
    """Pearson's r of the raw values: linear agreement, sensitive to scale and outliers."""
    x, y = _check(scores, truth)
    return _pearson_arrays(x, y)


# -- top-K metrics -------------------------------------------------------------------------
def _topk_membership(v: np.ndarray, k: int) -> np.ndarray:
    """Probability of each candidate to be in the top k when ties are broken at random."""
    kth = np.partition(v, v.size - k)[v.size - k]  # the k-th highest value
    above = v > kth
    tied = v == kth
    p = above.astype(np.float64)
    p[tied] = (k - above.sum()) / tied.sum()
    return p


@register_metric("precision_at_k")
def precision_at_k(scores: ArrayLike, truth: ArrayLike, k: float = 0.1) -> float:
    """Fraction of the true top-K% that is also in the supernet's top-K% (k a fraction).

    K = max(1, round(k * n)), halves up. Ties at either boundary are broken uniformly at
    random, independently on each side, and the expected precision is returned (exactly:
    a candidate tied at the boundary counts as the fraction of its tie group that fits)."""
    s, t = _check(scores, truth)
    kk = _num_top(k, s.size)
    return float(np.dot(_topk_membership(s, kk), _topk_membership(t, kk)) / kk)


@register_metric("precision_at_10_naslib")
def precision_at_10_naslib(scores: ArrayLike, truth: ArrayLike, *, top: int = 10) -> float:
    """NASLib's precision@10: of the absolute top 10 (not 10%), how many both sides agree on.

    Mirrors ``PredictorEvaluator.compare`` (automl/NASLib, naslib/defaults/predictor_evaluator.py;
    the same code is ``compute_scores`` in naslib/utils): a candidate is in a side's top set when
    its value is strictly greater (``>``) than that side's 11th-highest value (the lowest value
    when n <= 10), and the overlap is divided by 10 always. Ties at the cut are never broken: they
    leave seats empty, so the value can be below what any tie order would give. Compare with
    :func:`precision_at_k` (K = 10% of n, ties broken at random in expectation)."""
    s, t = _check(scores, truth)
    if isinstance(top, bool) or int(top) != top or top < 1:
        raise ValueError(f"top is a number of candidates >= 1; got {top!r}")
    top = int(top)

    def in_top(v: np.ndarray) -> np.ndarray:
        return v > np.sort(v)[max(-v.size, -top - 1)]

    return float(np.count_nonzero(in_top(s) & in_top(t)) / top)


def precision_at_k_awnas(scores: ArrayLike, truth: ArrayLike, k: float = 0.1) -> float:
    """aw_nas's P@K, for comparison (not registered): K = floor(k * n), top sets by argsort order.

    Mirrors ``test_xk`` of aw_nas (walkerning/aw_nas): candidates are reordered by
    ``np.argsort(truth)[::-1]``, the predicted top K are the first K of
    ``np.argsort(scores)[::-1]`` in that order, and P = |overlap with the first K| / K. Ties at
    either cut go by numpy's default (unstable) argsort order, so they can depend on the machine.
    NaN when K = 0 (aw_nas skips such K)."""
    s, t = _check(scores, truth)
    if isinstance(k, bool) or not (0.0 < float(k) <= 1.0):
        raise ValueError(f"k is a fraction of the candidates in (0, 1]; got {k!r}")
    kk = int(s.size * float(k))
    if kk < 1:
        return float("nan")
    true_order = np.argsort(t)[::-1]
    ranks = np.argsort(s[true_order])[::-1]
    return float(np.count_nonzero(ranks[:kk] < kk) / kk)


def _topk_true_ranks(scores: ArrayLike, truth: ArrayLike, k: float) -> tuple[np.ndarray, int]:
    s, t = _check(scores, truth)
    kk = _num_top(k, s.size)
    kth = np.partition(s, s.size - kk)[s.size - kk]
    return _true_rank(t)[s >= kth], s.size


@register_metric("best_rank_at_k")
def best_rank_at_k(
    scores: ArrayLike, truth: ArrayLike, k: float = 0.1, *, percentile: bool = False
) -> float:
    """BR@K: the best true rank (1 = best) among the supernet's top-K% candidates.

    True rank = 1 + the number of candidates with a strictly higher truth. Candidates tied
    with the K-th highest score are all in the top K (the supernet cannot tell them apart).
    ``percentile=True`` gives 100 * rank / n (lower is better)."""
    ranks, n = _topk_true_ranks(scores, truth, k)
    r = float(ranks.min())
    return 100.0 * r / n if percentile else r


@register_metric("worst_rank_at_k")
def worst_rank_at_k(
    scores: ArrayLike, truth: ArrayLike, k: float = 0.1, *, percentile: bool = False
) -> float:
    """WR@K: the worst true rank (1 = best) among the supernet's top-K% candidates.

    Same rank and tie conventions as :func:`best_rank_at_k`."""
    ranks, n = _topk_true_ranks(scores, truth, k)
    r = float(ranks.max())
    return 100.0 * r / n if percentile else r


@register_metric("top1_regret")
def top1_regret(scores: ArrayLike, truth: ArrayLike) -> float:
    """Best truth minus the truth of the top-scored candidate (mean over a tied top); >= 0.

    What a search that trusts the supernet loses, in truth units (e.g. accuracy points)."""
    s, t = _check(scores, truth)
    return float(t.max() - t[s == s.max()].mean())



#: decimals kept in a mean of accuracies (as the truth's mean over repeats): means equal in
#: decimal arithmetic (0.1 + 0.7 and 0.3 + 0.5) tie instead of differing in the last bit
MEAN_DECIMALS = 12

# -- per hash class ------------------------------------------------------------------------
def group_mean(
    scores: ArrayLike, groups: ArrayLike, *, decimals: int | None = MEAN_DECIMALS
) -> tuple[np.ndarray, np.ndarray]:
    """Mean score per group, e.g. over isomorphic subnets sharing an NB101 hash, so that a
    ranking can be measured per hash class as well as per subnet.

    Exact where it matters for ties: a group whose values are all equal gets that value; any
    other gets math.fsum / count (independent of order), rounded to ``decimals`` (as the
    truth's means) so that means equal in decimal arithmetic tie (``None``: not rounded).
    Returns (unique groups, sorted as np.unique sorts them; their means)."""
    s = _as_1d(scores, "scores")
    g = np.asarray(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {g.shape}")
    if g.size != s.size:
        raise ValueError(f"scores and groups differ in length: {s.size} vs {g.size}")
    uniq, inv = np.unique(g, return_inverse=True)
    if not s.size:
        return uniq, np.zeros(0)
    order = np.argsort(inv.ravel(), kind="stable")
    sv = s[order]
    starts = np.flatnonzero(np.r_[True, np.diff(inv.ravel()[order]) != 0])
    lo, hi = np.minimum.reduceat(sv, starts), np.maximum.reduceat(sv, starts)
    means = lo.copy()
    for c in np.flatnonzero(lo != hi):
        part = sv[starts[c]:starts[c + 1] if c + 1 < starts.size else sv.size]
        m = math.fsum(part) / part.size
        means[c] = m if decimals is None else np.round(m, decimals)
    return uniq, means
