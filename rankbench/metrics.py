"""Ranking-agreement metrics: how well a supernet's scores rank candidates against the truth.

Pure functions: 1-D arrays in, floats (or a dict) out. Conventions, everywhere:

- higher score = better, higher truth = better (accuracies);
- ties are allowed on both sides: isomorphic subnets share one NB101 truth, and a weak
  supernet can give several subnets the same accuracy. Each metric says how it treats them;
- a correlation is undefined when either side is constant: it returns NaN (as scipy does);
- NaN/inf in the input is an error, never silently dropped: callers drop candidates without a
  truth explicitly, so that ``n`` in a report is the number really ranked;
- a ranking needs at least 3 candidates.

The metrics are registered in :data:`METRICS` (``list_metrics()``) so that reports and tests
iterate over the same list; :func:`rank_metrics` computes all of them, with bootstrap CIs that
can include the truth's own noise (its repeats resampled per hash class).
:func:`paired_difference` compares two rankers over training seeds; :func:`split_half_reliability`
says how well a truth of a few noisy repeats can agree with a noise-free one.
"""
from __future__ import annotations

import inspect
import itertools
import math
import warnings
from functools import partial
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from rankbench._registry import Registry

__all__ = [
    "METRICS",
    "register_metric",
    "list_metrics",
    "kendall_tau",
    "spearman",
    "pearson",
    "precision_at_k",
    "precision_at_10_naslib",
    "precision_at_k_awnas",
    "best_rank_at_k",
    "worst_rank_at_k",
    "top1_regret",
    "ConfidenceInterval",
    "bootstrap_ci",
    "rank_metrics",
    "paired_difference",
    "split_half_reliability",
    "group_mean",
    "MEAN_DECIMALS",
]

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


# -- bootstrap -----------------------------------------------------------------------------
class ConfidenceInterval(tuple):
    """``(low, high)`` percentile bootstrap interval; ``n_used`` of ``n_boot`` resamples had a
    defined metric (constant resamples are skipped)."""

    low: float
    high: float
    n_used: int
    n_boot: int
    alpha: float

    def __new__(cls, low: float, high: float, n_used: int, n_boot: int, alpha: float):
        obj = super().__new__(cls, (float(low), float(high)))
        obj.low, obj.high = float(low), float(high)
        obj.n_used, obj.n_boot, obj.alpha = int(n_used), int(n_boot), float(alpha)
        return obj

    def __getnewargs__(self) -> tuple:  # pickle / copy
        return (self.low, self.high, self.n_used, self.n_boot, self.alpha)

    def __repr__(self) -> str:
        return (f"ConfidenceInterval(low={self.low:.6g}, high={self.high:.6g}, "
                f"n_used={self.n_used}/{self.n_boot}, alpha={self.alpha:g})")


def _constant_on_support(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    used = w > 0
    return np.where(used, v, np.inf).min(1) == np.where(used, v, -np.inf).max(1)


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r of each resample; x, y are (n,) or (B, n), w the (B, n) multiplicities."""
    tot = w.sum(1, keepdims=True)
    xm = x - (w * x).sum(1, keepdims=True) / tot
    ym = y - (w * y).sum(1, keepdims=True) / tot
    cov = (w * xm * ym).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / np.sqrt((w * xm * xm).sum(1) * (w * ym * ym).sum(1))
    return np.clip(r, -1.0, 1.0)


def _batch_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray, _cache: dict) -> np.ndarray:
    r = _weighted_pearson(x, y, w)
    r[_constant_on_support(x, w) | _constant_on_support(y, w)] = np.nan
    return r


def _tie_groups(v: np.ndarray, cache: dict, key: str) -> tuple[np.ndarray, ...]:
    """(order sorting v, start of each tie group in that order, group of each sorted item)."""
    if key not in cache:
        order = np.argsort(v, kind="stable")
        sv = v[order]
        new = np.r_[True, sv[1:] != sv[:-1]]
        cache[key] = (order, np.flatnonzero(new), np.cumsum(new) - 1)
    return cache[key]


def _group_weights(v: np.ndarray, w: np.ndarray, cache: dict, key: str) -> np.ndarray:
    """Resample size of each tie group of v, (B, groups), groups in ascending order of v."""
    order, starts, _ = _tie_groups(v, cache, key)
    return np.add.reduceat(w[:, order], starts, axis=1)


def _resample_average_ranks(v: np.ndarray, w: np.ndarray, cache: dict, key: str) -> np.ndarray:
    """Average ranks each candidate gets in each resample (its copies share one rank)."""
    order, _, group = _tie_groups(v, cache, key)
    c = _group_weights(v, w, cache, key)
    grank = np.cumsum(c, axis=1) - c + (c + 1) / 2.0
    ranks = np.empty_like(w)
    ranks[:, order] = grank[:, group]
    return ranks


def _batch_spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray, cache: dict) -> np.ndarray:
    r = _weighted_pearson(
        _resample_average_ranks(x, w, cache, "x"), _resample_average_ranks(y, w, cache, "y"), w
    )
    r[_constant_on_support(x, w) | _constant_on_support(y, w)] = np.nan
    return r


_KENDALL_BATCH_MAX_N = 2000  # the n x n sign matrix: 32 MB at this size


def _batch_kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray, cache: dict) -> np.ndarray:
    """tau-b of each resample from multiplicities: sum_ab w_a w_b sign(dx) sign(dy) over
    sqrt(untied-in-x pairs * untied-in-y pairs); copies of one candidate tie on both sides."""
    if "S" not in cache:
        cache["S"] = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    num = np.einsum("ij,ij->i", w, w @ cache["S"])
    tot2 = w.sum(1) ** 2
    cx, cy = _group_weights(x, w, cache, "x"), _group_weights(y, w, cache, "y")
    dx, dy = tot2 - (cx * cx).sum(1), tot2 - (cy * cy).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = num / np.sqrt(dx * dy)
    tau[(dx == 0) | (dy == 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


# Metrics whose bootstrap distribution is computed from resample multiplicities at once.
_BATCHED: dict[Callable, Callable[..., np.ndarray]] = {
    pearson: _batch_pearson,
    spearman: _batch_spearman,
    kendall_tau: _batch_kendall,
}


# -- the truth's noise: resampling each hash class's repeats --------------------------------
#: decimals kept in a mean of accuracies (as the truth's mean over repeats): means equal in
#: decimal arithmetic (0.1 + 0.7 and 0.3 + 0.5) tie instead of differing in the last bit
MEAN_DECIMALS = 12


class _TruthNoise(NamedTuple):
    """Each candidate's hash class and each class's repeats (NaNs moved to the end)."""

    cls: np.ndarray  # (n,) class index of each candidate
    reps: np.ndarray  # (C, R) repeats, NaN-padded at the end of each row
    counts: np.ndarray  # (C,) repeats per class, >= 1


def _truth_noise(truth_repeats: ArrayLike, groups: ArrayLike | None, n: int) -> _TruthNoise:
    """Validate (n, R) repeats and n class ids; one row of repeats per class."""
    reps = np.asarray(truth_repeats, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[0] != n:
        raise ValueError(f"truth_repeats must be (candidates, repeats) = ({n}, R); got shape {reps.shape}")
    if np.isinf(reps).any():
        raise ValueError("truth_repeats has inf values; use NaN to pad missing repeats")
    if groups is None:
        cls, rows = np.arange(n), reps
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must be 1-D with one class id per candidate ({n}); got shape {g.shape}")
        _, first, cls = np.unique(g, return_index=True, return_inverse=True)
        cls = cls.ravel()
        rows = reps[first]
        if not np.array_equal(rows[cls], reps, equal_nan=True):
            raise ValueError("candidates of one hash class have different truth_repeats rows")
    rows = np.take_along_axis(rows, np.argsort(np.isnan(rows), axis=1, kind="stable"), axis=1)
    counts = np.count_nonzero(~np.isnan(rows), axis=1)
    if (counts == 0).any():
        bad = np.flatnonzero(counts[cls] == 0)[:10]
        raise ValueError(f"candidates without any truth repeat, at index {', '.join(map(str, bad))}; "
                         "drop them explicitly before computing metrics")
    return _TruthNoise(cls, rows, counts)


def _repeat_means(vals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the first ``counts`` values (the rest are ignored), rounded to
    MEAN_DECIMALS and summed in sorted order, so equal multisets give equal means."""
    valid = np.arange(vals.shape[-1]) < counts[..., None]
    v = np.sort(np.where(valid, vals, 0.0), axis=-1)
    return np.round(v.sum(-1) / counts, MEAN_DECIMALS)


def _draw_truths(rng: np.random.Generator, noise: _TruthNoise, rows: int) -> np.ndarray:
    """(rows, classes): per class, its repeats drawn with replacement, averaged."""
    n_cls, width = noise.reps.shape
    j = (rng.random((rows, n_cls, width)) * noise.counts[:, None]).astype(np.intp)
    return _repeat_means(noise.reps[np.arange(n_cls)[:, None], j], noise.counts)


def _dense_ranks(v: np.ndarray) -> tuple[np.ndarray, int]:
    """0-based dense ranks along the last axis (equal values share one) and their bound."""
    order = np.argsort(v, axis=-1, kind="stable")
    sv = np.take_along_axis(v, order, axis=-1)
    dense = np.zeros(v.shape, dtype=np.int64)
    dense[..., 1:] = np.cumsum(sv[..., 1:] != sv[..., :-1], axis=-1)
    ranks = np.empty_like(dense)
    np.put_along_axis(ranks, order, dense, axis=-1)
    return ranks, int(dense[..., -1].max()) + 1 if v.size else 1


def _row_counts(r: np.ndarray, m: int) -> np.ndarray:
    """(rows, m): how often each value 0..m-1 occurs in each row of r."""
    rows = r.shape[0]
    flat = (r + m * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * m).reshape(rows, m)


def _row_inversions(v: np.ndarray, m: int) -> np.ndarray:
    """Pairs i < j with v[i] > v[j] in each row; v (rows, n) ints in [0, m). Brute force in
    blocks of 8, then bottom-up merges of all rows at once (a stable argsort per block)."""
    rows, n = v.shape
    size = 8
    while size < n:
        size *= 2
    dtype = np.int32 if m < 2**31 - 1 else np.int64
    vv = np.full((rows, size), m, dtype=dtype)  # padding sorts last and adds no inversion
    vv[:, :n] = v
    b = min(8, size)
    blk = vv.reshape(rows, size // b, b)
    i, j = np.triu_indices(b, 1)
    total = np.count_nonzero(blk[:, :, i] > blk[:, :, j], axis=(1, 2)).astype(np.int64)
    vv = np.sort(blk, axis=2).reshape(rows, size)
    w = b
    while w < size:
        pairs = vv.reshape(-1, 2 * w)
        perm = np.argsort(pairs, axis=1, kind="stable")  # a tie keeps the left half first
        right = perm >= w
        # each left element is inverted with the right elements merged before it
        total += np.where(right, 0, np.cumsum(right, axis=1)).reshape(rows, -1).sum(1)
        vv = np.take_along_axis(pairs, perm, axis=1).reshape(rows, size)
        w *= 2
    return total


def _rows_kendall(rx: np.ndarray, ry: np.ndarray, mx: int, my: int) -> np.ndarray:
    """tau-b of each row (Knight's algorithm on all rows at once), from dense integer ranks."""
    rows, n = rx.shape
    n0 = n * (n - 1) // 2
    cx, cy = _row_counts(rx, mx), _row_counts(ry, my)
    n1 = (cx * (cx - 1) // 2).sum(1)
    n2 = (cy * (cy - 1) // 2).sum(1)
    key = np.sort(rx * my + ry, axis=1)  # by x, then y: pairs tied in x are never discordant
    pos = np.arange(n)
    new = np.ones(key.shape, dtype=bool)
    new[:, 1:] = key[:, 1:] != key[:, :-1]
    n3 = (pos - np.maximum.accumulate(np.where(new, pos, 0), axis=1)).sum(1)
    nd = _row_inversions(key % my, my)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = (n0 - n1 - n2 + n3 - 2 * nd) / np.sqrt((n0 - n1).astype(float) * (n0 - n2).astype(float))
    tau[(n1 == n0) | (n2 == n0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


def _rows_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xm = x - x.mean(1, keepdims=True)
    ym = y - y.mean(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (xm * ym).sum(1) / np.sqrt((xm * xm).sum(1) * (ym * ym).sum(1))
    r[(np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _rows_average_ranks(r: np.ndarray, m: int) -> np.ndarray:
    c = _row_counts(r, m).astype(np.float64)
    return np.take_along_axis(np.cumsum(c, axis=1) - c + (c + 1) / 2.0, r, axis=1)


class _Draws(NamedTuple):
    """One chunk of bootstrap replicates: candidate draws and the truth of each class."""

    idx: np.ndarray  # (rows, n) candidates drawn
    cls: np.ndarray  # (n,) class of each candidate
    truth: np.ndarray  # (rows, C) or (1, C): class truths
    truth_rank: np.ndarray  # its dense ranks
    m: int  # bound of the dense ranks


def _make_draws(idx: np.ndarray, cls: np.ndarray, class_truth: np.ndarray) -> _Draws:
    rank, m = _dense_ranks(class_truth)
    return _Draws(idx, cls, class_truth, rank, m)


def _eval_draws(fn: MetricFn, s: np.ndarray, d: _Draws) -> np.ndarray:
    """``fn`` of every replicate in ``d``: resampled candidates against resampled truths."""
    rows, n_cls = d.idx.shape[0], d.truth.shape[1]
    # flat positions of each drawn candidate's class truth in d.truth (one row per replicate or one)
    at = d.cls[d.idx] + (n_cls * (np.arange(rows) % d.truth.shape[0]))[:, None]
    if fn is pearson:
        return _rows_pearson(s[d.idx], d.truth.ravel()[at])
    if fn is kendall_tau or fn is spearman:
        rx, mx = _dense_ranks(s)
        rx, ry = rx[d.idx], d.truth_rank.ravel()[at]
        if fn is kendall_tau:
            return _rows_kendall(rx, ry, mx, d.m)
        return _rows_pearson(_rows_average_ranks(rx, mx), _rows_average_ranks(ry, d.m))
    y = d.truth.ravel()[at]
    return np.array([fn(s[d.idx[r]], y[r]) for r in range(rows)])


# -- bootstrap -------------------------------------------------------------------------------
def _chunk_rows(n_boot: int, n: int) -> int:
    return max(1, min(n_boot, 2**20 // n))


def _truth_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """An independent stream for the truth's (or seeds') draws; the candidates keep ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(stream + 1)[stream])


def _bootstrap_values(fn: MetricFn, s: np.ndarray, t: np.ndarray, n_boot: int, seed: int,
                      noise: _TruthNoise | None = None) -> np.ndarray:
    """The metric on each of ``n_boot`` resamples of the candidates (and, with ``noise``, of
    each class's truth repeats). The candidate draws depend only on ``seed`` and n, so they are
    the same with and without the truth's noise."""
    n = s.size
    rng = np.random.default_rng(seed)
    rng_truth = _truth_rng(seed) if noise is not None else None
    batch = _BATCHED.get(fn) if noise is None else None
    if batch is _batch_kendall and n > _KENDALL_BATCH_MAX_N:
        batch = None
    chunk = _chunk_rows(n_boot, n)
    cache: dict[str, Any] = {}
    fixed = None
    vals = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(rows, n))
        if noise is not None:
            d = _make_draws(idx, noise.cls, _draw_truths(rng_truth, noise, rows))
            vals[start:start + rows] = _eval_draws(fn, s, d)
        elif batch is not None:
            flat = (idx + n * np.arange(rows)[:, None]).ravel()
            w = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
            vals[start:start + rows] = batch(s, t, w, cache)
        elif fn in _ROWS:
            if fixed is None:
                fixed = _make_draws(idx[:0], np.arange(n), t[None, :])
            vals[start:start + rows] = _eval_draws(fn, s, fixed._replace(idx=idx))
        else:
            for r in range(rows):
                vals[start + r] = fn(s[idx[r]], t[idx[r]])
    return vals


#: metrics computed for all resamples at once from resampled rows (with the truth's noise)
_ROWS = (kendall_tau, spearman, pearson)


def _interval(vals: np.ndarray, alpha: float) -> ConfidenceInterval:
    used = vals[np.isfinite(vals)]
    if used.size == 0:
        return ConfidenceInterval(np.nan, np.nan, 0, vals.size, alpha)
    low, high = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(low, high, used.size, vals.size, alpha)


def _noise_share(full: np.ndarray, candidates: np.ndarray) -> float:
    """1 - var(candidates only) / var(full), clipped to [0, 1], over replicates defined in both."""
    ok = np.isfinite(full) & np.isfinite(candidates)
    if ok.sum() < 2:
        return float("nan")
    vf, vc = np.var(full[ok], ddof=1), np.var(candidates[ok], ddof=1)
    if vf == 0:
        return 0.0 if vc == 0 else float("nan")
    return float(min(1.0, max(0.0, 1.0 - vc / vf)))


class _NoisyInterval(NamedTuple):
    full: ConfidenceInterval  # candidates and the truth's repeats resampled, re-centred
    candidates: ConfidenceInterval  # the same candidate draws against the fixed truth
    share: float  # of the full bootstrap variance, due to the truth's noise


def _noisy_interval(fn: MetricFn, s: np.ndarray, t: np.ndarray, n_boot: int, alpha: float, seed: int,
                    noise: _TruthNoise) -> _NoisyInterval:
    """Intervals with and without the truth's noise, from the same candidate draws.

    A truth drawn from our truth's repeats is noisier than our truth (a mean of R draws from
    R values), which lowers agreement on average (attenuation): a shift, not uncertainty. The
    full bootstrap values are moved so that their median equals the candidates-only median
    before taking percentiles (their spread is kept), and clipped to the range of values either
    bootstrap produced, so that a bounded metric stays in its range (P@K <= 1)."""
    full = _bootstrap_values(fn, s, t, n_boot, seed, noise)
    cand = _bootstrap_values(fn, s, t, n_boot, seed)
    share = _noise_share(full, cand)
    if np.isfinite(full).any() and np.isfinite(cand).any():
        lo, hi = min(np.nanmin(full), np.nanmin(cand)), max(np.nanmax(full), np.nanmax(cand))
        full = np.clip(full - (np.nanmedian(full) - np.nanmedian(cand)), lo, hi)
    return _NoisyInterval(_interval(full, alpha), _interval(cand, alpha), share)


def _check_boot(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def bootstrap_ci(
    metric_fn: MetricFn | str,
    scores: ArrayLike,
    truth: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    truth_repeats: ArrayLike | None = None,
    groups: ArrayLike | None = None,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of ``metric_fn(scores, truth)``, resampling candidates (pairs)
    with replacement: the spread a single number like tau hides.

    With ``truth_repeats`` ((n, R) repeats of each candidate's truth, NaN-padded) and ``groups``
    (each candidate's hash class; default: each its own), every resample also redraws each
    class's repeats with replacement, one draw per class shared by its candidates, and ranks
    against the class means of the drawn repeats: the interval then includes the truth's own
    noise. Such a truth is noisier than ours, which lowers agreement on average; the values are
    re-centred on the median of the same candidate draws against the fixed truth (the spread is
    kept; clipped to the range of values seen), so the interval is not shifted below the point
    estimate by that attenuation. With R
    repeats a drawn mean varies (R-1)/R as much as a fresh R-repeat mean would, so with 2
    repeats the truth's share is understated. A class with one repeat does not vary.

    Deterministic for a seed; the candidate draws are the same with and without the truth's
    noise. Resamples where the metric is undefined (NaN, e.g. constant scores) are skipped; the
    result's ``n_used`` says how many counted ((nan, nan) if none). ``metric_fn`` may be a
    registered name; pass extra arguments with functools.partial. Pearson, Spearman and Kendall
    are computed for all resamples at once; other metrics are called once per resample. For
    extremal metrics (BR@K, WR@K, regret) a percentile bootstrap is only a rough guide."""
    fn = METRICS.get(metric_fn) if isinstance(metric_fn, str) else metric_fn
    s, t = _check(scores, truth)
    _check_boot(n_boot, alpha)
    if truth_repeats is None:
        return _interval(_bootstrap_values(fn, s, t, n_boot, seed), alpha)
    return _noisy_interval(fn, s, t, n_boot, alpha, seed, _truth_noise(truth_repeats, groups, s.size)).full


# -- everything at once --------------------------------------------------------------------
_RANK_VALUED = {"best_rank_at_k", "worst_rank_at_k"}


def _takes_k(fn: Callable) -> bool:
    return "k" in inspect.signature(fn).parameters


def _k_suffix(k: float) -> str:
    return f"{100.0 * k:g}"


def rank_metrics(
    scores: ArrayLike,
    truth: ArrayLike,
    *,
    k: float | Iterable[float] = (0.1, 0.2),
    ci: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    drop_lowest: int = 0,
    truth_repeats: ArrayLike | None = None,
    groups: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every registered metric on one (scores, truth) set, as a flat dict for a report row.

    Keys: ``n`` (candidates ranked), ``n_dropped``; per metric its name (``kendall_tau``,
    ``spearman``, ``pearson``, ``precision_at_10_naslib``, ``top1_regret``); a top-K metric
    once per k, named with K in percent (``precision_at_10``, ``best_rank_at_10``,
    ``worst_rank_at_20``, ...), the rank metrics also as percentiles (``best_rank_at_10_pct``).
    With ``ci``, each value ``v`` gets ``v_ci`` = (low, high) and ``v_ci_n`` = resamples used,
    plus ``n_boot``, ``alpha`` and ``truth_resampled``.

    ``truth_repeats`` and ``groups`` (see :func:`bootstrap_ci`) put the truth's noise into
    every ``v_ci`` (re-centred as there). Each metric then also gets ``v_ci_candidates`` (the
    same candidate draws against the fixed truth: the interval without the truth's noise) and
    ``v_truth_noise_share`` = 1 - var(candidates only) / var(everything) of the bootstrap
    values, clipped to [0, 1]: the share of the interval's variance due to the truth's noise
    (the candidates-only interval is about sqrt(1 - share) as wide). Also ``truth_classes`` and
    ``truth_classes_resampled`` (classes with >= 2 repeats: only those vary).

    ``drop_lowest=N`` computes everything on all but the N lowest-scored candidates, the
    public MixPath code's option (N = 30 there); ties at that cut are broken by input order."""
    s, t = _check(scores, truth)
    n_in = s.size
    keep = np.arange(n_in)
    if drop_lowest:
        if not 0 <= drop_lowest <= s.size - 3:
            raise ValueError(
                f"drop_lowest={drop_lowest} leaves {s.size - drop_lowest} of {s.size} "
                "candidates; a ranking needs at least 3"
            )
        keep = np.sort(np.argsort(s, kind="stable")[drop_lowest:])
        s, t = s[keep], t[keep]
    ks = (k,) if isinstance(k, (int, float)) else tuple(k)
    for kk in ks:
        _num_top(kk, s.size)  # validate early
    noise = None
    if truth_repeats is not None:
        reps = np.asarray(truth_repeats, dtype=np.float64)
        if reps.ndim != 2 or reps.shape[0] != n_in:
            raise ValueError(f"truth_repeats must be (candidates, repeats) = ({n_in}, R); got {reps.shape}")
        g = None
        if groups is not None:
            g = np.asarray(groups)
            if g.shape != (n_in,):
                raise ValueError(f"groups must be 1-D with one class id per candidate ({n_in}); got {g.shape}")
            g = g[keep]
        noise = _truth_noise(reps[keep], g, s.size)
    if ci:
        _check_boot(n_boot, alpha)

    out: dict[str, Any] = {"n": int(s.size), "n_dropped": int(drop_lowest)}
    for name in list_metrics():
        fn = METRICS.get(name)
        variants = (
            [(name.removesuffix("_at_k") + "_at_" + _k_suffix(kk), partial(fn, k=kk)) for kk in ks]
            if _takes_k(fn) else [(name, fn)]
        )
        for key, f in variants:
            val = f(s, t)
            out[key] = val
            interval = both = None
            if ci and noise is not None:
                both = _noisy_interval(f, s, t, n_boot, alpha, seed, noise)
                interval = both.full
            elif ci:
                interval = _interval(_bootstrap_values(f, s, t, n_boot, seed), alpha)
            if interval is not None:
                out[key + "_ci"] = (interval.low, interval.high)
                out[key + "_ci_n"] = interval.n_used
            if both is not None:
                out[key + "_ci_candidates"] = (both.candidates.low, both.candidates.high)
                out[key + "_truth_noise_share"] = both.share
            if name in _RANK_VALUED:
                out[key + "_pct"] = 100.0 * val / s.size
                if interval is not None:
                    out[key + "_pct_ci"] = (100.0 * interval.low / s.size,
                                            100.0 * interval.high / s.size)
    if ci:
        out["n_boot"] = int(n_boot)
        out["alpha"] = float(alpha)
        out["truth_resampled"] = noise is not None
        if noise is not None:
            out["truth_classes"] = int(noise.counts.size)
            out["truth_classes_resampled"] = int((noise.counts >= 2).sum())
    return out


# -- paired differences over training seeds --------------------------------------------------
def paired_difference(
    a: Sequence[ArrayLike],
    b: Sequence[ArrayLike],
    truth_repeats: ArrayLike | None,
    groups: ArrayLike | None,
    *,
    truth: ArrayLike | None = None,
    metric: str | MetricFn = "kendall_tau",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean over training seeds of metric(a[i]) - metric(b[i]), with a bootstrap interval over
    seeds, candidates and the truth's repeats: is variant A really better than B?

    ``a[i]`` and ``b[i]`` score the same n candidates with supernets of training seed i (two
    variants, or calibrated vs not). ``truth`` (n,) is the point estimate's truth (default: each
    class's mean over its repeats, rounded as the truth's). Each of ``n_boot`` replicates draws,
    independently: the seeds with replacement; the candidates with replacement (one draw shared
    by every seed and both sides, so the pairing is kept); each hash class's repeats with
    replacement as in :func:`bootstrap_ci` (shared likewise; skipped when ``truth_repeats`` is
    None). Its value is the mean over the drawn seeds of metric(a) - metric(b) on the drawn
    candidates against the drawn truth; the interval is the percentile interval of these. (A
    drawn truth is noisier than ours, which shrinks both metrics and so their difference a
    little towards 0: the interval errs on the cautious side.)

    Returns ``metric``, ``difference`` (the mean over seeds), ``ci`` (low, high), ``ci_n``
    (replicates with a defined value), ``per_seed`` (list of per-seed differences),
    ``mean_a``, ``mean_b``, ``n_seeds``, ``n``, ``n_boot``, ``alpha``, ``truth_resampled``."""
    fn = METRICS.get(metric) if isinstance(metric, str) else metric
    if len(a) != len(b) or len(a) < 1:
        raise ValueError(f"a and b need the same number (>= 1) of seeds; got {len(a)} and {len(b)}")
    xa = [_as_1d(v, f"a[{i}]") for i, v in enumerate(a)]
    xb = [_as_1d(v, f"b[{i}]") for i, v in enumerate(b)]
    n = xa[0].size
    if any(v.size != n for v in xa + xb):
        raise ValueError(f"every score vector must score the same {n} candidates; got lengths "
                         f"{[v.size for v in xa]} and {[v.size for v in xb]}")
    _check_boot(n_boot, alpha)
    noise = None if truth_repeats is None else _truth_noise(truth_repeats, groups, n)
    if truth is None:
        if noise is None:
            raise ValueError("give the truth: truth_repeats, or truth= when the truth has no repeats")
        t = _repeat_means(noise.reps, noise.counts)[noise.cls]
    else:
        _, t = _check(xa[0], truth)

    ma = np.array([fn(v, t) for v in xa])
    mb = np.array([fn(v, t) for v in xb])
    per_seed = ma - mb
    n_seeds = len(xa)
    rng = np.random.default_rng(seed)
    rng_truth, rng_seeds = _truth_rng(seed, 0), _truth_rng(seed, 1)
    fixed = _make_draws(np.zeros((0, n), dtype=np.intp), np.arange(n), t[None, :])
    diffs = np.empty(n_boot)
    chunk = _chunk_rows(n_boot, n)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(rows, n))
        if noise is not None:
            d = _make_draws(idx, noise.cls, _draw_truths(rng_truth, noise, rows))
        else:
            d = fixed._replace(idx=idx)
        pick = rng_seeds.integers(0, n_seeds, size=(rows, n_seeds))
        delta = np.stack([_eval_draws(fn, va, d) - _eval_draws(fn, vb, d) for va, vb in zip(xa, xb)])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates: skipped below
            diffs[start:start + rows] = np.nanmean(delta[pick, np.arange(rows)[:, None]], axis=1)
    interval = _interval(diffs, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = float(np.nanmean(per_seed)) if np.isfinite(per_seed).any() else float("nan")
        mean_a = float(np.nanmean(ma)) if np.isfinite(ma).any() else float("nan")
        mean_b = float(np.nanmean(mb)) if np.isfinite(mb).any() else float("nan")
    return {"metric": getattr(fn, "__name__", str(metric)), "difference": point,
            "ci": (interval.low, interval.high), "ci_n": interval.n_used, "per_seed": per_seed.tolist(),
            "mean_a": mean_a, "mean_b": mean_b, "n_seeds": n_seeds, "n": int(n), "n_boot": int(n_boot),
            "alpha": float(alpha), "truth_resampled": noise is not None}


# -- how reliable a truth is -----------------------------------------------------------------
def _splits(n_seeds: int, n_splits: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Seed subsets forming the first half: all distinct ones if at most ``n_splits``, else
    ``n_splits`` random ones (the second half is the rest)."""
    h = n_seeds // 2
    every = [np.array(c) for c in itertools.combinations(range(n_seeds), h)
             if n_seeds % 2 or 0 in c]  # an even split and its mirror image are one split
    if len(every) <= n_splits:
        return every
    return [np.sort(rng.permutation(n_seeds)[:h]) for _ in range(n_splits)]


def _spearman_brown(r: float, factor: float) -> float:
    """Reliability of a mean over ``factor`` times as many repeats as one of reliability r."""
    return factor * r / (1.0 + (factor - 1.0) * r)


def _tau_of_reliability(rel: float) -> float:
    """Kendall tau against the noise-free values of a truth with this reliability (normal model)."""
    return float(2.0 / math.pi * math.asin(math.sqrt(min(1.0, max(0.0, rel)))))


def split_half_reliability(
    repeats: ArrayLike, *, n_splits: int = 100, seed: int = 0, target: float = 0.85
) -> dict[str, Any]:
    """How well a truth that averages ``n_seeds`` repeats can agree with a noise-free one.

    ``repeats`` is (classes, seeds); only classes with every seed count. For each split of the
    seeds into halves (the two seeds themselves for 2; every distinct split when there are at
    most ``n_splits``, else ``n_splits`` random ones), Kendall tau between the two half-means;
    their mean ``split_half_tau`` -> Pearson r = sin(pi tau / 2) (normal model) ->
    Spearman-Brown to the full count (2r / (1 + r)) = ``reliability`` -> its square root, the
    Pearson r of the truth against a noise-free one -> back to ``estimated_tau`` =
    (2/pi) arcsin(sqrt(reliability)). ``seeds_needed``: the seeds for ``estimated_tau`` >=
    ``target`` (inverse Spearman-Brown; None when the halves do not agree at all);
    ``projected_tau``: the estimate at other seed counts. With an odd count the halves differ
    by one seed and are treated as half the count each."""
    reps = np.asarray(repeats, dtype=np.float64)
    if reps.ndim != 2:
        raise ValueError(f"repeats must be (classes, seeds); got shape {reps.shape}")
    full = reps[np.isfinite(reps).all(axis=1)]
    n_cls, n_seeds = full.shape
    if n_seeds < 2 or n_cls < 3:
        raise ValueError(f"split halves need >= 2 seeds and >= 3 classes with every seed; got "
                         f"{n_seeds} seeds, {n_cls} complete classes")
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a tau in (0, 1), got {target}")
    taus = []
    for first in _splits(n_seeds, max(1, int(n_splits)), np.random.default_rng(seed)):
        second = np.setdiff1d(np.arange(n_seeds), first)
        ha = _repeat_means(full[:, first], np.full(n_cls, first.size))
        hb = _repeat_means(full[:, second], np.full(n_cls, second.size))
        taus.append(kendall_tau(ha, hb))
    taus_arr = np.array(taus)
    tau_half = float(np.nanmean(taus_arr)) if np.isfinite(taus_arr).any() else float("nan")
    r_half = math.sin(math.pi * tau_half / 2.0)
    half = n_seeds / 2.0
    rel = _spearman_brown(r_half, 2.0) if r_half > 0 else 0.0
    r_one = r_half / (half - (half - 1.0) * r_half) if r_half > 0 else float("nan")
    need_rel = math.sin(math.pi * target / 2.0) ** 2
    needed = need_rel * (1.0 - r_one) / (r_one * (1.0 - need_rel)) if r_one > 0 else float("inf")
    projected = {str(k): _tau_of_reliability(_spearman_brown(r_one, k)) if r_one > 0 else 0.0
                 for k in sorted({1, 2, 3, 4, 6, 8, 10, 16, n_seeds})}
    return {
        "n_classes": int(n_cls), "n_seeds": int(n_seeds), "n_splits": len(taus),
        "split_half_tau": tau_half,
        "split_half_tau_sd": float(np.nanstd(taus_arr)) if len(taus) > 1 else 0.0,
        "split_half_pearson": r_half,
        "reliability": rel,
        "estimated_pearson": math.sqrt(min(1.0, max(0.0, rel))),
        "estimated_tau": _tau_of_reliability(rel),
        "target_tau": float(target),
        "seeds_needed": max(1, math.ceil(needed - 1e-9)) if math.isfinite(needed) else None,
        "seeds_needed_exact": float(needed),
        "projected_tau": projected,
    }


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
