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
iterate over the same list; :func:`rank_metrics` computes all of them, with bootstrap intervals
whose unit is the thing that varies: hash classes (isomorphic subnets share one network and
one truth) are drawn, then each drawn class's truth from its repeats (:func:`bootstrap_ci`).
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
    "MIN_RELIABILITY_CLASSES",
    "DISATTENUATION",
    "TRUTH_REDUCES",
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


# -- bootstrap: the resampling unit is the hash class ------------------------------------------
class ConfidenceInterval(tuple):
    """``(low, high)`` bootstrap interval; ``n_used`` of ``n_boot`` resamples had a defined
    metric (constant resamples are skipped)."""

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


#: decimals kept in a mean of accuracies (as the truth's mean over repeats): means equal in
#: decimal arithmetic (0.1 + 0.7 and 0.3 + 0.5) tie instead of differing in the last bit
MEAN_DECIMALS = 12

#: how a truth is made from its repeats, and so how the bootstrap redraws it: "mean" = each
#: class's mean over its R repeats (one value per class); "random" = one repeat per candidate
#: row, drawn at random (NB101's API, the paper protocol)
TRUTH_REDUCES = ("mean", "random")


def _classes(groups: ArrayLike | None, n: int) -> np.ndarray:
    """Class index (0..C-1) of each candidate; each candidate its own class without groups."""
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must be 1-D with one class id per candidate ({n}); got shape {g.shape}")
    return np.unique(g, return_inverse=True)[1].ravel()


class _TruthNoise(NamedTuple):
    """Each class's repeats (NaNs moved to the end), how many, their mean; how the truth was made."""

    reps: np.ndarray  # (C, R) repeats, NaN-padded at the end of each row
    counts: np.ndarray  # (C,) repeats per class, >= 1
    means: np.ndarray  # (C,) mean over the repeats, rounded to MEAN_DECIMALS
    reduce: str  # "mean" | "random"

    @property
    def estimable(self) -> np.ndarray:
        """Classes whose noise can be estimated (>= 2 repeats)."""
        return self.counts >= 2


def _truth_noise(truth_repeats: ArrayLike, cls: np.ndarray, reduce: str = "mean") -> _TruthNoise:
    """Validate (n, R) repeats against each candidate's class; one row of repeats per class."""
    n = cls.size
    if reduce not in TRUTH_REDUCES:
        raise ValueError(f"truth_reduce must be one of {TRUTH_REDUCES}, got {reduce!r}")
    reps = np.asarray(truth_repeats, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[0] != n:
        raise ValueError(f"truth_repeats must be (candidates, repeats) = ({n}, R); got shape {reps.shape}")
    if np.isinf(reps).any():
        raise ValueError("truth_repeats has inf values; use NaN to pad missing repeats")
    first = np.zeros(int(cls.max()) + 1 if n else 0, dtype=np.intp)
    first[cls[::-1]] = np.arange(n)[::-1]
    rows = reps[first]
    if not np.array_equal(rows[cls], reps, equal_nan=True):
        raise ValueError("candidates of one hash class have different truth_repeats rows")
    rows = np.take_along_axis(rows, np.argsort(np.isnan(rows), axis=1, kind="stable"), axis=1)
    counts = np.count_nonzero(~np.isnan(rows), axis=1)
    if (counts == 0).any():
        bad = np.flatnonzero(counts[cls] == 0)[:10]
        raise ValueError(f"candidates without any truth repeat, at index {', '.join(map(str, bad))}; "
                         "drop them explicitly before computing metrics")
    return _TruthNoise(rows, counts, _repeat_means(np.nan_to_num(rows), counts), reduce)


def _repeat_means(vals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the first ``counts`` values (the rest are ignored), rounded to
    MEAN_DECIMALS and summed in sorted order, so equal multisets give equal means."""
    valid = np.arange(vals.shape[-1]) < counts[..., None]
    v = np.sort(np.where(valid, vals, 0.0), axis=-1)
    return np.round(v.sum(-1) / counts, MEAN_DECIMALS)


def _noise_scale(counts: np.ndarray) -> np.ndarray:
    """sqrt(R / (R - 1)) per class; 0 for R = 1 (no noise can be estimated: held fixed)."""
    r = counts.astype(np.float64)
    return np.sqrt(np.divide(r, r - 1.0, out=np.zeros_like(r), where=r > 1))


def _draw_truths(rng: np.random.Generator, noise: _TruthNoise, rows: int, cls: np.ndarray,
                 reduce: str | None = None) -> np.ndarray:
    """(rows, n): each candidate's truth in each replicate, redrawn variance-matched.

    ``mean``: per class, a resample (with replacement) of its R repeats; the truth is its mean
    pulled away from the class mean by sqrt(R/(R-1)): m + sqrt(R/(R-1)) (mean* - m), whose
    variance is s^2/R (s^2 the unbiased variance of the repeats), what a fresh mean of R repeats
    would have (the plain resample mean has s^2 (R-1)/R^2). One draw per class, shared by its
    candidates (and by the copies of a class drawn twice). ``random``: per candidate, one
    repeat x_j, as m + sqrt(R/(R-1)) (x_j - m), variance s^2: a fresh single repeat. A class
    with one repeat is held at its value (its noise cannot be estimated)."""
    if (reduce or noise.reduce) == "mean":
        return _draw_class_truths(rng, noise, rows)[:, cls]
    k = _noise_scale(noise.counts)
    j = (rng.random((rows, cls.size)) * noise.counts[cls]).astype(np.intp)
    m = noise.means[cls]
    return np.round(m + k[cls] * (noise.reps[cls, j] - m), MEAN_DECIMALS)


def _draw_class_truths(rng: np.random.Generator, noise: _TruthNoise, rows: int) -> np.ndarray:
    """(rows, C): each class's mean redrawn variance-matched (``mean`` of :func:`_draw_truths`)."""
    n_cls, width = noise.reps.shape
    j = (rng.random((rows, n_cls, width)) * noise.counts[:, None]).astype(np.intp)
    drawn = _repeat_means(noise.reps[np.arange(n_cls)[:, None], j], noise.counts)
    return np.round(noise.means + _noise_scale(noise.counts) * (drawn - noise.means), MEAN_DECIMALS)


def _noise_status(noise: _TruthNoise | None) -> str:
    """What the intervals do with the truth's noise, in words (``truth_noise`` of a result)."""
    if noise is None:
        return "not given: the truth is held fixed"
    est = noise.estimable
    if not est.any():
        return "not estimable (1 repeat): the truth is held fixed, so the intervals leave its noise out"
    reps = sorted({int(c) for c in noise.counts[est]})
    what = (f"each class's mean of its {'/'.join(map(str, reps))} repeats" if noise.reduce == "mean"
            else "each candidate's single repeat")
    text = f"resampled: {what} redrawn variance-matched"
    if not est.all():
        text = (f"partly estimable: {int((~est).sum())} of {est.size} classes have 1 repeat and are held "
                f"fixed (the intervals understate the truth's noise); the rest {text}")
    return text


# -- weighted metrics: one resample = multiplicities of the candidates ---------------------------
def _dense_ranks(v: np.ndarray) -> tuple[np.ndarray, int]:
    """0-based dense ranks along the last axis (equal values share one) and their bound."""
    order = np.argsort(v, axis=-1, kind="stable")
    sv = np.take_along_axis(v, order, axis=-1)
    dense = np.zeros(v.shape, dtype=np.int64)
    dense[..., 1:] = np.cumsum(sv[..., 1:] != sv[..., :-1], axis=-1)
    ranks = np.empty_like(dense)
    np.put_along_axis(ranks, order, dense, axis=-1)
    return ranks, int(dense[..., -1].max()) + 1 if v.size else 1


def _wcounts(r: np.ndarray, w: np.ndarray, m: int) -> np.ndarray:
    """(rows, m): total weight of each rank value 0..m-1 in each row; r is (n,) or (rows, n)."""
    rows = w.shape[0]
    flat = (np.broadcast_to(r, w.shape) + m * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=rows * m).reshape(rows, m)


def _constant(c: np.ndarray) -> np.ndarray:
    """Rows whose resample holds a single value (from :func:`_wcounts`)."""
    return np.count_nonzero(c, axis=1) <= 1


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r of each resample; x, y are (n,) or (B, n), w the (B, n) multiplicities."""
    tot = w.sum(1, keepdims=True)
    xm = x - (w * x).sum(1, keepdims=True) / tot
    ym = y - (w * y).sum(1, keepdims=True) / tot
    cov = (w * xm * ym).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / np.sqrt((w * xm * xm).sum(1) * (w * ym * ym).sum(1))
    return np.clip(r, -1.0, 1.0)


def _w_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    (rx, mx), (ry, my) = _dense_ranks(x), _dense_ranks(y)
    r = _weighted_pearson(x, y, w)
    r[_constant(_wcounts(rx, w, mx)) | _constant(_wcounts(ry, w, my))] = np.nan
    return r


def _w_average_ranks(r: np.ndarray, w: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks in each resample (a candidate's copies share one) and the (rows, m) counts."""
    c = _wcounts(r, w, m)
    grank = np.cumsum(c, axis=1) - c + (c + 1) / 2.0
    return np.take_along_axis(grank, np.broadcast_to(r, w.shape), axis=1), c


def _w_spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    (rx, mx), (ry, my) = _dense_ranks(x), _dense_ranks(y)
    ax, cx = _w_average_ranks(rx, w, mx)
    ay, cy = _w_average_ranks(ry, w, my)
    r = _weighted_pearson(ax, ay, w)
    r[_constant(cx) | _constant(cy)] = np.nan
    return r


def _w_inversions(v: np.ndarray, w: np.ndarray, m: int) -> np.ndarray:
    """sum of w[i] w[j] over i < j with v[i] > v[j], per row; v (rows, n) ints in [0, m).
    Brute force in blocks of 8, then bottom-up merges of all rows at once (a stable argsort per
    block; each left element meets the weight of the right elements merged before it)."""
    rows, n = v.shape
    size = 8
    while size < n:
        size *= 2
    vv = np.full((rows, size), m, dtype=np.int64)  # padding: weight 0, sorts last
    vv[:, :n] = v
    ww = np.zeros((rows, size))
    ww[:, :n] = w
    blk, wb = vv.reshape(rows, size // 8, 8), ww.reshape(rows, size // 8, 8)
    i, j = np.triu_indices(8, 1)
    total = ((blk[:, :, i] > blk[:, :, j]) * wb[:, :, i] * wb[:, :, j]).sum((1, 2))
    perm = np.argsort(blk, axis=2, kind="stable")
    vv = np.take_along_axis(blk, perm, axis=2).reshape(rows, size)
    ww = np.take_along_axis(wb, perm, axis=2).reshape(rows, size)
    width = 8
    while width < size:
        pv, pw = vv.reshape(-1, 2 * width), ww.reshape(-1, 2 * width)
        perm = np.argsort(pv, axis=1, kind="stable")  # a tie keeps the left half first
        right = perm >= width
        sw = np.take_along_axis(pw, perm, axis=1)
        before = np.cumsum(np.where(right, sw, 0.0), axis=1)
        total += np.where(right, 0.0, sw * before).reshape(rows, -1).sum(1)
        vv = np.take_along_axis(pv, perm, axis=1).reshape(rows, size)
        ww = sw.reshape(rows, size)
        width *= 2
    return total


def _w_kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """tau-b of each resample (Knight's algorithm with multiplicities, all rows at once): the
    tau-b of the sample that holds candidate i w[i] times (its copies tie on both sides)."""
    (rx, mx), (ry, my) = _dense_ranks(x), _dense_ranks(y)
    rows = w.shape[0]
    tot = w.sum(1)
    n0 = tot * (tot - 1) / 2
    cx, cy = _wcounts(rx, w, mx), _wcounts(ry, w, my)
    n1, n2 = (cx * (cx - 1) / 2).sum(1), (cy * (cy - 1) / 2).sum(1)
    key = np.broadcast_to(rx * my, w.shape) + ry  # by x, then y: pairs tied in x are never discordant
    order = np.argsort(key, axis=1, kind="stable")
    ks, ws = np.take_along_axis(key, order, axis=1), np.take_along_axis(w, order, axis=1)
    new = np.ones(ks.shape, dtype=bool)
    new[:, 1:] = ks[:, 1:] != ks[:, :-1]
    starts = np.flatnonzero(new.ravel())
    g = np.add.reduceat(ws.ravel(), starts)
    n3 = np.bincount(starts // ks.shape[1], weights=g * (g - 1) / 2, minlength=rows)
    nd = _w_inversions(ks % my, ws, my)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = (n0 - n1 - n2 + n3 - 2 * nd) / np.sqrt((n0 - n1) * (n0 - n2))
    tau[(n1 == n0) | (n2 == n0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


# Metrics computed for all resamples at once from multiplicities (any other is called per resample).
_WEIGHTED: dict[Callable, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    kendall_tau: _w_kendall,
    spearman: _w_spearman,
    pearson: _w_pearson,
}


class _Classes:
    """The classes of one bootstrap call: each candidate's class, the class sizes, and per score
    vector (cached) the class-pair sums of sign(x_a - x_b) that the class-level Kendall needs."""

    #: class-level Kendall: up to this many candidates (an n x n sign matrix, 32 MB), this many
    #: classes against a fixed truth (C x C), this many against a truth redrawn per resample
    MAX_N, MAX_C_FIXED, MAX_C_DRAWN = 2000, 2000, 160

    def __init__(self, cls: np.ndarray):
        self.cls = cls
        self.n_cls = int(cls.max()) + 1 if cls.size else 0
        self.sizes = np.bincount(cls, minlength=self.n_cls).astype(np.float64)
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def constant(self, t: np.ndarray) -> np.ndarray | None:
        """(1, C) class values of t when t is constant within every class, else None."""
        tc = np.empty(self.n_cls)
        tc[self.cls] = t
        return tc[None, :] if np.array_equal(tc[self.cls], t) else None

    def pair_signs(self, x: np.ndarray) -> np.ndarray:
        """A[c, d] = sum over a in c, b in d of sign(x_a - x_b)."""
        hit = self._pairs.get(id(x))
        if hit is None or hit[0] is not x:
            order = np.argsort(self.cls, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(self.cls[order]) != 0])
            xo = x[order]
            sx = np.sign(xo[:, None] - xo[None, :])
            a = np.add.reduceat(np.add.reduceat(sx, starts, axis=0), starts, axis=1)
            hit = self._pairs[id(x)] = (x, a)
        return hit[1]


def _class_kendall(x: np.ndarray, yc: np.ndarray, wc: np.ndarray, classes: _Classes) -> np.ndarray:
    """tau-b of each resample when the truth is constant within classes: sum over ordered pairs
    of classes wc_c wc_d A[c, d] sign(y_c - y_d), over sqrt(untied-in-x * untied-in-y ordered
    pairs). Equal to :func:`_w_kendall` (the same tau-b), in O(rows C^2) instead of O(rows n log^2 n)."""
    w = wc[:, classes.cls]
    tot2 = w.sum(1) ** 2
    rx, mx = _dense_ranks(x)
    ry, my = _dense_ranks(yc)
    dx = tot2 - (_wcounts(rx, w, mx) ** 2).sum(1)
    dy = tot2 - (_wcounts(ry, wc * classes.sizes, my) ** 2).sum(1)
    a = classes.pair_signs(x)
    if yc.shape[0] == 1:
        m = a * np.sign(yc[0][:, None] - yc[0][None, :])
        num = ((wc @ m) * wc).sum(1)
    else:
        num = np.empty(wc.shape[0])
        step = max(1, 2**21 // max(1, classes.n_cls**2))
        for i in range(0, wc.shape[0], step):
            y = yc[i:i + step]
            num[i:i + step] = np.einsum("rc,rcd,rd->r", wc[i:i + step], a * np.sign(y[:, :, None] - y[:, None, :]),
                                        wc[i:i + step])
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = num / np.sqrt(dx * dy)
    tau[(dx == 0) | (dy == 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


def _eval_resamples(fn: MetricFn, s: np.ndarray, wc: np.ndarray, classes: _Classes, y: np.ndarray | None = None,
                    yc: np.ndarray | None = None) -> np.ndarray:
    """``fn`` of every resample: class c drawn wc[r, c] times (so each of its candidates held as
    often), against the truth per candidate y ((n,) or (rows, n)) or per class yc ((1 or rows, C))."""
    if fn is kendall_tau and yc is not None and s.size <= classes.MAX_N and classes.n_cls <= (
            classes.MAX_C_FIXED if yc.shape[0] == 1 else classes.MAX_C_DRAWN):
        return _class_kendall(s, yc, wc.astype(np.float64), classes)
    if y is None:
        y = yc[:, classes.cls]
        y = y[0] if y.shape[0] == 1 else y
    w = wc[:, classes.cls]
    fast = _WEIGHTED.get(fn)
    if fast is not None:
        return fast(s, y, w.astype(np.float64))
    out = np.empty(w.shape[0])
    ids = np.arange(s.size)
    for r in range(w.shape[0]):
        idx = np.repeat(ids, w[r])
        out[r] = fn(s[idx], (y if y.ndim == 1 else y[r])[idx])
    return out


# -- the two-level bootstrap -------------------------------------------------------------------
def _chunk_rows(n_boot: int, n: int) -> int:
    return max(1, min(n_boot, 2**20 // n))


def _truth_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """An independent stream for the truth's (or seeds') draws; the classes keep ``seed``.
    Streams: 0 the truth as it was made, 1 training seeds, 2 class means (for disattenuation),
    3 a second draw of the truth (for the variance share)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(stream + 1)[stream])


def _class_counts(rng: np.random.Generator, n_cls: int, rows: int) -> np.ndarray:
    """(rows, C): how often each class is drawn when C classes are drawn with replacement (a
    drawn class brings all its candidates: each candidate's multiplicity is its class's count)."""
    draw = rng.integers(0, n_cls, size=(rows, n_cls))
    counts = np.bincount((draw + n_cls * np.arange(rows)[:, None]).ravel(), minlength=rows * n_cls)
    return counts.reshape(rows, n_cls)


#: truths a bootstrap can measure its resamples against: "fixed" the given truth, "drawn" the
#: truth redrawn as it was made (noise.reduce), "drawn_again" a second, independent such draw for
#: the same class draws (for the variance share), "means" the class means of the repeats,
#: "drawn_mean" the class means redrawn (``mean`` draws: the reference for disattenuation)
_KINDS = ("fixed", "drawn", "drawn_again", "means", "drawn_mean")


def _bootstrap_values(fn: MetricFn, s: np.ndarray, t: np.ndarray, n_boot: int, seed: int,
                      cls: np.ndarray | None = None, noise: _TruthNoise | None = None,
                      kinds: Sequence[str] = ("fixed",)) -> dict[str, np.ndarray]:
    """The metric on each of ``n_boot`` resamples, against each truth in ``kinds``.

    A resample draws the C classes with replacement (each drawn class brings all its
    candidates; ``cls`` None: each candidate is its own class, the plain pairs bootstrap). The
    class draws depend only on ``seed`` and C, and the truth draws on their own streams, so every
    kind and every metric of one call sees the same resamples."""
    n = s.size
    classes = _Classes(np.arange(n) if cls is None else cls)
    if unknown := set(kinds) - set(_KINDS):
        raise ValueError(f"unknown truth kinds {sorted(unknown)}; known: {_KINDS}")
    if noise is None and any(k != "fixed" for k in kinds):
        raise ValueError("truths other than 'fixed' need the truth's repeats")
    rng = np.random.default_rng(seed)
    rngs = {"drawn": _truth_rng(seed, 0), "drawn_mean": _truth_rng(seed, 2), "drawn_again": _truth_rng(seed, 3)}
    fixed_c = classes.constant(t) if "fixed" in kinds else None
    vals = {k: np.empty(n_boot) for k in kinds}
    chunk = _chunk_rows(n_boot, n)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        wc = _class_counts(rng, classes.n_cls, rows)
        for kind in kinds:
            y = yc = None
            if kind == "fixed":
                y, yc = t, fixed_c
            elif kind == "means":
                yc = noise.means[None, :]
            elif kind == "drawn_mean" and noise.reduce == "mean" and "drawn" in kinds:
                vals[kind][start:start + rows] = vals["drawn"][start:start + rows]
                continue
            elif kind == "drawn_mean" or noise.reduce == "mean":
                yc = _draw_class_truths(rngs[kind], noise, rows)
            else:
                y = _draw_truths(rngs[kind], noise, rows, classes.cls)
            vals[kind][start:start + rows] = _eval_resamples(fn, s, wc, classes, y, yc)
    return vals


def _interval(vals: np.ndarray, alpha: float) -> ConfidenceInterval:
    """Percentile interval of the defined values."""
    used = vals[np.isfinite(vals)]
    if used.size == 0:
        return ConfidenceInterval(np.nan, np.nan, 0, vals.size, alpha)
    low, high = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(low, high, used.size, vals.size, alpha)


def _noise_share(drawn: np.ndarray, again: np.ndarray) -> float:
    """E[Var(v* | class draw)] / Var(v*): the share of the two-level bootstrap's variance due to
    redrawing the truth (the rest is due to drawing classes; law of total variance). ``drawn``
    and ``again`` are two independent truth draws for the same class draws, so
    E[(drawn - again)^2] / 2 estimates the first term without bias. Clipped to [0, 1] (the
    estimate can pass 1 by chance when the classes add almost nothing)."""
    ok = np.isfinite(drawn) & np.isfinite(again)
    if ok.sum() < 2:
        return float("nan")
    within = float(np.mean((drawn[ok] - again[ok]) ** 2)) / 2.0
    total = float(np.var(np.r_[drawn[ok], again[ok]], ddof=1))
    if total == 0:
        return 0.0 if within == 0 else float("nan")
    return float(min(1.0, within / total))


#: how ``v_disattenuated`` is estimated (``disattenuation`` in a result)
DISATTENUATION = (
    "bootstrap bias correction: v against the class means of the repeats, minus the mean change "
    "in v when those means are redrawn variance-matched (their own noise added once more), over "
    "the same class draws; interval: basic bootstrap (2 v minus the percentiles of the redrawn "
    "values); first order: it under-corrects a very noisy truth, and takes classes with one "
    "repeat as exact")


def _disattenuated(fn: MetricFn, s: np.ndarray, cls: np.ndarray, noise: _TruthNoise,
                   vals: dict[str, np.ndarray], alpha: float) -> tuple[float, tuple[float, float]]:
    """Metric against a noise-free truth: see :data:`DISATTENUATION`."""
    ref = fn(s, noise.means[cls])
    dm, mm = vals["drawn_mean"], vals["means"]
    ok = np.isfinite(dm) & np.isfinite(mm)
    if not ok.any() or not math.isfinite(ref):
        return float("nan"), (float("nan"), float("nan"))
    point = float(np.clip(ref - float(np.mean(dm[ok] - mm[ok])), -1.0, 1.0))
    iv = _interval(dm, alpha)
    return point, (float(np.clip(2 * ref - iv.high, -1.0, 1.0)), float(np.clip(2 * ref - iv.low, -1.0, 1.0)))


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
    truth_reduce: str = "mean",
) -> ConfidenceInterval:
    """Percentile interval of a two-level bootstrap of ``metric_fn(scores, truth)``: the spread
    a single number like tau hides.

    Level 1, the unit that varies: ``groups`` (each candidate's hash class: isomorphic subnets
    share one network and one truth) are drawn with replacement, each drawn class bringing all
    its candidates; without ``groups`` each candidate is its own class (the plain pairs
    bootstrap). Level 2, with ``truth_repeats`` ((n, R) repeats of each candidate's truth,
    NaN-padded, equal within a class): each class's truth is redrawn from its repeats,
    variance-matched (a resample of its R repeats whose mean is scaled by sqrt(R/(R-1)) around
    the class mean, so that it varies as a fresh mean of R repeats: s^2/R), one draw per class
    shared by its candidates; ``truth_reduce="random"`` (the truth is one random repeat per
    candidate row) redraws one repeat per row instead, scaled the same way (variance s^2). A
    class with one repeat is held fixed: its noise cannot be estimated
    (:func:`rank_metrics` says so in ``truth_noise``).

    What it estimates: the metric of this ranker against a truth measured as ours (R repeats
    per class), over a population of classes like these: a fresh draw of classes and of their
    truth's measurement. Simulated on an S4-like space (tests/test_bootstrap_coverage.py) it
    covers that value ~96% of the time for a nominal 95% (a little conservative: the truth's
    noise enters through each drawn class's measured truth and again through the redraw); the
    per-candidate bootstrap covers ~55%. The drawn truth is ours plus fresh noise, so where the
    truth is noisy the interval sits a little below the point value (attenuation);
    :func:`rank_metrics` reports a disattenuated value against a noise-free truth beside it.

    Deterministic for a seed; the class draws are the same with and without the truth's noise.
    Resamples where the metric is undefined (NaN, e.g. constant scores) are skipped; the
    result's ``n_used`` says how many counted ((nan, nan) if none). ``metric_fn`` may be a
    registered name; pass extra arguments with functools.partial. Pearson, Spearman and Kendall
    are computed for all resamples at once from the candidates' multiplicities; other metrics
    are called once per resample. For extremal metrics (BR@K, WR@K, regret) a percentile
    bootstrap is only a rough guide."""
    fn = METRICS.get(metric_fn) if isinstance(metric_fn, str) else metric_fn
    s, t = _check(scores, truth)
    _check_boot(n_boot, alpha)
    cls = _classes(groups, s.size)
    noise = None if truth_repeats is None else _truth_noise(truth_repeats, cls, truth_reduce)
    kind = "drawn" if noise is not None and noise.estimable.any() else "fixed"
    return _interval(_bootstrap_values(fn, s, t, n_boot, seed, cls, noise, (kind,))[kind], alpha)


# -- everything at once --------------------------------------------------------------------
_RANK_VALUED = {"best_rank_at_k", "worst_rank_at_k"}
_CORRELATIONS = {"kendall_tau", "spearman", "pearson"}


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
    truth_reduce: str = "mean",
) -> dict[str, Any]:
    """Every registered metric on one (scores, truth) set, as a flat dict for a report row.

    Keys: ``n`` (candidates ranked), ``n_dropped``; per metric its name (``kendall_tau``,
    ``spearman``, ``pearson``, ``precision_at_10_naslib``, ``top1_regret``); a top-K metric
    once per k, named with K in percent (``precision_at_10``, ``best_rank_at_10``,
    ``worst_rank_at_20``, ...), the rank metrics also as percentiles (``best_rank_at_10_pct``).
    ``truth_noise`` says in words what the intervals do with the truth's noise (``not estimable
    (1 repeat)`` when no class has 2 repeats: never silently noise-free).

    With ``ci``, each value ``v`` gets ``v_ci`` = (low, high), the percentile interval of the
    two-level bootstrap of :func:`bootstrap_ci` (classes = ``groups``, then the truth's repeats),
    and ``v_ci_n`` = resamples used; plus ``n_boot``, ``alpha``, ``resampling_unit`` ("hash
    class" or "candidate"), ``n_classes`` and ``truth_resampled``. Where the truth's noise is
    resampled (``truth_repeats`` with >= 2 repeats for some class), also:

    - ``v_ci_fixed_truth``: the same class draws against the fixed truth (no truth noise);
    - for the correlations, ``v_truth_noise_share`` in [0, 1]: the share of this interval's
      variance that comes from redrawing the truth rather than from drawing classes (law of
      total variance: E[Var(v* | class draw)] / Var(v*), from two independent truth draws per
      class draw). This report's own number: it depends on the truth, the candidates and the
      ranker;
    - for the correlations, ``v_disattenuated`` and ``v_disattenuated_ci``: the value against a
      noise-free truth, estimated as :data:`DISATTENUATION` says (the method is repeated in
      ``disattenuation``); None where the noise is not estimable;
    - ``truth_classes`` and ``truth_classes_resampled`` (classes with >= 2 repeats: only those vary).

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
    cls = _classes(groups, n_in)[keep]
    cls = np.unique(cls, return_inverse=True)[1].ravel()
    noise = None
    if truth_repeats is not None:
        reps = np.asarray(truth_repeats, dtype=np.float64)
        if reps.ndim != 2 or reps.shape[0] != n_in:
            raise ValueError(f"truth_repeats must be (candidates, repeats) = ({n_in}, R); got {reps.shape}")
        noise = _truth_noise(reps[keep], cls, truth_reduce)
    resampled = noise is not None and bool(noise.estimable.any())
    if ci:
        _check_boot(n_boot, alpha)

    out: dict[str, Any] = {"n": int(s.size), "n_dropped": int(drop_lowest), "truth_noise": _noise_status(noise)}
    for name in list_metrics():
        fn = METRICS.get(name)
        variants = (
            [(name.removesuffix("_at_k") + "_at_" + _k_suffix(kk), partial(fn, k=kk)) for kk in ks]
            if _takes_k(fn) else [(name, fn)]
        )
        for key, f in variants:
            val = f(s, t)
            out[key] = val
            interval = None
            if ci:
                kinds = ["drawn", "fixed"] + (["drawn_again", "means", "drawn_mean"] if name in _CORRELATIONS else [])
                vals = _bootstrap_values(f, s, t, n_boot, seed, cls, noise, kinds if resampled else ["fixed"])
                interval = _interval(vals["drawn" if resampled else "fixed"], alpha)
                out[key + "_ci"] = (interval.low, interval.high)
                out[key + "_ci_n"] = interval.n_used
                if resampled:
                    fixed = _interval(vals["fixed"], alpha)
                    out[key + "_ci_fixed_truth"] = (fixed.low, fixed.high)
                if name in _CORRELATIONS and resampled:
                    out[key + "_truth_noise_share"] = _noise_share(vals["drawn"], vals["drawn_again"])
                if name in _CORRELATIONS:
                    point, dci = _disattenuated(f, s, cls, noise, vals, alpha) if resampled else (None, None)
                    out[key + "_disattenuated"] = point
                    out[key + "_disattenuated_ci"] = dci
            if name in _RANK_VALUED:
                out[key + "_pct"] = 100.0 * val / s.size
                if interval is not None:
                    out[key + "_pct_ci"] = (100.0 * interval.low / s.size,
                                            100.0 * interval.high / s.size)
    if ci:
        out["n_boot"] = int(n_boot)
        out["alpha"] = float(alpha)
        out["resampling_unit"] = "candidate" if groups is None else "hash class"
        out["n_classes"] = int(cls.max()) + 1
        out["truth_resampled"] = resampled
        out["disattenuation"] = DISATTENUATION if resampled else f"none: the truth's noise is {out['truth_noise']}"
        if noise is not None:
            out["truth_classes"] = int(noise.counts.size)
            out["truth_classes_resampled"] = int(noise.estimable.sum())
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
    truth_reduce: str = "mean",
) -> dict[str, Any]:
    """Mean over training seeds of metric(a[i]) - metric(b[i]), with a three-level bootstrap
    interval: is variant A really better than B?

    ``a[i]`` and ``b[i]`` score the same n candidates with supernets of training seed i (two
    variants, or calibrated vs not). ``truth`` (n,) is the point estimate's truth (default: each
    class's mean over its repeats, rounded as the truth's). Each of ``n_boot`` replicates draws,
    independently: the training seeds with replacement; the hash classes (``groups``; None: each
    candidate its own) with replacement, as in :func:`bootstrap_ci`, one draw shared by every
    seed and both arms, so the pairing is kept; each class's truth from its repeats,
    variance-matched, shared likewise (held fixed when ``truth_repeats`` is None or a class has
    one repeat). Its value is the mean over the drawn seeds of metric(a) - metric(b) on the drawn
    classes against the drawn truth; the interval is the percentile interval of these. (A drawn
    truth is noisier than ours, which shrinks both metrics and so their difference a little
    towards 0: the interval errs on the cautious side.)

    Returns ``metric``, ``difference`` (the mean over seeds), ``ci`` (low, high), ``ci_n``
    (replicates with a defined value), ``per_seed`` (list of per-seed differences),
    ``mean_a``, ``mean_b``, ``n_seeds``, ``n``, ``n_classes``, ``n_boot``, ``alpha``,
    ``truth_resampled``, ``truth_noise``."""
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
    cls = _classes(groups, n)
    noise = None if truth_repeats is None else _truth_noise(truth_repeats, cls, truth_reduce)
    if truth is None:
        if noise is None:
            raise ValueError("give the truth: truth_repeats, or truth= when the truth has no repeats")
        t = noise.means[cls]
    else:
        _, t = _check(xa[0], truth)
    resampled = noise is not None and bool(noise.estimable.any())

    ma = np.array([fn(v, t) for v in xa])
    mb = np.array([fn(v, t) for v in xb])
    per_seed = ma - mb
    n_seeds = len(xa)
    rng = np.random.default_rng(seed)
    rng_truth, rng_seeds = _truth_rng(seed, 0), _truth_rng(seed, 1)
    diffs = np.empty(n_boot)
    chunk = _chunk_rows(n_boot, n)
    classes = _Classes(cls)
    fixed_c = classes.constant(t)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        pick = rng_seeds.integers(0, n_seeds, size=(rows, n_seeds))
        wc = _class_counts(rng, classes.n_cls, rows)
        y, yc = t, fixed_c
        if resampled and noise.reduce == "mean":
            y, yc = None, _draw_class_truths(rng_truth, noise, rows)
        elif resampled:
            y, yc = _draw_truths(rng_truth, noise, rows, cls), None
        delta = np.stack([_eval_resamples(fn, va, wc, classes, y, yc) - _eval_resamples(fn, vb, wc, classes, y, yc)
                          for va, vb in zip(xa, xb)])
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
            "mean_a": mean_a, "mean_b": mean_b, "n_seeds": n_seeds, "n": int(n), "n_classes": int(cls.max()) + 1,
            "n_boot": int(n_boot), "alpha": float(alpha), "truth_resampled": resampled,
            "truth_noise": _noise_status(noise)}


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


#: fewest classes with every repeat for which :func:`split_half_reliability` gives a number:
#: the tau between two half-means of fewer classes moves too much to mean anything (with 3
#: classes tau takes the values -1, -1/3, 1/3, 1 only)
MIN_RELIABILITY_CLASSES = 10

_RELIABILITY_NUMBERS = ("split_half_tau", "split_half_tau_sd", "split_half_pearson", "reliability",
                        "estimated_pearson", "estimated_tau", "seeds_needed", "seeds_needed_exact")


def split_half_reliability(
    repeats: ArrayLike, *, n_splits: int = 100, seed: int = 0, target: float = 0.85,
    min_classes: int = MIN_RELIABILITY_CLASSES,
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
    by one seed and are treated as half the count each.

    ``estimable``: False with fewer than ``min_classes`` complete classes (default
    :data:`MIN_RELIABILITY_CLASSES`); then ``status`` says "not estimable (...)", every number
    above is None and ``projected_tau`` is empty: a caller must not read such a truth as
    reliable (or unreliable). Otherwise ``status`` is "estimated"."""
    reps = np.asarray(repeats, dtype=np.float64)
    if reps.ndim != 2:
        raise ValueError(f"repeats must be (classes, seeds); got shape {reps.shape}")
    full = reps[np.isfinite(reps).all(axis=1)]
    n_cls, n_seeds = full.shape
    if n_seeds < 2:
        raise ValueError(f"split halves need >= 2 seeds; got {n_seeds}")
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a tau in (0, 1), got {target}")
    if n_cls < max(3, int(min_classes)):
        return {"n_classes": int(n_cls), "n_seeds": int(n_seeds), "n_splits": 0, "estimable": False,
                "status": f"not estimable ({n_cls} classes with all {n_seeds} repeats; needs >= "
                          f"{max(3, int(min_classes))})",
                **{k: None for k in _RELIABILITY_NUMBERS}, "target_tau": float(target), "projected_tau": {}}
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
        "estimable": True, "status": "estimated",
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
