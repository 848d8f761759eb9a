"""Reports side by side: naming by setup, loading, refusing ambiguity and mixed setups."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rankbench.config import load_preset
from rankbench.reports import (NO_EFFECT_SCORE_FIELDS, PROXY_SCORE_FIELDS, ReportError, find_reports, load_report,
                               report_name, report_setup)
from rankbench.rundir import RunDir


def _write_report(run: RunDir, cfg, *, calibrate: bool, digest: str = "abc") -> str:
    setup = report_setup(cfg, calibrate=calibrate, truth_digest=digest)
    name = report_name(setup)
    d = run.report_dir(name)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"report": name, "setup": setup, "config": cfg.to_dict(),
                                                "metrics": {}}))
    (d / "scores.csv").write_text("name,hash\n3---,abc\n")
    return name


@pytest.fixture
def run(tmp_path):
    cfg = load_preset("quick")
    r = RunDir(tmp_path / "lsbn-run")
    r.path.mkdir()
    r.config_path.write_text(json.dumps(cfg.to_dict()))
    return r, cfg


def test_names_say_protocol_and_calibration_and_differ_by_setup(run):
    _, cfg = run
    clean = report_name(report_setup(cfg, calibrate=True, truth_digest="t"))
    paper_cfg = replace(cfg, score=replace(cfg.score, protocol="paper"))
    paper = report_name(report_setup(paper_cfg, calibrate=True, truth_digest="t"))
    nocal = report_name(report_setup(cfg, calibrate=False, truth_digest="t"))
    other_truth = report_name(report_setup(cfg, calibrate=True, truth_digest="u"))
    assert clean.startswith("clean-calib-") and paper.startswith("paper-calib-") and nocal.startswith("clean-nocalib-")
    assert len({clean, paper, nocal, other_truth}) == 4


def test_every_score_field_changes_the_report_unless_listed(run):
    """A scoring field that can change a number must change the report's name."""
    import dataclasses

    _, cfg = run
    for proxies in ((), ("synflow",)):  # the proxies' fields count only where proxies are chosen
        c = replace(cfg, score=replace(cfg.score, proxies=proxies))
        base = report_name(report_setup(c, calibrate=True, truth_digest="t"))
        for f in dataclasses.fields(c.score):
            v = getattr(c.score, f.name)
            new = ((not v) if isinstance(v, bool) else v + 1 if isinstance(v, (int, float))
                   else (*v, "naswot") if isinstance(v, tuple) else v + "x")
            changed = report_name(report_setup(replace(c, score=replace(c.score, **{f.name: new})),
                                               calibrate=True, truth_digest="t"))
            no_effect = f.name in NO_EFFECT_SCORE_FIELDS or (not proxies and f.name == "proxy_batch_size")
            assert (changed == base) == no_effect, (f.name, proxies)


def test_a_report_without_proxies_keeps_its_setup(run):
    """score.proxies left empty (the default) adds nothing to a report's setup; chosen, the
    proxies and their batch size are in it: a report with proxies is another report."""
    _, cfg = run
    setup = report_setup(cfg, calibrate=True, truth_digest="t")
    assert not set(PROXY_SCORE_FIELDS) & set(setup["score"])
    on = report_setup(replace(cfg, score=replace(cfg.score, proxies=("synflow", "naswot"))), calibrate=True,
                      truth_digest="t")
    assert on["score"]["proxies"] == ["synflow", "naswot"] and on["score"]["proxy_batch_size"] == 64
    assert report_name(on) != report_name(setup)


def test_extra_truths_never_enter_a_reports_setup(run):
    """truth.also (extra truths a report also ranks against) changes none of the report's
    numbers against its own truth: with or without it, the same setup and name; every other
    truth field that can change a number still does."""
    from rankbench.reports import TRUTH_EXTRA_FIELDS

    _, cfg = run
    assert "also" in TRUTH_EXTRA_FIELDS
    base = report_setup(cfg, calibrate=True, truth_digest="t")
    assert "also" not in base["truth"]
    for also in (("measured",), ("nb101", "/somewhere/truth-x.csv")):
        on = report_setup(replace(cfg, truth=replace(cfg.truth, also=also)), calibrate=True, truth_digest="t")
        assert on == base and report_name(on) == report_name(base)
    other = report_setup(replace(cfg, truth=replace(cfg.truth, metric="test_accuracy")), calibrate=True,
                         truth_digest="t")
    assert report_name(other) != report_name(base)


def test_load_report_from_run_dir_report_dir_or_metrics(run):
    r, cfg = run
    with pytest.raises(ReportError, match="no report yet"):
        load_report(r.path)
    a = _write_report(r, cfg, calibrate=True)
    assert load_report(r.path).name == a
    b = _write_report(r, cfg, calibrate=False)
    with pytest.raises(ReportError, match="holds 2 reports") as e:
        load_report(r.path)
    assert a in str(e.value) and b in str(e.value)
    assert load_report(r.path, "clean-nocalib").name == b
    assert load_report(r.report_dir(a)).name == a
    assert load_report(r.report_dir(a) / "metrics.json").label == f"{r.name}/{a}"
    assert list(load_report(r.path, b).scores["name"]) == ["3---"]
    with pytest.raises(ReportError, match="neither a report"):
        load_report(r.path.parent)


def test_find_reports_refuses_mixed_setups(tmp_path):
    cfg = load_preset("quick")
    runs = []
    for i, calib in enumerate((True, True, False)):
        r = RunDir(tmp_path / f"run{i}")
        r.path.mkdir()
        r.config_path.write_text(json.dumps(cfg.to_dict()))
        _write_report(r, cfg, calibrate=calib)
        runs.append(r.path)
    assert len(find_reports(runs[:2])) == 2
    with pytest.raises(ReportError, match="2 different scoring setups"):
        find_reports(runs)
