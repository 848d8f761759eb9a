"""How reliable a truth of a few noisy repeats is: split-half estimates
(:func:`split_half_reliability`)."""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from rankbench.metrics.bootstrap import _repeat_means
from rankbench.metrics.point import kendall_tau


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


