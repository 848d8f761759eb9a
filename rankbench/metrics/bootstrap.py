"""Bootstrap intervals whose unit is the hash class, with the truth's repeats redrawn
(:func:`bootstrap_ci`), and every registered metric with its interval at once
(:func:`rank_metrics`)."""
from __future__ import annotations

import inspect
import math
from functools import partial
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from rankbench.metrics.point import (
    MEAN_DECIMALS,
    METRICS,
    MetricFn,
    _check,
    _num_top,
    kendall_tau,
    list_metrics,
    pearson,
    spearman,
)


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
        y = yc[:, classes.cls]  # type: ignore[index]  # y or yc is given
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
                yc = noise.means[None, :]  # type: ignore[union-attr]  # noise is given for these kinds
            elif kind == "drawn_mean" and noise.reduce == "mean" and "drawn" in kinds:  # type: ignore[union-attr]  # noise is given for these kinds
                vals[kind][start:start + rows] = vals["drawn"][start:start + rows]
                continue
            elif kind == "drawn_mean" or noise.reduce == "mean":  # type: ignore[union-attr]  # noise is given for these kinds
                yc = _draw_class_truths(rngs[kind], noise, rows)  # type: ignore[arg-type]  # noise is given for these kinds
            else:
                y = _draw_truths(rngs[kind], noise, rows, classes.cls)  # type: ignore[arg-type]  # noise is given for these kinds
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
                    point, dci = _disattenuated(f, s, cls, noise, vals, alpha) if resampled else (None, None)  # type: ignore[arg-type]  # noise is given for these kinds
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


