"""Ground truth: how good each candidate really is, from NAS-Bench-101 or measured here.

Two sources, one shape (:class:`Truth`: per NB101 hash the repeats, their mean and spread):

- ``nb101``: a store (``rankbench.nb101.open``); default truth = the mean over the 3
  repeats of the 108-epoch validation accuracy (:func:`truth_from_store`);
- ``measured``: the stand-alone NB101 network of each hash class trained from scratch here,
  ``cfg.truth.seeds`` times (:func:`measure_truth`, ``rankbench truth``), for presets whose
  network is not NB101's (the quick preset). Repeats = seeds.

:func:`load_truth` resolves ``cfg.truth.source``. A truth that covers too few candidates is a
:class:`TruthCoverageError` that says how to get a complete one
(:meth:`Truth.check_coverage`), never a silently tiny ranking.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from rankbench import nb101
from rankbench._io import atomic_path, short_digest, versions, write_json
from rankbench._paths import bundled_dir, data_home
from rankbench._registry import Registry
from rankbench.config import _NOT_TRAINING
from rankbench.metrics import MIN_RELIABILITY_CLASSES, split_half_reliability
from rankbench.nb101.store import DOWNLOAD_HINT
from rankbench.numerics import check_same_platform, setup_compute
from rankbench.references import NetworkSize
from rankbench.rundir import runs_root
from rankbench.spaces import space_from_config

__all__ = [
    "Truth", "TruthCoverage", "TruthCoverageError", "truth_from_store", "load_truth_csv", "load_truth",
    "measure_truth", "measured_classes", "measured_truth_path", "measured_truth_reliability", "MEASURED_COLUMNS",
    "MIN_COVERAGE",
    "MIN_CANDIDATES", "TruthSource", "TRUTHS", "truth_source", "list_truths", "NB101Truth", "MeasuredTruth",
    "CsvTruth", "also_key", "load_also_truth",
]

#: default coverage a ranking needs: this fraction of the candidates, and at least MIN_CANDIDATES
MIN_COVERAGE = 0.5
MIN_CANDIDATES = 3
#: columns of a measured-truth CSV (one row per hash class and seed)
MEASURED_COLUMNS = ["hash", "adjacency", "ops", "num_paths", "seed", "epochs", "validation_accuracy",
                    "test_accuracy", "train_loss", "params", "wall_s"]

_MEASURED_HINT = ("measure a truth for this preset with `rankbench truth --preset {preset}` and use it "
                  "with `--set truth.source=measured` (or give its CSV path as truth.source)")


class TruthCoverageError(ValueError):
    """The truth lacks too many of the candidates to rank them."""


@dataclass(frozen=True)
class TruthCoverage:
    """How many candidates (rows, repeats included) and distinct hash classes have a truth."""

    candidates: int
    covered: int
    classes: int
    classes_covered: int
    missing: list[str] = field(default_factory=list)  # hashes without a truth

    @property
    def fraction(self) -> float:
        return self.covered / self.candidates if self.candidates else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "covered": self.covered, "fraction": round(self.fraction, 6),
                "classes": self.classes, "classes_covered": self.classes_covered,
                "missing_hashes": list(self.missing)}

    def __str__(self) -> str:
        return (f"{self.covered}/{self.candidates} candidates ({100 * self.fraction:.1f}%), "
                f"{self.classes_covered}/{self.classes} hash classes")


@dataclass(frozen=True, eq=False)
class Truth:
    """Per-hash ground truth. ``table`` is indexed by NB101 hash with columns ``truth`` (mean
    over repeats), ``truth_std`` (population std over repeats; 0 for one repeat),
    ``n_repeats`` and ``repeat_0``, ``repeat_1``, ... (NaN where a class lacks that repeat).
    For a measured truth, ``repeat_j`` is training seed ``repeat_seeds[j]`` for every class.

    ``reduce`` ("mean" or "random") and ``seed`` say how :meth:`values` turns repeats into one
    number per candidate."""

    table: pd.DataFrame
    source: str  # "nb101" | "measured" | "csv"
    location: str  # store or CSV path
    metric: str
    reduce: str = "mean"
    seed: int = 0
    epochs: int | None = None
    note: str = ""  # e.g. "bundled NB101 sample"
    provenance: dict[str, Any] = field(default_factory=dict)
    repeat_seeds: tuple[int, ...] = ()  # the training seed of each repeat column (measured)

    @property
    def repeats(self) -> np.ndarray:
        cols = [c for c in self.table.columns if c.startswith("repeat_")]
        return self.table[cols].to_numpy(dtype=np.float64)

    def repeats_for(self, hashes: Sequence[str]) -> np.ndarray:
        """(candidates, repeats) array of each candidate hash's repeats, NaN where a hash or a
        repeat is missing: what a bootstrap needs to resample the truth's own noise
        (:func:`rankbench.metrics.rank_metrics` ``truth_repeats``)."""
        reps = self.repeats
        rows = self.table.index.get_indexer(list(hashes))
        out = np.full((len(rows), reps.shape[1]), np.nan)
        ok = rows >= 0
        out[ok] = reps[rows[ok]]
        return out

    def reliability(self, *, n_splits: int = 100, seed: int = 0, target: float = 0.85) -> dict[str, Any] | None:
        """Split-half estimate of how well this truth agrees with a noise-free one
        (:func:`rankbench.metrics.split_half_reliability`); None with fewer than 2 repeats.
        With fewer than :data:`rankbench.metrics.MIN_RELIABILITY_CLASSES` classes to estimate it
        from, a dict with ``estimable`` False and ``status`` "not estimable (...)" (no numbers).

        Uses every class on the repeats all classes have, or the classes with every repeat,
        whichever has enough classes to estimate from, then keeps more values (more classes on a
        tie): a measurement in progress lacks some seeds for some classes."""
        reps = self.repeats
        ok = ~np.isnan(reps)
        cols = np.flatnonzero(ok.all(axis=0))
        options = [(reps[:, cols], cols), (reps[ok.all(axis=1)], np.arange(reps.shape[1]))]
        options = [(r, c) for r, c in options if r.shape[0] >= 1 and r.shape[1] >= 2]
        if not options:
            return None
        use, used_cols = max(options, key=lambda o: (o[0].shape[0] >= MIN_RELIABILITY_CLASSES, o[0].size,
                                                     o[0].shape[0]))
        rel = split_half_reliability(use, n_splits=n_splits, seed=seed, target=target)
        if self.repeat_seeds:
            rel["seeds"] = [int(self.repeat_seeds[j]) for j in used_cols]
        return rel

    def __contains__(self, h: str) -> bool:
        return h in self.table.index

    def coverage(self, hashes: Iterable[str]) -> TruthCoverage:
        hs = list(hashes)
        have = np.array([h in self.table.index for h in hs], dtype=bool)
        distinct = list(dict.fromkeys(hs))
        missing = [h for h in distinct if h not in self.table.index]
        return TruthCoverage(candidates=len(hs), covered=int(have.sum()), classes=len(distinct),
                             classes_covered=len(distinct) - len(missing), missing=missing)

    def check_coverage(self, hashes: Iterable[str], *, min_fraction: float = MIN_COVERAGE,
                       min_count: int = MIN_CANDIDATES, preset: str = "quick") -> TruthCoverage:
        """:meth:`coverage`, raising :class:`TruthCoverageError` (with what to do) when fewer
        than ``min_count`` candidates or less than ``min_fraction`` of them have a truth."""
        cov = self.coverage(hashes)
        if cov.covered < min_count or cov.fraction < min_fraction:
            need = f"at least {min_count} candidates and {100 * min_fraction:g}% of them"
            fix = (TRUTHS.get(self.source) if self.source in TRUTHS else TruthSource).coverage_fix(self, preset)
            raise TruthCoverageError(
                f"the truth {self.describe_short()} covers only {cov}; a ranking needs {need}. {fix}")
        return cov

    def values(self, hashes: Sequence[str], *, reduce: str | None = None,
               seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(truth, spread) per candidate hash, NaN where missing. ``reduce="mean"``: the mean of
        the repeats; ``"random"``: one repeat drawn per candidate (as NB101's API does per
        query), seeded, so repeated candidates may draw different repeats. The spread is the
        std over the hash's repeats either way."""
        reduce = reduce or self.reduce
        seed = self.seed if seed is None else seed
        rows = self.table.index.get_indexer(list(hashes))
        ok = rows >= 0
        mean = np.full(len(rows), np.nan)
        std = np.full(len(rows), np.nan)
        mean[ok] = self.table["truth"].to_numpy()[rows[ok]]
        std[ok] = self.table["truth_std"].to_numpy()[rows[ok]]
        if reduce == "mean":
            return mean, std
        if reduce != "random":
            raise ValueError(f"truth.reduce must be 'mean' or 'random', got {reduce!r}")
        reps = self.repeats
        counts = self.table["n_repeats"].to_numpy()
        rng = np.random.default_rng(seed)
        out = np.full(len(rows), np.nan)
        for i in np.flatnonzero(ok):
            r = rows[i]
            present = reps[r][~np.isnan(reps[r])]
            out[i] = present[rng.integers(0, counts[r])] if len(present) else np.nan
        return out, std

    def digest(self) -> str:
        """A short hash of the truth's values (hashes and repeats): a report made against another
        truth (e.g. after more seeds were measured) is another report."""
        return short_digest(self.table.to_csv(float_format="%.17g"))

    def describe_short(self) -> str:
        what = f"{self.source} ({self.location}" + (f", {self.note}" if self.note else "") + ")"
        return what

    def describe(self) -> dict[str, Any]:
        """Which truth this is, for reports (metrics.json)."""
        d = {"source": self.source, "location": self.location, "metric": self.metric, "reduce": self.reduce,
             "seed": self.seed, "epochs": self.epochs, "classes": int(len(self.table)),
             "repeats_per_class": {int(k): int(v) for k, v in
                                   self.table["n_repeats"].value_counts().sort_index().items()}}
        if self.repeat_seeds:
            d["seeds"] = [int(v) for v in self.repeat_seeds]
        rel = self.reliability()
        if rel is not None:
            d["reliability"] = rel
        if self.note:
            d["note"] = self.note
        if self.provenance:
            d["provenance"] = self.provenance
        return d


#: decimals kept in a mean over repeats (accuracies are fractions; far below any real difference)
TRUTH_DECIMALS = 12


def _table(hashes: Sequence[str], reps: np.ndarray) -> pd.DataFrame:
    reps = np.asarray(reps, dtype=np.float64).reshape(len(hashes), -1)
    n = (~np.isnan(reps)).sum(axis=1)
    keep = n > 0
    reps, n = reps[keep], n[keep]
    with np.errstate(invalid="ignore"):
        # rounded to 12 decimals: two classes with the same accuracies in another order (e.g.
        # 0.35, 0.37 and 0.37, 0.35) must tie; float summation can leave them 1 ulp apart,
        # which turns a tie into an order and shifts Kendall's tau-b
        mean = np.round(np.nanmean(reps, axis=1), TRUTH_DECIMALS) if len(reps) else np.zeros(0)
        std = np.nanstd(reps, axis=1) if len(reps) else np.zeros(0)
    df = pd.DataFrame({"truth": mean, "truth_std": std, "n_repeats": n.astype(int)},
                      index=pd.Index(np.asarray(hashes, dtype=object)[keep], name="hash"))
    for j in range(reps.shape[1]):
        df[f"repeat_{j}"] = reps[:, j]
    return df


def _hash_of(item: Any) -> str:
    if isinstance(item, str):
        return item.strip().lower()
    h = getattr(item, "hash", None)
    if isinstance(h, str):
        return h
    raise TypeError(f"expected a subnet, a ModelSpec or an NB101 hash, got {type(item).__name__}")


# -- NB101 -----------------------------------------------------------------------------------
def truth_from_store(subnets: Iterable[Any], store, metric: str = "validation_accuracy", reduce: str = "mean",
                     epochs: int = 108, seed: int = 0) -> Truth:
    """NB101 truth for the distinct hashes of ``subnets`` (subnets, ModelSpecs or hashes).

    Every repeat the store holds is kept; ``truth`` = their mean, ``truth_std`` their spread.
    Hashes the store lacks (or that lack ``metric``) are absent: see :meth:`Truth.coverage`."""
    hashes = list(dict.fromkeys(_hash_of(s) for s in subnets))
    reps = store.query_many(hashes, epochs=epochs, metric=metric, reduce="all") if hashes else np.zeros((0, 1))
    return Truth(table=_table(hashes, reps), source="nb101", location=str(store.path), metric=metric,
                 reduce=reduce, seed=seed, epochs=int(epochs),
                 note="bundled NB101 sample" if getattr(store, "is_sample", False) else "")


# -- measured --------------------------------------------------------------------------------
def measured_truth_path(preset: str) -> Path:
    """The measured truth of a preset: what ``rankbench truth`` wrote
    (``$RANKBENCH_HOME/truth-<preset>.csv``) if it exists, else the shipped
    ``data/truth-<preset>.csv``."""
    user = data_home() / f"truth-{preset}.csv"
    return user if user.exists() else bundled_dir() / f"truth-{preset}.csv"


def load_truth_csv(path: str | os.PathLike, metric: str = "validation_accuracy", reduce: str = "mean",
                   seed: int = 0, *, source: str = "measured") -> Truth:
    """A measured-truth CSV (``rankbench truth`` output): one row per (hash, seed); the
    repeats of a hash are its seeds, one column per seed (sorted) so that split halves of the
    seeds are the same seeds for every class. Its JSON sidecar, if any, becomes the provenance."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no truth CSV at {p}")
    df = pd.read_csv(p, dtype={"hash": str})
    if "hash" not in df.columns or metric not in df.columns:
        raise ValueError(f"{p} is not a truth CSV with a {metric!r} column (columns: {list(df.columns)}); "
                         f"measured truth has {', '.join(MEASURED_COLUMNS)}")
    df = df.dropna(subset=[metric])
    order = list(dict.fromkeys(df["hash"]))
    seeds: tuple[int, ...] = ()
    if "seed" in df.columns and len(df) and df["seed"].notna().all() and not df.duplicated(["hash", "seed"]).any():
        seeds = tuple(int(v) for v in sorted(df["seed"].unique()))
        reps = (df.pivot(index="hash", columns="seed", values=metric).reindex(index=order, columns=list(seeds))
                .to_numpy(dtype=np.float64))
    else:  # no seed column (or a seed twice): the rows of a hash in file order
        groups = {h: g[metric].to_numpy(dtype=np.float64) for h, g in df.groupby("hash", sort=False)}
        width = max((len(v) for v in groups.values()), default=1)
        reps = np.full((len(order), width), np.nan)
        for i, h in enumerate(order):
            reps[i, :len(groups[h])] = groups[h]
    prov: dict[str, Any] = {}
    side = p.with_suffix(".json")
    if side.exists():
        try:
            full = json.loads(side.read_text())
            prov = {k: full[k] for k in ("preset", "seeds", "train_epochs", "model", "config_fingerprint",
                                         "total_wall_s", "device", "finished") if k in full}
        except (OSError, json.JSONDecodeError):
            prov = {}
    return Truth(table=_table(order, reps), source=source, location=str(p), metric=metric, reduce=reduce,
                 seed=seed, epochs=None, provenance=prov, repeat_seeds=seeds)


def measured_truth_reliability(path: str | os.PathLike, *, metric: str = "validation_accuracy",
                               n_splits: int = 100, seed: int = 0, target: float = 0.85) -> dict[str, Any]:
    """The split-half reliability of a measured-truth CSV (for its JSON and data/README.md):
    split-half tau, the estimated tau against a noise-free truth, the seeds ``target`` needs."""
    rel = load_truth_csv(path, metric).reliability(n_splits=n_splits, seed=seed, target=target)
    if rel is None:
        raise ValueError(f"{path} has fewer than 2 seeds per hash class: "
                         f"no split halves to compare; measure more seeds with `rankbench truth --seeds N`")
    return rel


# -- truth sources: one class per kind, registered by name ------------------------------------
class TruthSource:
    """Where a ground truth comes from (``cfg.truth.source``): how to load it, which network
    size its reference rankers count at, how to complete a truth that covers too little, and
    how figures label it. Register a subclass with ``@TRUTHS.register(name)``; a
    ``truth.source`` that names no registered source is a CSV path (``csv``)."""

    #: axis label of figures drawn against this truth
    label = "ground-truth accuracy (%)"
    #: whether its repeats are trainings measured by ``rankbench truth`` (so ``truth.seeds`` is
    #: what a new measurement would train, not what this truth holds)
    measured_here = True
    #: (preset, truth.source) of a config this source loads from the shipped data, for its
    #: contract test (``{bundled}``: the bundled data folder)
    example: tuple[str, str] = ("quick", "")

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def load(self, subnets: Iterable[Any] | None = None) -> Truth:
        raise NotImplementedError

    def network_size(self) -> NetworkSize:
        """The stand-alone network the truth was measured at: the run's model size."""
        m = self.cfg.model
        return NetworkSize(stem_channels=m.width, stacks=m.stacks, cells_per_stack=m.cells_per_stack,
                           resolution=self.cfg.data.resolution, num_classes=m.num_classes)

    @contextlib.contextmanager
    def reference_store(self) -> Iterator[Any]:
        """An NB101 store the reference rankers may read (counts, shorter budgets), or None."""
        yield None

    def axis_label(self) -> str:
        return self.label

    @staticmethod
    def coverage_fix(truth: Truth, preset: str) -> str:
        """What to do when ``truth`` covers too few candidates."""
        return (f"Measure the missing classes with `rankbench truth --preset {preset} --out "
                f"{truth.location}` (it resumes), or use NB101 truth: `rankbench data import "
                f"nasbench_only108.tfrecord` and --set truth.source=nb101.")


TRUTHS: Registry[type[TruthSource]] = Registry("truth source")


@TRUTHS.register("nb101")
class NB101Truth(TruthSource):
    """NAS-Bench-101's own trainings: a store (truth.store, else rankbench.nb101.open()'s search)."""

    measured_here = False
    example = ("nb101-quick", "nb101")

    def load(self, subnets: Iterable[Any] | None = None) -> Truth:
        """The store's truth of ``subnets`` (default: every subnet of the config's space)."""
        t = self.cfg.truth
        if subnets is None:  # every cell of the config's space (any space, not S4 alone)
            space = space_from_config(self.cfg)
            subnets = space.subnets() if hasattr(space, "subnets") else list(space.hash_classes())
        store = nb101.open(t.store or None)
        try:
            return truth_from_store(subnets, store, metric=t.metric, reduce=t.reduce, epochs=t.epochs,
                                    seed=self.cfg.score.seed)
        finally:
            store.close()

    def network_size(self) -> NetworkSize:
        """NB101's own networks: 128 channels, 3 x 3 cells, 32x32."""
        return NetworkSize(num_classes=self.cfg.model.num_classes)

    @contextlib.contextmanager
    def reference_store(self) -> Iterator[Any]:
        store = nb101.open(self.cfg.truth.store or None)
        try:
            yield store
        finally:
            store.close()

    def axis_label(self) -> str:
        metric = self.cfg.truth.metric.replace("_accuracy", "").replace("_", " ")
        how = "mean of repeats" if self.cfg.truth.reduce == "mean" else "one repeat"
        return f"NB101 {metric} accuracy (%, {how})"

    @staticmethod
    def coverage_fix(truth: Truth, preset: str) -> str:
        return (f"The full benchmark covers every S4 cell: {DOWNLOAD_HINT} "
                f"(then truth.store or $RANKBENCH_DATA points at it). Or "
                + _MEASURED_HINT.format(preset=preset) + ".")


@TRUTHS.register("measured")
class MeasuredTruth(TruthSource):
    """Stand-alone networks trained from scratch here (rankbench truth): the preset's CSV."""

    label = "stand-alone accuracy (%, trained from scratch)"
    example = ("quick", "measured")

    def load(self, subnets: Iterable[Any] | None = None) -> Truth:
        cfg, t = self.cfg, self.cfg.truth
        path = measured_truth_path(cfg.preset)
        if not path.exists():
            raise FileNotFoundError(
                f"no measured truth for preset {cfg.preset!r} (looked in $RANKBENCH_HOME, then the "
                f"bundled data: {path}). Measure it with `rankbench truth "
                f"--preset {cfg.preset}` (trains every hash class from scratch; resumable), or use NB101 "
                f"truth: --set truth.source=nb101 with an imported store (rankbench data import "
                f"nasbench_only108.tfrecord)")
        return load_truth_csv(path, t.metric, t.reduce, cfg.score.seed, source="measured")


@TRUTHS.register("csv")
class CsvTruth(TruthSource):
    """Any truth CSV: truth.source is its path (one row per hash and seed, as rankbench truth writes)."""

    example = ("quick", "{bundled}/truth-quick.csv")

    def load(self, subnets: Iterable[Any] | None = None) -> Truth:
        t = self.cfg.truth
        path = Path(t.source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"truth.source {t.source!r} is neither "
                                    + ", ".join(repr(n) for n in TRUTHS.names() if n != "csv")
                                    + " nor an existing CSV file")
        return load_truth_csv(path, t.metric, t.reduce, self.cfg.score.seed, source="csv")


def truth_source(cfg: Any) -> TruthSource:
    """The source ``cfg.truth.source`` names: a registered one, else a CSV path."""
    name = cfg.truth.source
    return TRUTHS.get(name if name in TRUTHS else "csv")(cfg)


def list_truths() -> list[str]:
    return TRUTHS.names()


def load_truth(cfg: Any, subnets: Iterable[Any] | None = None) -> Truth:
    """The truth ``cfg.truth`` names (:func:`truth_source`): ``"nb101"`` (the store
    ``truth.store``, else ``rankbench.nb101.open()``'s search), ``"measured"``
    (``data/truth-<preset>.csv``) or a path to a CSV. ``subnets`` (default: every subnet of
    the config's space) limits an NB101 truth to the hashes needed."""
    return truth_source(cfg).load(subnets)


# -- extra truths (truth.also): a report ranks against each too, side by side ------------------
def also_key(source: str) -> str:
    """The name an extra truth goes by in a report (metrics.json "also", the scores.csv column
    ``truth_<key>``): a registered source's name ("measured", "nb101"), else its CSV's stem."""
    return source if source in TRUTHS and source != "csv" else Path(source).expanduser().stem


def load_also_truth(cfg: Any, source: str, subnets: Iterable[Any] | None = None) -> Truth:
    """The extra truth ``source`` (one of ``cfg.truth.also``), loaded as ``truth.source =
    source`` would be (the run's metric, reduction and seed). A missing one says where it was
    looked for and how to get it."""
    sub = replace(cfg, truth=replace(cfg.truth, source=source, also=()))
    head = f"truth.also = {list(cfg.truth.also)!r}: the extra truth {source!r} cannot be loaded"
    drop = "or rank against the report's own truth alone: --set truth.also="
    if source == "measured" and not measured_truth_path(cfg.preset).exists():
        raise FileNotFoundError(
            f"{head}: no measured truth for preset {cfg.preset!r} (looked in $RANKBENCH_HOME, then the bundled "
            f"data: {measured_truth_path(cfg.preset)}). Measure it with `rankbench truth --preset {cfg.preset}` "
            f"(trains the preset's stand-alone networks from scratch; resumable), {drop}")
    try:
        return truth_source(sub).load(subnets)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{head}: {e}; {drop}") from None


def _truth_training_cfg(cfg, seed: int):
    epochs = cfg.truth.train_epochs or cfg.train.epochs
    return replace(cfg, train=replace(cfg.train, epochs=int(epochs), seed=int(seed)))


#: train fields that change a stand-alone training only as a different seed would
_SAME_AS_A_SEED = ("num_threads", "portable")


def _measure_fingerprint(cfg) -> str:
    """What makes two measured truths comparable: the network, data and training (not the seed)."""
    t = _truth_training_cfg(cfg, 0)
    d = t.to_dict()
    # fields that never change a stand-alone network's weights: the config's own list (so a new
    # field of that kind cannot move a truth's fingerprint), plus the supernet-only ones; and
    # those that change a training only as another seed does (its random stream: the thread
    # count, the CPU dispatch level, the order of the images before the seeded shuffle), so
    # that seeds measured under them average into one truth (the platform is recorded apart)
    skip = set(_NOT_TRAINING) | set(_SAME_AS_A_SEED) | {"seed", "sampling", "sampler", "compile"}
    train = {k: v for k, v in d["train"].items() if k not in skip}
    data = {k: v for k, v in d["data"].items() if k != "order"}
    model = {k: d["model"][k] for k in ("width", "stacks", "cells_per_stack", "num_classes", "bn_momentum")}
    return short_digest({"model": model, "data": data, "train": train})


def measured_classes(space, cfg) -> dict[str, list]:
    """The hash classes a measured truth trains: every class of ``space``, or with
    ``truth.candidates = N`` the classes of N candidates drawn with ``score.seed`` (the draw a
    run with ``score.candidates >= N`` starts from, so they are among its candidates)."""
    n = int(getattr(cfg.truth, "candidates", 0) or 0)
    if not n:
        return dict(space.hash_classes())
    classes: dict[str, list] = {}
    for a in space.candidates(n, int(cfg.score.seed)):
        classes.setdefault(a.hash, []).append(a)
    return classes


def _read_measured(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=MEASURED_COLUMNS)
    df = pd.read_csv(path, dtype={"hash": str, "adjacency": str, "ops": str})
    missing = set(MEASURED_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} exists but is not a measured-truth CSV (no {sorted(missing)}); "
                         f"use another --out or move it away")
    return df


def measure_truth(space, cfg, out_csv: str | os.PathLike, *, seeds: int | None = None, progress: bool = True,
                  work_dir: str | os.PathLike | None = None, keep_runs: bool = False,
                  shard: tuple[int, int] | None = None) -> Truth:
    """Measure the truth of every hash class of ``space`` by training from scratch.

    For each seed ``cfg.train.seed + i`` (``i < seeds``, default ``cfg.truth.seeds``) and each
    hash class: build the class representative's stand-alone NB101 network
    (:func:`rankbench.nb101.network.build_network`, ``cfg.model`` width, stacks and cells per
    stack), train it with :func:`rankbench.train.fit` for ``cfg.truth.train_epochs`` (0 =
    ``cfg.train.epochs``) epochs, and measure top-1 on the validation (and test) split. Seeds
    are the outer loop, so an interrupted measurement already covers every class once.

    One row per (hash, seed) is appended to ``out_csv`` (atomically) as it finishes, with a
    JSON sidecar (``out_csv`` with ``.json``) of provenance: command line, preset, resolved
    config, seeds, versions, device, times. Rerunning skips finished pairs; an unfinished
    training resumes from its checkpoint in ``work_dir`` (default
    ``runs/truth-work/<preset>-<fingerprint>``). Returns the truth (mean over seeds).
    """
    # torch and the training stack only where a truth is measured: its readers (figures,
    # reports, the plan's dry run) stay free of them
    import torch

    from rankbench.data.splits import load_splits
    from rankbench.nb101.network import IgnoreArch, build_network, count_parameters
    from rankbench.scoring.score import eval_tensors, evaluate, subnet_columns
    from rankbench.train import fit, standard_hooks

    out = Path(out_csv)
    n_seeds = int(cfg.truth.seeds if seeds is None else seeds)
    if n_seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {n_seeds}")
    seed_list = [cfg.train.seed + i for i in range(n_seeds)]
    fp = _measure_fingerprint(cfg)
    side = out.with_suffix(".json")
    done = _read_measured(out)
    if len(done) and side.exists():
        old = json.loads(side.read_text()).get("config_fingerprint")
        if old and old != fp:
            raise ValueError(f"{out} was measured with a different network/data/training config (fingerprint "
                             f"{old}, now {fp}); use another --out, or delete {out} and {side} to start over")
    work = Path(work_dir) if work_dir else runs_root() / "truth-work" / f"{cfg.preset}-{fp}"
    classes = measured_classes(space, cfg)
    epochs = int(cfg.truth.train_epochs or cfg.train.epochs)
    finished = {(str(h), int(s)) for h, s in zip(done["hash"], done["seed"])}
    todo = [(s, h, members[0]) for s in seed_list for i, (h, members) in enumerate(classes.items())
            if (h, s) not in finished and (shard is None or i % shard[1] == shard[0])]

    old_prov: dict[str, Any] = {}
    if side.exists():
        try:
            old_prov = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            old_prov = {}
    if not todo and old_prov.get("finished"):
        return load_truth_csv(out, "validation_accuracy")

    from rankbench.train import resolve_device

    platform = setup_compute(cfg.train, resolve_device(cfg.train.device))  # before the first network
    if todo and len(done):  # extending a truth: its rows so far must come from this platform
        note = check_same_platform(f"the measured truth {out}", old_prov.get("platform"), platform)
        if note:
            warnings.warn(note, stacklevel=2)

    t_session = time.time()
    session: dict[str, Any] = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "trainings": 0, "device": str(cfg.train.device), "platform": platform}
    prov: dict[str, Any] = {
        "what": "measured ground truth: stand-alone NB101 networks trained from scratch, one row per "
                "(hash class, seed); truth = mean over seeds",
        "command": old_prov.get("command", session["command"]),
        "preset": cfg.preset,
        "space": {"name": getattr(space, "name", str(space)), "m": getattr(space, "m", None),
                  "hash_classes": len(classes)},
        "seeds": seed_list,
        "train_epochs": epochs,
        "model": {"network": "nasbench-pytorch Network (rankbench.nb101.network.build_network)",
                  "stem_channels": cfg.model.width, "num_stacks": cfg.model.stacks,
                  "cells_per_stack": cfg.model.cells_per_stack, "num_classes": cfg.model.num_classes},
        "config_fingerprint": fp,
        "config": _truth_training_cfg(cfg, cfg.train.seed).to_dict(),
        "versions": versions(),
        "platform": old_prov.get("platform") if len(done) and old_prov.get("platform") else platform,
        "started": old_prov.get("started", session["started"]),
        "device": old_prov.get("device", session["device"]),
        "sessions": list(old_prov.get("sessions", [])) + [session],
    }
    if "data" in old_prov:
        prov["data"] = old_prov["data"]

    def write_sidecar(finished_all: bool) -> None:
        rows = _read_measured(out)
        prov.update(rows=int(len(rows)),
                    total_wall_s=round(float(rows["wall_s"].sum()), 1) if len(rows) else 0.0,
                    finished=finished_all, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_json(side, prov)

    if not todo:
        write_sidecar(True)
        return load_truth_csv(out, "validation_accuracy")

    splits = load_splits(cfg.data, progress=progress)
    data_desc = splits.describe()
    data_desc["resolution"] = int(cfg.data.resolution)
    prov["data"] = data_desc
    total = len(seed_list) * len(classes)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc="measured truth", unit="training")
    try:
        for seed, h, rep in todo:
            t0 = time.time()
            tcfg = _truth_training_cfg(cfg, seed)
            torch.manual_seed(seed)  # the initial weights
            net = build_network(rep.spec, stem_channels=cfg.model.width, num_stacks=cfg.model.stacks,
                                cells_per_stack=cfg.model.cells_per_stack, num_classes=cfg.model.num_classes,
                                momentum=cfg.model.bn_momentum)
            params = count_parameters(net)
            model = IgnoreArch(net)
            run_dir = work / f"{h[:16]}-seed{seed}"
            result = fit(model, lambda rng: None, splits, tcfg, run_dir, resume=True, progress=False,
                         hooks=standard_hooks(tcfg, run_dir, progress=False))
            device = _device_of(model)
            vx, vy = eval_tensors(splits, "valid", device=device)
            val_acc, _ = evaluate(model, None, vx, vy, cfg.score.eval_batch_size)
            tx, ty = eval_tensors(splits, "test", device=device)
            test_acc, _ = evaluate(model, None, tx, ty, cfg.score.eval_batch_size)
            cols = subnet_columns(rep)
            row = {"hash": h, "adjacency": cols["adjacency"], "ops": cols["ops"], "num_paths": cols["num_paths"],
                   "seed": seed, "epochs": epochs, "validation_accuracy": val_acc, "test_accuracy": test_acc,
                   "train_loss": _train_loss(result, run_dir), "params": params,
                   "wall_s": round(time.time() - t0, 3)}
            rows = _read_measured(out)
            new = pd.DataFrame([row], columns=MEASURED_COLUMNS)
            rows = pd.concat([rows, new], ignore_index=True) if len(rows) else new
            with atomic_path(out, ".csv") as tmp:
                rows.to_csv(tmp, index=False)
            session["trainings"] += 1
            session["device"] = prov["device"] = str(result.get("device", device))
            write_sidecar(False)
            if not keep_runs:
                shutil.rmtree(run_dir, ignore_errors=True)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    session["wall_s"] = round(time.time() - t_session, 1)
    write_sidecar(True)
    if not keep_runs:
        shutil.rmtree(work, ignore_errors=True)
    return load_truth_csv(out, "validation_accuracy")


def _device_of(model) -> Any:
    for p in model.parameters():
        return p.device
    import torch

    return torch.device("cpu")


def _train_loss(result: Any, run_dir: Path) -> float:
    """The last epoch's training loss: from ``fit``'s result if it says, else its train log."""
    if isinstance(result, dict):
        for k in ("train_loss", "loss"):
            if k in result:
                return float(result[k])
    log = Path(run_dir) / "train_log.csv"
    if log.exists():
        try:
            df = pd.read_csv(log)
            for k in ("train_loss", "loss"):
                if k in df.columns and len(df):
                    return float(df[k].iloc[-1])
        except (ValueError, pd.errors.EmptyDataError):
            pass
    return float("nan")
