"""``rankbench run`` / ``ablation`` end to end at a tiny size, against a tiny measured truth
that the test measures itself (m = 2: 15 subnets in 9 hash classes)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import rankbench.scoring.score as score_mod
import rankbench.train
from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset
from rankbench.pipeline import SCORE_COLUMNS, ablation, run
from rankbench.spaces import create_space
from rankbench.truth import TruthCoverageError, measure_truth

TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "model.m": 2,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 1, "train.num_threads": 1,
    "score.calib_batches": 2, "score.calib_batch_size": 25, "score.eval_batch_size": 50,
    "truth.seeds": 1, "truth.train_epochs": 1,
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def truth_csv(tmp_path_factory) -> Path:
    cfg = apply_overrides(load_preset("quick"), TINY)
    out = tmp_path_factory.mktemp("truth") / "truth-tiny.csv"
    measure_truth(create_space("s4", m=2), cfg, out, progress=False,
                  work_dir=tmp_path_factory.mktemp("truth-work"))
    return out


def _cfg(truth_csv: Path, **extra):
    return apply_overrides(load_preset("quick"), {**TINY, "truth.source": str(truth_csv), **extra})


def test_run_end_to_end_and_reuse(truth_csv, tmp_path, monkeypatch):
    cfg = _cfg(truth_csv)
    (res,), summary = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    assert summary is None
    d = res.run_dir
    assert d.parent == tmp_path and d.name.startswith("lsbn-quick-m2-seed2020-")
    scores = pd.read_csv(d / "scores.csv")
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == 15
    assert scores["truth"].notna().all() and scores["acc_calib"].notna().all()
    assert scores["hash"].nunique() == 9
    m = json.loads((d / "metrics.json").read_text())
    assert m["truth"]["location"] == str(truth_csv) and m["truth"]["coverage"]["covered"] == 15
    assert m["protocol"]["name"] == "clean" and m["seed"] == 2020
    for setting in ("no_calib", "calib"):
        ps = m["metrics"][setting]["per_subnet"]
        assert ps["n"] == 15 and -1 <= ps["kendall_tau"] <= 1 and len(ps["kendall_tau_ci"]) == 2
        assert m["metrics"][setting]["per_class"]["n"] == 9
    assert len(list((d / "scores").glob("*.csv"))) == 2
    # the rank-agreement figure states the tau of metrics.json
    from rankbench.figures._runs import load_scores
    from rankbench.figures.ranking import compute_rank_agreement

    fig = compute_rank_agreement(load_scores(d))
    for setting in ("no_calib", "calib"):
        tau = fig.loc[fig["calibration"] == setting, "kendall_tau"].iloc[0]
        assert tau == pytest.approx(m["metrics"][setting]["per_subnet"]["kendall_tau"], abs=1e-12)

    # rerun: the training is reused and every score comes from the cache
    monkeypatch.setattr(rankbench.train, "fit", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(score_mod, "evaluate", lambda *a, **k: pytest.fail("scored again"))
    monkeypatch.setattr(score_mod, "score_group", lambda *a, **k: pytest.fail("scored again"))
    (again,), _ = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    pd.testing.assert_frame_equal(again.scores, res.scores)
    assert again.metrics["training_reused"]


def test_cli_run_seeds_and_paper_protocol(truth_csv, tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in {**TINY, "truth.source": str(truth_csv)}.items()]
    rc = main(["run", "--variant", "lsbn", "--calibrate", "--preset", "quick", "--seeds", "2",
               "--runs-root", str(tmp_path), "--no-progress", *sets])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "tau per subnet" in out and "BN calibration" in out and "covers 15/15 candidates" in out
    summaries = list(tmp_path.glob("summary-lsbn-quick-m2-clean-seeds2020-2021-*"))
    assert len(summaries) == 1
    table = pd.read_csv(summaries[0] / "summary.csv")
    assert (table["n_seeds"] == 2).all() and (summaries[0] / "summary.md").exists()

    rc = main(["run", "--variant", "lsbn", "--protocol", "paper", "--runs-root", str(tmp_path), "--no-progress",
               *sets, "--set", "score.candidates=45"])
    assert rc == 0
    run_dir = next(tmp_path.glob("lsbn-quick-m2-seed2020-*"))
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["protocol"]["name"] == "paper" and m["truth"]["reduce_used"] == "random"
    assert m["config"]["score"]["eval_split"] == "test"
    assert m["metrics"]["no_calib"]["per_subnet"]["n"] == 15  # 45 sampled choices, the 30 lowest dropped
    assert len(pd.read_csv(run_dir / "scores.csv")) == 45


def test_ablation_table(truth_csv, tmp_path):
    cfg = _cfg(truth_csv)
    table, out = ablation(cfg, ["bn", "lsbn"], runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    assert out == tmp_path / "ablation-quick-m2"
    assert list(zip(table["variant"], table["calibration"])) == [("bn", False), ("bn", True),
                                                                 ("lsbn", False), ("lsbn", True)]
    for col in ("kendall_tau_subnet", "kendall_tau_subnet_ci_low", "kendall_tau_class", "spearman_subnet",
                "precision_at_10_subnet", "top1_regret_subnet", "run_dirs"):
        assert col in table.columns, col
    assert all(Path(d).is_dir() for d in table["run_dirs"])
    md = (out / "ablation.md").read_text()
    assert "| bn | no |" in md and "| lsbn | yes |" in md
    assert len(pd.read_csv(out / "ablation.csv")) == 4


def test_insufficient_truth_fails_before_training(truth_csv, tmp_path):
    partial = tmp_path / "partial.csv"
    df = pd.read_csv(truth_csv)
    df[df["hash"].isin(df["hash"].unique()[:2])].to_csv(partial, index=False)
    cfg = _cfg(partial)
    runs = tmp_path / "runs"
    with pytest.raises(TruthCoverageError, match="covers only"):
        run(cfg, calibrate=True, runs_root=runs, progress=False, echo=None)
    assert not runs.exists()
