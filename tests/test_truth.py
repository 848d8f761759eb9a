"""Ground truth: from an NB101 store (the committed real 30-cell fixture), coverage errors,
and measured truth on a tiny m=1 space."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rankbench.train
from rankbench.config import apply_overrides, load_preset
from rankbench.nb101 import ModelSpec, import_tfrecord, open as open_store
from rankbench.spaces import create_space
from rankbench.truth import (
    MEASURED_COLUMNS,
    TruthCoverageError,
    load_truth,
    load_truth_csv,
    measure_truth,
    measured_truth_reliability,
    truth_from_store,
)

ASSETS = Path(__file__).parent / "assets"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    """A store imported from the committed fixture: 30 real NB101 cells, 3 repeats each."""
    path = tmp_path_factory.mktemp("store") / "nb101_30.h5"
    import_tfrecord(ASSETS / "nb101_30.tfrecord", path, progress=False)
    cells = json.loads((ASSETS / "nb101_30.json").read_text())["cells"]
    return path, cells


def _spec(cell: dict) -> ModelSpec:
    return ModelSpec(cell["adjacency"], cell["ops"])


def test_truth_from_store_is_the_mean_of_the_repeats(fixture_store):
    path, cells = fixture_store
    hashes = sorted(cells)[:5]
    specs = [_spec(cells[h]) for h in hashes]
    with open_store(path) as store:
        truth = truth_from_store(specs + specs[:1], store)  # a repeat is counted once
    assert list(truth.table.index) == hashes and truth.source == "nb101" and truth.epochs == 108
    for h in hashes:
        reps = np.array([r["final_validation_accuracy"] for r in cells[h]["epochs"]["108"]])
        row = truth.table.loc[h]
        assert row["n_repeats"] == len(reps) == 3
        assert row["truth"] == pytest.approx(reps.mean(), abs=1e-12)
        assert row["truth_std"] == pytest.approx(reps.std(), abs=1e-12)
        assert sorted(truth.table.loc[h, ["repeat_0", "repeat_1", "repeat_2"]]) == pytest.approx(sorted(reps))

    vals, std = truth.values(hashes + ["0" * 32])
    assert vals[:5] == pytest.approx(truth.table["truth"].to_numpy()) and np.isnan(vals[5]) and np.isnan(std[5])
    # "random": one stored repeat per candidate, seeded
    many = [hashes[0]] * 50
    r1, _ = truth.values(many, reduce="random", seed=1)
    r2, _ = truth.values(many, reduce="random", seed=1)
    stored = set(truth.table.loc[hashes[0], ["repeat_0", "repeat_1", "repeat_2"]])
    assert (r1 == r2).all() and set(r1) <= stored and len(set(r1)) > 1

    with open_store(path) as store:
        test = truth_from_store(specs, store, metric="test_accuracy")
    h = hashes[0]
    assert test.table.loc[h, "truth"] == pytest.approx(
        np.mean([r["final_test_accuracy"] for r in cells[h]["epochs"]["108"]]))


def test_coverage_error_says_how_to_get_the_full_benchmark(fixture_store):
    path, cells = fixture_store
    s4 = create_space("s4", m=2).subnets()
    with open_store(path) as store:
        truth = truth_from_store(s4, store)
    cov = truth.coverage([s.hash for s in s4])
    assert (cov.covered, cov.candidates, cov.classes) == (0, 15, 9)
    with pytest.raises(TruthCoverageError, match="rankbench data import nasbench_only108.tfrecord") as e:
        truth.check_coverage([s.hash for s in s4])
    assert "rankbench truth" in str(e.value) and "0/15 candidates" in str(e.value)

    known = sorted(cells)
    with open_store(path) as store:
        t = truth_from_store([_spec(cells[h]) for h in known], store)
    with pytest.raises(TruthCoverageError, match="at least 3"):
        t.check_coverage(known[:2])
    cov = t.check_coverage(known[:3] + ["f" * 32])  # 3 of 4: enough
    assert cov.covered == 3 and cov.missing == ["f" * 32]
    with pytest.raises(TruthCoverageError):
        t.check_coverage(known[:3] + ["f" * 32], min_fraction=0.8)


def test_load_truth_sources(fixture_store, tmp_path):
    path, cells = fixture_store
    cfg = load_preset("quick")
    nb = load_truth(replace(cfg, truth=replace(cfg.truth, source="nb101", store=str(path))),
                    [_spec(c) for c in cells.values()])
    assert nb.source == "nb101" and len(nb.table) == 30
    with pytest.raises(FileNotFoundError, match="rankbench truth --preset no-such-preset"):
        load_truth(replace(cfg, preset="no-such-preset", truth=replace(cfg.truth, source="measured")))
    with pytest.raises(FileNotFoundError, match="neither"):
        load_truth(replace(cfg, truth=replace(cfg.truth, source=str(tmp_path / "missing.csv"))))


def test_equal_means_tie_despite_float_summation(tmp_path):
    """0.1 + 0.7 != 0.3 + 0.5 in floats; both classes' mean accuracy is 0.4 and must tie (a
    1-ulp difference would turn the tie into an order and change Kendall's tau-b)."""
    assert (0.1 + 0.7) / 2 != (0.3 + 0.5) / 2
    rows = [{"hash": h, "seed": s, "validation_accuracy": a}
            for h, accs in (("a" * 32, (0.1, 0.7)), ("b" * 32, (0.3, 0.5)), ("c" * 32, (0.2, 0.3)))
            for s, a in zip((1, 2), accs)]
    path = tmp_path / "truth.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    t = load_truth_csv(path).table["truth"]
    assert t["a" * 32] == t["b" * 32] == 0.4 and t["c" * 32] == 0.25


TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "space.m": 1,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 1, "train.num_threads": 1, "truth.seeds": 1, "truth.train_epochs": 1,
}


def test_measured_truth_tiny(tmp_path, monkeypatch):
    cfg = apply_overrides(load_preset("quick"), TINY)
    space = create_space("s4", m=1)
    out = tmp_path / "truth-tiny.csv"
    calls = []
    real_fit = rankbench.train.fit
    monkeypatch.setattr(rankbench.train, "fit", lambda *a, **k: calls.append(a[3].train.seed) or real_fit(*a, **k))

    truth = measure_truth(space, cfg, out, progress=False, work_dir=tmp_path / "work")
    assert calls == [2020] * 3
    df = pd.read_csv(out)
    assert list(df.columns) == MEASURED_COLUMNS and len(df) == 3
    assert set(df["hash"]) == set(space.hash_classes()) and (df["seed"] == 2020).all()
    assert df["validation_accuracy"].between(0, 1).all() and (df["params"] > 0).all()
    assert (df["epochs"] == 1).all() and np.isfinite(df["train_loss"]).all()
    side = json.loads(out.with_suffix(".json").read_text())
    for key in ("command", "preset", "config", "seeds", "versions", "total_wall_s", "device", "data", "model"):
        assert key in side, key
    assert side["finished"] and side["seeds"] == [2020] and side["model"]["stem_channels"] == 4
    assert not (tmp_path / "work").exists()  # finished trainings are cleaned up
    assert (truth.table["n_repeats"] == 1).all()

    # a second seed: only the 3 new trainings run; the truth is the mean over seeds
    calls.clear()
    truth2 = measure_truth(space, cfg, out, seeds=2, progress=False, work_dir=tmp_path / "work")
    assert calls == [2021] * 3
    df2 = pd.read_csv(out)
    assert len(df2) == 6 and sorted(set(df2["seed"])) == [2020, 2021]
    pd.testing.assert_frame_equal(df2.iloc[:3].reset_index(drop=True), df)
    h = df["hash"][0]
    mean = df2[df2["hash"] == h]["validation_accuracy"].mean()
    assert truth2.table.loc[h, "truth"] == pytest.approx(mean) and truth2.table.loc[h, "n_repeats"] == 2
    assert len(json.loads(out.with_suffix(".json").read_text())["sessions"]) == 2

    calls.clear()  # nothing left to do
    measure_truth(space, cfg, out, seeds=2, progress=False, work_dir=tmp_path / "work")
    assert calls == []
    loaded = load_truth_csv(out)
    assert loaded.provenance["seeds"] == [2020, 2021]

    # another network on the same file: refused
    with pytest.raises(ValueError, match="different network"):
        measure_truth(space, apply_overrides(cfg, {"model.width": 8}), out, seeds=2, progress=False)


# -- repeats per candidate and the truth's reliability ----------------------------------------
def test_repeats_for_nb101_candidates(fixture_store):
    path, cells = fixture_store
    hashes = sorted(cells)[:4]
    with open_store(path) as store:
        truth = truth_from_store([_spec(cells[h]) for h in hashes], store)
    asked = [hashes[1], "0" * 32, hashes[1], hashes[3]]
    reps = truth.repeats_for(asked)
    assert reps.shape == (4, 3) and np.isnan(reps[1]).all()
    for row, h in ((0, hashes[1]), (2, hashes[1]), (3, hashes[3])):
        stored = [r["final_validation_accuracy"] for r in cells[h]["epochs"]["108"]]
        assert sorted(reps[row]) == pytest.approx(sorted(stored), abs=1e-12)
    # the mean of a candidate's repeats is its truth
    vals, _ = truth.values(asked)
    assert reps[[0, 2, 3]].mean(axis=1) == pytest.approx(vals[[0, 2, 3]], abs=1e-12)
    assert truth.repeats_for([]).shape == (0, 3)


def test_nb101_truth_describes_its_reliability(fixture_store):
    from rankbench.metrics import split_half_reliability

    path, cells = fixture_store
    with open_store(path) as store:
        truth = truth_from_store([_spec(c) for c in cells.values()], store)
    rel = truth.describe()["reliability"]
    assert rel == split_half_reliability(truth.repeats) and rel["n_seeds"] == 3 and rel["n_classes"] == 30
    assert rel["n_splits"] == 3 and 0.0 <= rel["estimated_tau"] <= 1.0
    one = replace(truth, table=truth.table.drop(columns=["repeat_1", "repeat_2"]))
    assert one.reliability() is None and "reliability" not in one.describe()


def _measured_csv(path: Path, rows: list[tuple[str, int, float]]) -> Path:
    pd.DataFrame([{"hash": h, "seed": s, "validation_accuracy": a} for h, s, a in rows]).to_csv(path, index=False)
    return path


def test_measured_repeats_are_aligned_by_seed(tmp_path):
    # rows out of seed order, one class without seed 7: repeat_j is seed j for every class
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    path = _measured_csv(tmp_path / "t.csv", [(a, 7, 0.30), (b, 5, 0.41), (a, 5, 0.32), (c, 5, 0.50),
                                               (b, 7, 0.43), (c, 6, 0.52), (a, 6, 0.31), (b, 6, 0.40)])
    t = load_truth_csv(path)
    assert t.repeat_seeds == (5, 6, 7)
    reps = t.repeats_for([a, b, c])
    np.testing.assert_array_equal(reps, [[0.32, 0.31, 0.30], [0.41, 0.40, 0.43], [0.50, 0.52, np.nan]])
    vals, _ = t.values([a, b, c])
    assert vals == pytest.approx([0.31, 0.41333333333333333, 0.51], abs=1e-12)
    assert list(t.table["n_repeats"]) == [3, 3, 2]
    d = t.describe()
    assert d["seeds"] == [5, 6, 7]
    # reliability: class c lacks seed 7, so either all classes on seeds 5 and 6 (6 values) or
    # classes a, b on all seeds (6 values, but too few classes to rank)
    assert d["reliability"]["seeds"] == [5, 6] and d["reliability"]["n_classes"] == 3


def test_measured_truth_reliability(tmp_path):
    from rankbench.metrics import split_half_reliability

    rng = np.random.default_rng(0)
    mu = rng.random(40)
    rows = [(f"{i:032x}", s, float(np.round(mu[i] + rng.normal(0, 0.1), 3))) for s in (1, 2, 3, 4) for i in range(40)]
    path = _measured_csv(tmp_path / "m.csv", rows)
    rel = measured_truth_reliability(path, n_splits=50)
    table = pd.read_csv(path, dtype={"hash": str}).pivot(index="hash", columns="seed", values="validation_accuracy")
    assert rel == {**split_half_reliability(table.to_numpy(), n_splits=50), "seeds": [1, 2, 3, 4]}
    assert rel["n_seeds"] == 4 and rel["n_splits"] == 3 and 0.5 < rel["estimated_tau"] <= 1.0
    one = _measured_csv(tmp_path / "one.csv", [r for r in rows if r[1] == 1])
    with pytest.raises(ValueError, match="fewer than 2 seeds"):
        measured_truth_reliability(one)


def test_reliability_of_a_measurement_in_progress_keeps_the_most_values(tmp_path):
    rng = np.random.default_rng(1)
    mu = rng.random(20)
    rows = [(f"{i:032x}", s, float(np.round(mu[i] + rng.normal(0, 0.05), 3))) for s in (1, 2, 3, 4) for i in range(20)]
    # one class lacks seed 4: 19 classes x 4 seeds (76 values) beat 20 classes x 3 seeds (60)
    t = load_truth_csv(_measured_csv(tmp_path / "a.csv", rows[:-1]))
    assert (t.reliability()["n_classes"], t.reliability()["seeds"]) == (19, [1, 2, 3, 4])
    # half the classes lack seeds 3 and 4: 20 classes x 2 seeds (40) beat 10 x 4 (40) on classes
    t = load_truth_csv(_measured_csv(tmp_path / "b.csv", [r for r in rows if r[1] <= 2 or int(r[0], 16) < 10]))
    assert (t.reliability()["n_classes"], t.reliability()["seeds"]) == (20, [1, 2])
    # an option with too few classes to estimate from loses to one with enough, however many values:
    # 10 classes, one lacks seed 4: 9 x 4 (36, not estimable) < 10 x 3 (30)
    ten = [r for r in rows if int(r[0], 16) < 10]
    t = load_truth_csv(_measured_csv(tmp_path / "c.csv", ten[:-1]))
    rel = t.reliability()
    assert (rel["n_classes"], rel["seeds"], rel["estimable"]) == (10, [1, 2, 3], True)
    # 3 classes with all repeats: not estimable, and no number pretends otherwise
    t = load_truth_csv(_measured_csv(tmp_path / "d.csv", [r for r in rows if int(r[0], 16) < 3]))
    rel = t.reliability()
    assert rel["estimable"] is False and rel["status"].startswith("not estimable (3 classes")
    assert rel["reliability"] is None and rel["estimated_tau"] is None and t.describe()["reliability"] == rel


def test_measured_truth_fingerprint_ignores_fields_that_cannot_change_weights():
    """A truth's fingerprint must not move when a config field that never changes a network's
    weights is set (device, threads, checkpoint cadence, TensorBoard): else finished seeds of
    one truth could no longer be merged."""
    from dataclasses import replace

    from rankbench.config import _NOT_TRAINING, load_preset
    from rankbench.truth import _measure_fingerprint

    cfg = load_preset("quick")
    base = _measure_fingerprint(cfg)
    changes = {"device": "cpu", "checkpoint_every": 3, "checkpoint_interval_s": 1.0, "tensorboard": True,
               "eval_every": 2, "eval_candidates": 10, "eval_images": 100}
    assert set(changes) == set(_NOT_TRAINING)
    changes.update(num_threads=2, portable=not cfg.train.portable)  # a seed's random stream, no more
    for k, v in changes.items():
        assert _measure_fingerprint(replace(cfg, train=replace(cfg.train, **{k: v}))) == base, k
    assert _measure_fingerprint(replace(cfg, data=replace(cfg.data, order="source"))) == base
    # the bundled truth (measured before data.order and portable existed) stays extendable
    import json

    from rankbench._paths import bundled_file

    assert base == json.loads(bundled_file("truth-quick.json").read_text())["config_fingerprint"]
    assert _measure_fingerprint(replace(cfg, train=replace(cfg.train, lr=0.01))) != base


def test_a_measured_truth_over_some_candidates_covers_a_subset_of_the_runs():
    """truth.candidates = N measures the first N of the seeded draw a run with score.candidates
    >= N starts from: every measured cell is one of the run's candidates."""
    from rankbench.config import apply_overrides, load_preset
    from rankbench.spaces import space_from_config
    from rankbench.truth import measured_classes

    cfg = apply_overrides(load_preset("nb101-quick"), {"truth.candidates": 40, "score.candidates": 120})
    space = space_from_config(cfg)
    measured = set(measured_classes(space, cfg))
    run = {a.hash for a in space.candidates(cfg.score.candidates, cfg.score.seed)}
    assert len(measured) == 40 and measured <= run
    everything = apply_overrides(load_preset("quick"), {"truth.candidates": 0})  # 0: every class of the space
    assert set(measured_classes(space_from_config(everything), everything)) == set(
        space_from_config(everything).hash_classes())
