"""Do the bootstrap intervals cover what they claim? Seeded simulations on a synthetic space with
the cluster structure of S4: classes of isomorphic copies that share one network and one truth
(30 classes of 1-14 copies, ~225 candidates), scores = the supernet's view of the class + a
little noise per copy. The population is an unbounded supply of such classes; its tau is
measured once on 5,000 classes.

Drawing candidates one by one treats the copies of a class as independent and gives intervals
~3x too narrow (coverage ~50%); drawing classes covers ~95%."""
from __future__ import annotations

import numpy as np
import pytest

import rankbench.metrics as M
from rankbench.metrics import kendall_tau

N_REPS = 200  # replications: a 95% coverage is measured to about +-1.5%
N_BOOT = 200
N_CLASSES = 30


def _space(rng: np.random.Generator, n_cls: int, truth_sd: float = 0.0, repeats: int = 3):
    """(scores, per-candidate class, repeats (classes, R), noise-free class values)."""
    sizes = rng.integers(1, 15, n_cls)
    g = np.repeat(np.arange(n_cls), sizes)
    mu = rng.normal(size=n_cls)
    seen = mu + rng.normal(0, 0.7, n_cls)  # what the supernet makes of each network
    scores = seen[g] + rng.normal(0, 0.3, g.size)  # its copies differ a little (other weights)
    reps = mu[:, None] + rng.normal(0, truth_sd, (n_cls, repeats))
    return scores, g, reps, mu


def _population(truth_sd: float) -> tuple[float, float]:
    """Population tau against the noise-free values and against a truth measured with 3 repeats."""
    s, g, reps, mu = _space(np.random.default_rng(12345), 5000, truth_sd)
    return kendall_tau(s, mu[g]), kendall_tau(s, reps.mean(1)[g])


def _covers(ci: M.ConfidenceInterval, value: float) -> bool:
    return ci.low <= value <= ci.high


def test_class_bootstrap_covers_the_population_tau_and_the_subnet_bootstrap_does_not() -> None:
    tau_pop, _ = _population(0.0)
    rng = np.random.default_rng(0)
    by_class, by_subnet, widths = [], [], []
    for rep in range(N_REPS):
        s, g, _, mu = _space(rng, N_CLASSES)
        t = mu[g]
        cls = M._classes(g, s.size)
        ci_cls = M._interval(M._bootstrap_values(kendall_tau, s, t, N_BOOT, rep, cls)["fixed"], 0.05)
        ci_sub = M._interval(M._bootstrap_values(kendall_tau, s, t, N_BOOT, rep)["fixed"], 0.05)
        by_class.append(_covers(ci_cls, tau_pop))
        by_subnet.append(_covers(ci_sub, tau_pop))
        widths.append((ci_cls.high - ci_cls.low) / (ci_sub.high - ci_sub.low))
    assert 0.88 <= np.mean(by_class) <= 0.99, np.mean(by_class)
    assert np.mean(by_subnet) < 0.75, np.mean(by_subnet)
    assert np.median(widths) > 2.0  # the measurement on S4: 2-3.4x


def test_two_level_bootstrap_covers_tau_against_a_measured_truth() -> None:
    """A noisy truth (3 repeats): the two-level percentile interval covers the population tau
    against a truth measured the same way; the disattenuated interval covers the tau against the
    noise-free values (both as their docstrings say), and the class-only interval, which ignores
    the truth's noise, covers the noise-free tau less often."""
    tau_free, tau_measured = _population(0.6)
    assert tau_free - tau_measured > 0.02  # the truth's noise matters here
    rng = np.random.default_rng(1)
    measured, free, fixed_free = [], [], []
    for rep in range(N_REPS):
        s, g, reps, _ = _space(rng, N_CLASSES, 0.6)
        cls = M._classes(g, s.size)
        noise = M._truth_noise(reps[g], cls, "mean")
        t = noise.means[cls]
        v = M._bootstrap_values(kendall_tau, s, t, N_BOOT, rep, cls, noise, ("drawn", "fixed", "means", "drawn_mean"))
        measured.append(_covers(M._interval(v["drawn"], 0.05), tau_measured))
        _, (lo, hi) = M._disattenuated(kendall_tau, s, cls, noise, v, 0.05)
        free.append(lo <= tau_free <= hi)
        fixed_free.append(_covers(M._interval(v["fixed"], 0.05), tau_free))
    assert 0.88 <= np.mean(measured) <= 0.995, np.mean(measured)
    assert 0.85 <= np.mean(free) <= 0.995, np.mean(free)
    assert np.mean(fixed_free) < np.mean(free)


@pytest.mark.parametrize("reduce", ["mean", "random"])
def test_coverage_helpers_agree_with_the_public_functions(reduce: str) -> None:
    """The simulation above calls internals for speed: they are what bootstrap_ci and
    rank_metrics report."""
    s, g, reps, mu = _space(np.random.default_rng(3), N_CLASSES, 0.6)
    t = np.round(reps.mean(1), 12)[g] if reduce == "mean" else reps[g, 0]
    cls = M._classes(g, s.size)
    noise = M._truth_noise(reps[g], cls, reduce)
    v = M._bootstrap_values(kendall_tau, s, t, 100, 4, cls, noise, ("drawn", "fixed", "means", "drawn_mean"))
    r = M.rank_metrics(s, t, n_boot=100, seed=4, truth_repeats=reps[g], groups=g, truth_reduce=reduce, k=0.1)
    assert r["kendall_tau_ci"] == tuple(M._interval(v["drawn"], 0.05))
    assert tuple(M.bootstrap_ci(kendall_tau, s, t, n_boot=100, seed=4, truth_repeats=reps[g], groups=g,
                                truth_reduce=reduce)) == r["kendall_tau_ci"]
    point, ci = M._disattenuated(kendall_tau, s, cls, noise, v, 0.05)
    assert (r["kendall_tau_disattenuated"], r["kendall_tau_disattenuated_ci"]) == (point, ci)
