"""The README's "Python API" example runs as written (issue 21, item 9): the test makes the run
directory the example reads (a tiny ``rankbench run --variant lsbn --calibrate``: same name
pattern, tiny network and data), then executes the README's code block unchanged. And the
shipped LICENSE and CITATION.cff say what pyproject declares."""
from __future__ import annotations

import re
import tomllib
from functools import partial
from pathlib import Path

import pytest

from rankbench.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.width=4", "--set", "model.stacks=1", "--set", "model.cells_per_stack=1",
        "--set", "data.resolution=8", "--set", "data.train_size=64", "--set", "data.valid_size=20",
        "--set", "data.test_size=20", "--set", "data.batch_size=32", "--set", "score.calib_batches=1",
        "--set", "score.calib_batch_size=20", "--set", "score.eval_batch_size=20", "--set", "score.candidates=20",
        "--threads", "1", "--device", "cpu", "--epochs", "1", "--no-progress"]


def readme_api_code() -> str:
    """The first ```python block of the README's "### Python API" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Python API", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "the README's Python API section has no ```python block"
    return m.group(1)


def test_readme_python_api_runs_as_written(tmp_path, monkeypatch, capsys):
    import torch

    import rankbench.html_report
    import rankbench.pipeline

    monkeypatch.setenv("RANKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rankbench.html_report, "publish_report", lambda *a, **k: None)  # figures: not tested here
    monkeypatch.setattr(rankbench.pipeline, "run", partial(rankbench.pipeline.run, n_boot=50))  # fewer resamples
    assert main(["run", "--variant", "lsbn", "--calibrate", *TINY]) == 0  # what the example reads
    capsys.readouterr()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "readme_example"}
    try:
        exec(compile(readme_api_code(), "README.md (Python API)", "exec"), namespace)
    finally:
        torch.set_num_threads(old_threads)
    assert "Kendall tau" in capsys.readouterr().out
    assert tuple(namespace["logits"].shape) == (8, 10)
    report = namespace["report"]
    assert namespace["run_dir"].parent == tmp_path / "runs"
    assert namespace["tau"] == pytest.approx(report.metrics["metrics"]["calib"]["per_subnet"]["kendall_tau"],
                                             abs=1e-12)


def test_license_and_citation_match_pyproject():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0"
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text and "APPENDIX: How to apply" in license_text
    assert len(license_text.splitlines()) > 190  # the full text, not a pointer to it
    cff = (REPO / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in cff and "license: Apache-2.0" in cff and f"version: {meta['version']}" in cff
    for needle in ("MixPath: A Unified Approach for One-shot Neural Architecture Search", "arXiv:2001.05887",
                   "NAS-Bench-101: Towards Reproducible Neural Architecture Search", "arXiv:1902.09635",
                   "family-names: Chu", "family-names: Hutter"):
        assert needle in cff, needle
    try:
        import yaml
    except ImportError:
        return
    doc = yaml.safe_load(cff)
    assert [r["year"] for r in doc["references"]] == [2023, 2019]
