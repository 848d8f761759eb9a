"""Slow (``pytest -m slow``, ~2-4 minutes on 2 CPU cores): the README's main job,
``rankbench run --variant lsbn --calibrate``, run as a user runs it, printing the numbers the
README quotes.

The README states them in a machine-readable comment beside the command:
``<!-- main-job: platform=KEY no_calib=+X calib=+Y spread=S -->``. On the reference platform
(the same compute-platform key: CPU model, dispatch level, threads, torch build) the printed
tau must equal the README's to the 3 decimals printed; elsewhere it must lie within the
documented spread of one seed across platforms (README "Reproducibility")."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rankbench.cli import main

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = re.compile(r"<!-- main-job: platform=(\w+) no_calib=([+-][\d.]+) calib=([+-][\d.]+) spread=([\d.]+) -->")


def _printed_tau(out: str, label: str) -> float:
    """Tau per subnet from the summary table's row ``label`` (``no calibration   +0.305 [...``)."""
    (tau,) = [m.group(1) for ln in out.splitlines() if (m := re.match(rf"{label}\s{{2,}}([+-]\d+\.\d+) ", ln))]
    return float(tau)


def test_main_job_prints_the_readme_numbers(tmp_path, capsys):
    key, no_calib, calib, spread = MARK.search(README.read_text()).groups()
    assert main(["run", "--variant", "lsbn", "--calibrate", "--runs-root", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    got = {"no_calib": _printed_tau(out, "no calibration"), "calib": _printed_tau(out, "BN calibration")}
    (metrics,) = tmp_path.glob("lsbn-quick-s4-m4-seed2020-*/reports/clean-calib-*/metrics.json")
    here = json.loads(metrics.read_text())["platform"]["key"]
    want = {"no_calib": float(no_calib), "calib": float(calib)}
    if here == key:
        assert got == want, f"reference platform {key}: printed {got}, README {want}"
    else:
        for k in want:
            assert abs(got[k] - want[k]) <= float(spread), (k, got[k], want[k], f"platform {here} vs {key}")
