"""``rankbench run`` / ``ablation`` end to end at a tiny size, against a tiny measured truth
that the test measures itself (m = 2: 15 subnets in 9 hash classes)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import rankbench.scoring.score as score_mod
import rankbench.train
from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset
from rankbench.ablation import ablation
from rankbench.pipeline import SCORE_COLUMNS, run
from rankbench.spaces import create_space
from rankbench.truth import TruthCoverageError, measure_truth

TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "space.m": 2,
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


def _report(run_dir: Path, prefix: str) -> Path:
    (d,) = [p for p in (run_dir / "reports").iterdir() if p.name.startswith(prefix)]
    return d


def test_run_end_to_end_and_reuse(truth_csv, tmp_path, monkeypatch):
    cfg = _cfg(truth_csv)
    (res,), summary = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    assert summary is None
    d = res.run_dir
    assert d.parent == tmp_path and d.name.startswith("lsbn-quick-s4-m2-seed2020-")
    assert res.report_dir == _report(d, "clean-calib-") and res.report == res.report_dir.name
    assert not (d / "metrics.json").exists() and not (d / "scores.csv").exists()
    scores = pd.read_csv(res.report_dir / "scores.csv")
    assert set(SCORE_COLUMNS) <= set(scores.columns) and len(scores) == 15
    assert "num_paths" in scores.columns  # the space's descriptive column
    assert scores["truth"].notna().all() and scores["acc_calib"].notna().all()
    assert scores["hash"].nunique() == 9
    m = json.loads((res.report_dir / "metrics.json").read_text())
    assert m["report"] == res.report and m["setup"]["calibrate"] is True
    assert m["truth"]["location"] == str(truth_csv) and m["truth"]["coverage"]["covered"] == 15
    assert m["protocol"]["name"] == "clean" and m["seed"] == 2020
    for setting in ("no_calib", "calib"):
        ps = m["metrics"][setting]["per_subnet"]
        assert ps["n"] == 15 and -1 <= ps["kendall_tau"] <= 1 and len(ps["kendall_tau_ci"]) == 2
        assert m["metrics"][setting]["per_class"]["n"] == 9
    # reference rankers: the same candidates, the same metrics
    assert {"params", "flops"} <= set(m["references"])
    for name, r in m["references"].items():
        assert r["per_subnet"]["n"] == 15 and "kendall_tau_ci" in r["per_subnet"], name
        assert scores[f"ref_{name}"].notna().all()
    from scipy.stats import kendalltau

    assert m["references"]["params"]["per_subnet"]["kendall_tau"] == pytest.approx(
        kendalltau(scores["ref_params"], scores["truth"]).statistic, abs=1e-12)
    assert len(list((d / "scores").glob("*.csv"))) == 2
    # the zero-cost proxies are opt-in: none by default
    from rankbench.proxies import list_proxies

    assert not {f"ref_{p}" for p in list_proxies()} & set(scores.columns)
    assert not set(list_proxies()) & set(m["references"]) and not (d / "proxies.csv").exists()
    assert "proxies" not in m["setup"]["score"]

    # rerun: the training is reused and every score comes from the cache
    monkeypatch.setattr(rankbench.train, "fit", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(score_mod, "evaluate", lambda *a, **k: pytest.fail("scored again"))
    monkeypatch.setattr(score_mod, "score_group", lambda *a, **k: pytest.fail("scored again"))
    (again,), _ = run(cfg, calibrate=True, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    pd.testing.assert_frame_equal(again.scores, res.scores)
    assert again.metrics["training_reused"] and again.report_dir == res.report_dir


def test_run_with_zero_cost_proxies(truth_csv, tmp_path, capsys, monkeypatch):
    """--set score.proxies=synflow,naswot: ref_synflow / ref_naswot columns and their metrics
    with intervals, in a report of its own (the proxies in its setup), cached in the run
    directory's proxies.csv; a rerun computes none of them again."""
    import rankbench.proxies.compute as compute_mod
    from rankbench.plan import resolve

    sets = [f"--set={k}={v}" for k, v in {**TINY, "truth.source": str(truth_csv)}.items()]
    argv = ["run", "--calibrate", "--runs-root", str(tmp_path), "--no-progress", *sets,
            "--set", "score.proxies=naswot,synflow"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (run_dir,) = tmp_path.glob("lsbn-quick-s4-m2-seed2020-*")
    (report,) = (run_dir / "reports").iterdir()
    scores = pd.read_csv(report / "scores.csv")
    assert {"ref_synflow", "ref_naswot"} <= set(scores.columns)
    assert not {"ref_snip", "ref_grasp", "ref_fisher", "ref_grad_norm", "ref_jacob_cov"} & set(scores.columns)
    assert scores["ref_synflow"].notna().all() and scores["ref_synflow"].nunique() > 1
    m = json.loads((report / "metrics.json").read_text())
    for name in ("synflow", "naswot"):
        r = m["references"][name]
        assert "zero-cost proxy" in r["description"] and r["per_subnet"]["n"] == 15
        assert len(r["per_subnet"]["kendall_tau_ci"]) == 2 and r["per_class"]["n"] == 9
    assert m["setup"]["score"]["proxies"] == ["synflow", "naswot"]  # registration order
    assert m["setup"]["score"]["proxy_batch_size"] == 64 and "ref: synflow" in out
    without = apply_overrides(_cfg(truth_csv), {"train.device": "cpu"})
    assert report.name != resolve(without, 1, tmp_path).report_name(True)  # another report than the default
    cache = pd.read_csv(run_dir / "proxies.csv")
    assert set(cache["proxy"]) == {"synflow", "naswot"} and cache["hash"].nunique() == 9

    monkeypatch.setattr(compute_mod, "_score_one", lambda *a, **k: pytest.fail("proxy computed again"))
    assert main(argv) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_csv(report / "scores.csv"), scores)


def test_proxies_all_and_a_bad_name(truth_csv, tmp_path):
    """score.proxies=all is every registered proxy; an unknown name fails in the plan, listing
    the known ones, before anything is created."""
    from rankbench.config import ConfigError
    from rankbench.plan import resolve
    from rankbench.proxies import list_proxies

    p = resolve(_cfg(truth_csv, **{"score.proxies": "all", "train.device": "cpu"}), 1, tmp_path)
    assert p.cfg.score.proxies == tuple(list_proxies())
    with pytest.raises(ConfigError, match="unknown zero-cost proxy 'nope'; proxies: synflow, snip") as e:
        run(_cfg(truth_csv, **{"score.proxies": ["synflow", "nope"]}), calibrate=True, runs_root=tmp_path / "r",
            progress=False, echo=None)
    assert "--set score.proxies=" in str(e.value) and not (tmp_path / "r").exists()


def test_reports_side_by_side(truth_csv, tmp_path, capsys):
    """clean + calibration, paper, and clean without calibration: three reports in one run
    directory, each intact after the others are re-run."""
    sets = [f"--set={k}={v}" for k, v in {**TINY, "truth.source": str(truth_csv)}.items()]
    common = ["--runs-root", str(tmp_path), "--no-progress", *sets]
    assert main(["run", "--variant", "lsbn", "--calibrate", *common]) == 0
    out = capsys.readouterr().out
    assert "tau per subnet" in out and "BN calibration" in out and "covers 15/15 candidates" in out
    assert "report:" in out and "ref: params" in out
    run_dir = next(tmp_path.glob("lsbn-quick-s4-m2-seed2020-*"))
    clean = _report(run_dir, "clean-calib-")
    before = (clean / "metrics.json").read_text()

    # paper: m = 2 has only 24 ordered choices (all taken); drop the 10 lowest by uncalibrated accuracy
    assert main(["run", "--variant", "lsbn", "--calibrate", "--protocol", "paper", *common,
                 "--set", "score.drop_lowest=10"]) == 0
    out = capsys.readouterr().out
    paper = _report(run_dir, "paper-calib-")
    m = json.loads((paper / "metrics.json").read_text())
    assert m["protocol"]["name"] == "paper" and m["truth"]["reduce_used"] == "random"
    assert m["config"]["score"]["eval_split"] == "test"
    assert len(pd.read_csv(paper / "scores.csv")) == 24 and any("24" in n for n in m["notes"])
    for setting in ("no_calib", "calib"):  # the same 14 candidates ranked in both settings
        assert m["metrics"][setting]["per_subnet"]["n"] == 14
    assert (clean / "metrics.json").read_text() == before

    assert main(["run", "--variant", "lsbn", *common]) == 0  # no calibration: its own report
    capsys.readouterr()
    nocal = _report(run_dir, "clean-nocalib-")
    assert json.loads((nocal / "metrics.json").read_text())["metrics"].keys() == {"no_calib"}
    paper_before = (paper / "metrics.json").read_text()
    assert main(["run", "--variant", "lsbn", "--calibrate", *common]) == 0  # re-run clean
    capsys.readouterr()
    m_clean = json.loads((clean / "metrics.json").read_text())
    assert m_clean["metrics"]["calib"]["per_subnet"]["n"] == 15
    assert (paper / "metrics.json").read_text() == paper_before
    assert len(list((run_dir / "reports").iterdir())) == 3


def test_cli_run_seeds_summary(truth_csv, tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in {**TINY, "truth.source": str(truth_csv)}.items()]
    rc = main(["run", "--variant", "lsbn", "--calibrate", "--preset", "quick", "--seeds", "2",
               "--runs-root", str(tmp_path), "--no-progress", *sets])
    out = capsys.readouterr().out
    assert rc == 0, out
    summaries = list(tmp_path.glob("summary-lsbn-quick-s4-m2-clean-seeds2020-2021-o*-t*-calib"))
    assert len(summaries) == 1
    table = pd.read_csv(summaries[0] / "summary.csv")
    assert (table["n_seeds"] == 2).all() and (summaries[0] / "summary.md").exists()
    assert "ref_params" in set(table["setting"])
    md = (summaries[0] / "summary.md").read_text()
    assert "train.epochs=1" in md  # the header says what was run


def test_ablation_table(truth_csv, tmp_path):
    import shutil

    truth = tmp_path / "truth.csv"  # a copy: re-measured below, in place
    shutil.copy(truth_csv, truth)
    cfg = _cfg(truth)
    table, out = ablation(cfg, ["bn", "lsbn"], seeds=2, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    # named by what was run: a trial with other settings never lands where the real one goes
    assert out.parent == tmp_path and out.name.startswith("ablation-quick-s4-m2-clean-seeds2020-2021-o")
    head = list(zip(table["variant"], table["calibration"]))[:4]
    assert head == [("bn", False), ("bn", True), ("lsbn", False), ("lsbn", True)]
    assert {"reference: params", "reference: flops"} <= set(table["variant"])
    for col in ("kendall_tau_subnet", "kendall_tau_subnet_std", "kendall_tau_class", "spearman_subnet",
                "precision_at_10_subnet", "precision_at_10_naslib_subnet", "top1_regret_subnet", "reports"):
        assert col in table.columns, col
    md = (out / "ablation.md").read_text()
    assert "| bn | no |" in md and "| lsbn | yes |" in md and "train.epochs=1" in md
    paired = pd.read_csv(out / "paired.csv")
    assert "lsbn (BN calibration)" in set(paired["a"]) and len(paired) == 4  # 2 pairs + 2 calib-vs-none
    assert (paired["ci_low"] <= paired["difference"]).all() and (paired["difference"] <= paired["ci_high"]).all()
    # the same table from the finished reports alone (as analysis/ablation_from_reports.py builds it)
    files = ("ablation.csv", "ablation.md", "ablation.tex", "paired.csv", "summaries.txt")
    written = {f: (out / f).read_bytes() for f in files}
    for f in files:
        (out / f).unlink()
    from rankbench.ablation import ablation_table
    from rankbench.pipeline import RunResult
    from rankbench.reports import load_report

    def from_report(run_dir: Path) -> RunResult:
        rep = load_report(run_dir, "clean-calib")
        return RunResult(cfg=rep.config, run_dir=run_dir, scores=rep.scores, metrics=rep.metrics,
                         report_dir=rep.path)

    by_variant = {v: [from_report(d) for d in sorted(tmp_path.glob(f"{v}-quick-s4-m2-seed*"))] for v in ("bn", "lsbn")}
    assert [len(rs) for rs in by_variant.values()] == [2, 2]
    table2, out_again = ablation_table(by_variant, cfg, 2, runs_root=tmp_path, n_boot=50, echo=None)
    assert out_again == out
    pd.testing.assert_frame_equal(table2, table)
    assert {f: (out / f).read_bytes() for f in files} == written
    # another setting goes elsewhere, and so does the same table against another truth
    _, out2 = ablation(_cfg(truth_csv, **{"score.eval_size": 40}), ["bn"], runs_root=tmp_path, progress=False,
                       n_boot=20, echo=None)
    assert out2 != out
    df = pd.read_csv(truth)
    df.loc[0, "validation_accuracy"] += 0.01  # the same truth file, updated (e.g. more seeds measured)
    df.to_csv(truth, index=False)
    _, out3 = ablation(cfg, ["bn", "lsbn"], seeds=2, runs_root=tmp_path, progress=False, n_boot=20, echo=None)
    assert out3 != out and (out / "ablation.csv").exists()
    assert out3.name.rsplit("-t", 1)[0] == out.name.rsplit("-t", 1)[0]  # only the truth's digest differs


def test_insufficient_truth_fails_before_training(truth_csv, tmp_path):
    partial = tmp_path / "partial.csv"
    df = pd.read_csv(truth_csv)
    df[df["hash"].isin(df["hash"].unique()[:2])].to_csv(partial, index=False)
    cfg = _cfg(partial)
    runs = tmp_path / "runs"
    with pytest.raises(TruthCoverageError, match="covers only"):
        run(cfg, calibrate=True, runs_root=runs, progress=False, echo=None)
    assert not runs.exists()


def test_reliability_line_says_where_the_estimate_comes_from():
    from rankbench.summaries import _reliability_line

    rel = {"n_classes": 14, "n_seeds": 3, "split_half_tau": 0.73, "estimated_tau": 0.86}
    line = _reliability_line({"reliability": rel, "repeats_per_class": {"1": 486, "3": 14}})
    assert "14 of 500 classes" in line and "486 of 500 classes have a single repeat" in line
    line = _reliability_line({"reliability": {**rel, "n_classes": 34, "n_seeds": 4},
                              "repeats_per_class": {"4": 34}})
    assert "4 repeats per class" in line and "single" not in line
    assert _reliability_line({"repeats_per_class": {"1": 5}}) is None


def test_run_on_another_platform_is_refused_then_allowed_and_recorded(truth_csv, tmp_path, monkeypatch):
    """A finished run made on another compute platform (here: its recorded platform edited) is
    not reused silently: exit 2 naming the field; --allow-other-platform reuses it and the
    report records that it did, with the digest of the weights it scored."""
    from rankbench.numerics import ALLOW_ENV, platform_key

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    cfg = _cfg(truth_csv)
    (res,), _ = run(cfg, calibrate=False, runs_root=tmp_path, progress=False, n_boot=20, echo=None)
    m = json.loads((res.report_dir / "metrics.json").read_text())
    assert len(m["weights_digest"]) == 12 and m["platform"]["key"] and m["platform_notes"] == []
    done_path = res.run_dir / "train_done.json"
    done = json.loads(done_path.read_text())
    assert done["weights_digest"] == m["weights_digest"]
    assert json.loads((res.run_dir / "versions.json").read_text())["compute_platform"]["key"] == m["platform"]["key"]
    other = {**done["platform"], "cpu_model": "Another CPU", "aten_capability": "AVX512"}
    other["key"] = platform_key(other)
    done_path.write_text(json.dumps({**done, "platform": other}))
    args = ["--runs-root", str(tmp_path), "--variant", "lsbn", "--no-progress", "--set", f"truth.source={truth_csv}"]
    args += [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    assert main(["run", *args]) == 2
    with pytest.raises(Exception, match="another compute platform.*cpu_model"):
        run(cfg, calibrate=False, runs_root=tmp_path, progress=False, n_boot=20, echo=None)
    try:
        assert main(["--allow-other-platform", "run", *args]) == 0
    finally:
        os.environ.pop(ALLOW_ENV, None)  # the flag sets it for the process
    m2 = json.loads((res.report_dir / "metrics.json").read_text())
    assert m2["weights_digest"] == m["weights_digest"]
    assert any("reused anyway" in n for n in m2["platform_notes"])


def _synthetic_truth(truth_csv: Path, out: Path, n_classes: int = 6, hashes: list[str] | None = None) -> Path:
    """A SYNTHETIC measured-truth CSV (made-up accuracies, 3 seeds) for ``n_classes`` of the tiny
    truth's hash classes (or for ``hashes``): only its shape matters to the tests."""
    import numpy as np

    if hashes is None:
        hashes = list(dict.fromkeys(pd.read_csv(truth_csv, dtype={"hash": str})["hash"]))[:n_classes]
    rng = np.random.default_rng(0)
    rows = [{"hash": h, "seed": s, "validation_accuracy": float(rng.uniform(0.2, 0.6))}
            for h in hashes for s in (0, 1, 2)]
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def test_a_report_ranks_against_an_extra_truth_side_by_side(truth_csv, tmp_path):
    """truth.also: every setting and reference ranker also against a second (synthetic) truth, on
    the candidates it covers, with the same metrics and intervals; the report's own numbers, its
    name and its setup do not move."""
    from rankbench.html_report import report_html
    from rankbench.metrics import rank_metrics
    from rankbench.summaries import format_summary

    synthetic = _synthetic_truth(truth_csv, tmp_path / "synthetic-truth.csv")
    (plain,), _ = run(_cfg(truth_csv), calibrate=True, runs_root=tmp_path, progress=False, n_boot=50, echo=None)
    m0 = json.loads((plain.report_dir / "metrics.json").read_text())
    assert "also" not in m0 and not [c for c in plain.scores.columns if c.startswith("truth_") and c != "truth_std"]
    (res,), _ = run(_cfg(truth_csv, **{"truth.also": [str(synthetic)]}), calibrate=True, runs_root=tmp_path,
                    progress=False, n_boot=50, echo=None)
    assert res.report_dir == plain.report_dir  # the extra truth is not part of the report's setup
    m = json.loads((res.report_dir / "metrics.json").read_text())
    for key in ("metrics", "references", "truth", "setup", "report"):
        assert m[key] == m0[key], key  # the report's own truth: numbers unchanged
    extra = m["also"]["synthetic-truth"]
    covered = set(pd.read_csv(synthetic, dtype={"hash": str})["hash"])
    n_cov = int(res.scores["hash"].isin(covered).sum())
    assert 0 < n_cov < 15
    cov = extra["truth"]["coverage"]
    assert (cov["covered"], cov["candidates"], cov["classes_covered"], cov["classes"]) == (n_cov, 15, 6, 9)
    assert extra["truth"]["location"] == str(synthetic) and extra["truth"]["noise_in_intervals"] is True
    assert set(extra["metrics"]) == {"no_calib", "calib"} and set(extra["references"]) == set(m0["references"])
    scores = pd.read_csv(res.report_dir / "scores.csv", dtype={"hash": str})
    assert scores["truth_synthetic-truth"].notna().sum() == n_cov
    for setting, col in (("no_calib", "acc_no_calib"), ("calib", "acc_calib")):
        ps = extra["metrics"][setting]["per_subnet"]
        assert ps["n"] == n_cov and len(ps["kendall_tau_ci"]) == 2 and ps["resampling_unit"] == "hash class"
        assert extra["metrics"][setting]["per_class"]["n"] == 6
        ok = scores["truth_synthetic-truth"].notna()
        want = rank_metrics(scores.loc[ok, col].to_numpy(float),
                            scores.loc[ok, "truth_synthetic-truth"].to_numpy(float), ci=False)
        assert ps["kendall_tau"] == pytest.approx(want["kendall_tau"], abs=1e-12)
        assert ps["kendall_tau"] != pytest.approx(m["metrics"][setting]["per_subnet"]["kendall_tau"], abs=1e-9)
    for name, r in extra["references"].items():
        assert r["per_subnet"]["n"] == n_cov and "kendall_tau_ci" in r["per_subnet"], name
    # side by side in the text summary and on the report's page
    text = format_summary(res)
    assert "against each truth" in text and f"{n_cov}/15 candidates" in text and "15/15 candidates" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("ref: params") and "n=" in ln)
    assert f"n={n_cov}" in line and "n=15" in line
    page = report_html(res.report_dir)
    assert "synthetic-truth" in page and f"{n_cov}/15 candidates" in page


def test_a_missing_extra_truth_fails_before_training(truth_csv, tmp_path, monkeypatch):
    import rankbench.truth

    runs = tmp_path / "runs"
    with pytest.raises(FileNotFoundError, match="truth.also.*missing.csv"):
        run(_cfg(truth_csv, **{"truth.also": [str(tmp_path / "missing.csv")]}), calibrate=True, runs_root=runs,
            progress=False, echo=None)
    monkeypatch.setattr(rankbench.truth, "bundled_dir", lambda: tmp_path / "nothing-shipped")
    with pytest.raises(FileNotFoundError, match=r"truth.also.*`rankbench truth --preset quick`"):
        run(_cfg(truth_csv, **{"truth.also": ["measured"]}), calibrate=True, runs_root=runs, progress=False,
            echo=None)
    from collections import Counter

    from rankbench.plan import resolve

    counts = Counter(resolve(_cfg(truth_csv), 1, runs, truth="skip").hashes)
    rare = [h for h, n in counts.items() if n < 3][:1]  # a truth of fewer than 3 of the candidates
    too_small = _synthetic_truth(truth_csv, tmp_path / "two.csv", hashes=rare)
    with pytest.raises(TruthCoverageError, match="covers only"):
        run(_cfg(truth_csv, **{"truth.also": [str(too_small)]}), calibrate=True, runs_root=runs, progress=False,
            echo=None)
    assert not runs.exists()
