"""Paired differences of two rankers over training seeds (:func:`paired_difference`)."""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from rankbench.metrics.bootstrap import (
    _check_boot,
    _chunk_rows,
    _class_counts,
    _Classes,
    _classes,
    _draw_class_truths,
    _draw_truths,
    _eval_resamples,
    _interval,
    _noise_status,
    _truth_noise,
    _truth_rng,
)
from rankbench.metrics.point import METRICS, MetricFn, _as_1d, _check


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
        if resampled and noise.reduce == "mean":  # type: ignore[union-attr]  # noise is given for these kinds
            y, yc = None, _draw_class_truths(rng_truth, noise, rows)  # type: ignore[arg-type]  # noise is given for these kinds
        elif resampled:
            y, yc = _draw_truths(rng_truth, noise, rows, cls), None  # type: ignore[arg-type]  # noise is given for these kinds
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


