"""``rankbench compare --truth NAME``: reports ranked against an extra truth (``truth.also``,
metrics.json "also") compared on that truth; a report without it is refused, naming it. The
metrics here are SYNTHETIC (written by the test): only their place in metrics.json matters."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset
from rankbench.reports import report_name, report_setup
from rankbench.rundir import RunDir, run_dir_for


def _level(t: float, n: int) -> dict:
    return {"kendall_tau": t, "kendall_tau_ci": [t - 0.1, t + 0.1], "spearman": t, "precision_at_10": 0.5,
            "top1_regret": 0.01, "n": n}


def _report(root: Path, variant: str, own: float, extra: float | None) -> Path:
    cfg = apply_overrides(load_preset("quick"), {"model.variant": variant,
                                                 "truth.also": ["measured"] if extra is not None else []})
    rd = RunDir(run_dir_for(cfg, root))
    rd.path.mkdir(parents=True)
    rd.config_path.write_text(json.dumps(cfg.to_dict()))
    setup = report_setup(cfg, calibrate=False, truth_digest="d1")
    d = rd.report_dir(report_name(setup))
    d.mkdir(parents=True)
    m = {"report": d.name, "setup": setup, "config": cfg.to_dict(), "truth": {"digest": "d1"},
         "metrics": {"no_calib": {"per_subnet": _level(own, 34), "per_class": _level(own, 34)}},
         "references": {"params": {"per_subnet": _level(0.3, 34)}}}
    if extra is not None:
        m["also"] = {"measured": {"truth": {"digest": "m1", "coverage": {"covered": 20, "candidates": 34}},
                                  "metrics": {"no_calib": {"per_subnet": _level(extra, 20),
                                                           "per_class": _level(extra, 20)}},
                                  "references": {"params": {"per_subnet": _level(-0.2, 20)}}}}
    (d / "metrics.json").write_text(json.dumps(m))
    (d / "scores.csv").write_text("name,hash\n3---,abc\n")
    return d


def test_compare_against_an_extra_truth(tmp_path, capsys):
    a = _report(tmp_path, "lsbn", 0.5, 0.25)
    b = _report(tmp_path, "bn", 0.1, 0.15)
    plain = _report(tmp_path / "other", "esbn", 0.4, None)
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(a), str(b), "--truth", "measured", "--references", "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "extra truth 'measured'" in md and "+0.250 [+0.15, +0.35]" in md and "+0.500" not in md
    table = pd.read_csv(out)
    assert list(table["kendall_tau_subnet"]) == pytest.approx([0.25, -0.2, 0.15, -0.2])
    assert set(table["n_subnet"]) == {20} and "truth.also" not in table.columns
    # each report's own truth: as before, and which extra truths a report holds is no difference
    assert main(["compare", str(a), str(plain), "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "+0.500" in md and "truth.also" not in md
    assert main(["compare", str(a), str(plain), "--truth", "measured"]) == 2
    err = capsys.readouterr().err
    assert "was not ranked against an extra truth 'measured'" in err and "truth.also" in err
