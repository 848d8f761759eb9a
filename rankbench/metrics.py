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
iterate over the same list; :func:`rank_metrics` computes all of them, with bootstrap CIs.
"""
from __future__ import annotations

import inspect
import math
from functools import partial
from typing import Any, Callable, Iterable

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
    "best_rank_at_k",
    "worst_rank_at_k",
    "top1_regret",
    "ConfidenceInterval",
    "bootstrap_ci",
    "rank_metrics",
    "group_mean",
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


def bootstrap_ci(
    metric_fn: MetricFn | str,
    scores: ArrayLike,
    truth: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of ``metric_fn(scores, truth)``, resampling candidates (pairs)
    with replacement: the spread a single number like tau hides.

    Deterministic for a seed. Resamples where the metric is undefined (NaN, e.g. constant
    scores) are skipped; the result's ``n_used`` says how many counted ((nan, nan) if none).
    ``metric_fn`` may be a registered name; pass extra arguments with functools.partial.
    Pearson, Spearman and Kendall are computed for all resamples at once from the resample
    multiplicities; other metrics are called once per resample. For extremal metrics (BR@K,
    WR@K, regret) a percentile bootstrap is only a rough guide."""
    fn = METRICS.get(metric_fn) if isinstance(metric_fn, str) else metric_fn
    s, t = _check(scores, truth)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = s.size
    batch = _BATCHED.get(fn)
    if batch is _batch_kendall and n > _KENDALL_BATCH_MAX_N:
        batch = None
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2**20 // n))
    cache: dict[str, Any] = {}
    vals = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(rows, n))
        if batch is not None:
            flat = (idx + n * np.arange(rows)[:, None]).ravel()
            w = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
            vals[start:start + rows] = batch(s, t, w, cache)
        else:
            for r in range(rows):
                vals[start + r] = fn(s[idx[r]], t[idx[r]])
    used = vals[np.isfinite(vals)]
    if used.size == 0:
        return ConfidenceInterval(np.nan, np.nan, 0, n_boot, alpha)
    low, high = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(low, high, used.size, n_boot, alpha)


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
) -> dict[str, Any]:
    """Every registered metric on one (scores, truth) set, as a flat dict for a report row.

    Keys: ``n`` (candidates ranked), ``n_dropped``; per metric its name (``kendall_tau``,
    ``spearman``, ``pearson``, ``top1_regret``); a top-K metric once per k, named with K in
    percent (``precision_at_10``, ``best_rank_at_10``, ``worst_rank_at_20``, ...), the rank
    metrics also as percentiles (``best_rank_at_10_pct``). With ``ci``, each value ``v`` gets
    ``v_ci`` = (low, high) and ``v_ci_n`` = resamples used, plus ``n_boot`` and ``alpha``.

    ``drop_lowest=N`` computes everything on all but the N lowest-scored candidates, the
    public MixPath code's option (N = 30 there); ties at that cut are broken by input order."""
    s, t = _check(scores, truth)
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
            interval = bootstrap_ci(f, s, t, n_boot, alpha, seed) if ci else None
            if interval is not None:
                out[key + "_ci"] = (interval.low, interval.high)
                out[key + "_ci_n"] = interval.n_used
            if name in _RANK_VALUED:
                out[key + "_pct"] = 100.0 * val / s.size
                if interval is not None:
                    out[key + "_pct_ci"] = (100.0 * interval.low / s.size,
                                            100.0 * interval.high / s.size)
    if ci:
        out["n_boot"] = int(n_boot)
        out["alpha"] = float(alpha)
    return out


# -- per hash class ------------------------------------------------------------------------
def group_mean(scores: ArrayLike, groups: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean score per group, e.g. over isomorphic subnets sharing an NB101 hash, so that a
    ranking can be measured per hash class as well as per subnet.

    Returns (unique groups, sorted as np.unique sorts them; their mean scores)."""
    s = _as_1d(scores, "scores")
    g = np.asarray(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {g.shape}")
    if g.size != s.size:
        raise ValueError(f"scores and groups differ in length: {s.size} vs {g.size}")
    uniq, inv = np.unique(g, return_inverse=True)
    inv = inv.ravel()
    counts = np.bincount(inv, minlength=uniq.size)
    return uniq, np.bincount(inv, weights=s, minlength=uniq.size) / counts
