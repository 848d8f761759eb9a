"""Golden values, recorded before the issue-18 refactoring (a plan computed once, registries,
pipeline split by concern) and asserted after every step of it: names and numbers must not move.

Covered (``tests/assets/golden.json``):

- ``dry_run``: for every preset (``rankbench list presets``), the run directory names that
  ``rankbench run --dry-run --calibrate --seeds 2`` prints and the report name it announces;
  for the quick preset also the ablation table folder that ``rankbench ablation --dry-run`` prints;
- ``score_keys``: :func:`rankbench.scoring.score.score_key` of the quick preset for every
  protocol x calibration (effective config, protocol applied);
- ``report_names``: :func:`rankbench.reports.report_name` for the same, against the quick
  preset's bundled measured truth;
- ``tiny_run``: every number of ``metrics.json`` of one tiny CPU run (``TINY`` of
  tests/test_pipeline.py, its own tiny measured truth), less timings, paths and dates.

Rewrite the file (only when a change of numbers is intended, and say why in the commit) with
``RANKBENCH_GOLDEN_WRITE=1 pytest tests/test_golden.py``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from rankbench.cli import main
from rankbench.config import apply_overrides, list_presets, load_preset
from rankbench.reports import report_name, report_setup
from rankbench.scoring import get_protocol
from rankbench.scoring.protocols import PROTOCOLS
from rankbench.scoring.score import score_key

GOLDEN = Path(__file__).parent / "assets" / "golden.json"
WRITE = os.environ.get("RANKBENCH_GOLDEN_WRITE") == "1"

#: tests/test_pipeline.py's TINY (copied: the golden values must not follow a change there)
TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "space.m": 2,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 1, "train.num_threads": 1,
    "score.calib_batches": 2, "score.calib_batch_size": 25, "score.eval_batch_size": 50,
    "truth.seeds": 1, "truth.train_epochs": 1,
}
#: metrics.json keys that are not numbers of the ranking: timings, paths, dates, the platform,
#: and what names the tiny truth's temporary path (its report name, setup, config and fingerprint)
_NOT_NUMBERS = {"timings", "run_dir", "score_caches", "created", "platform", "platform_notes", "location",
                "provenance", "report", "setup", "config", "config_fingerprint"}

pytestmark = pytest.mark.usefixtures("one_thread")


def _golden() -> dict[str, Any]:
    if WRITE:
        return {}
    return json.loads(GOLDEN.read_text())


def _record(section: str, value: Any) -> None:
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    data[section] = value
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _check(section: str, value: Any) -> None:
    if WRITE:
        _record(section, value)
        return
    assert value == _golden()[section], f"golden {section} changed"


def _comments(out: str, label: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^#\s+{label}(.*)$", out, flags=re.M)]


def test_dry_run_names_of_every_preset(tmp_path, capsys):
    got: dict[str, Any] = {}
    for preset in list_presets():
        argv = ["run", "--preset", preset, "--dry-run", "--calibrate", "--seeds", "2", "--device", "cpu",
                "--runs-root", str(tmp_path)]
        assert main(argv) == 0, preset
        out = capsys.readouterr().out
        dirs = [Path(d).name for d in _comments(out, "run directory: ")]
        reports = _comments(out, "report: ")
        assert len(dirs) == 2, out
        got[preset] = {"run_dirs": dirs, "reports": reports}
    assert main(["ablation", "--preset", "quick", "--dry-run", "--seeds", "2", "--device", "cpu",
                 "--runs-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    got["quick-ablation"] = [Path(d).name for d in _comments(out, "ablation table: ")]
    assert got["quick-ablation"], out
    _check("dry_run", got)


def _quick_setups():
    from rankbench.truth import load_truth

    cfg = apply_overrides(load_preset("quick"), {"train.device": "cpu"})
    for protocol in PROTOCOLS.names():
        proto = get_protocol(protocol)
        eff = proto.apply(apply_overrides(cfg, {"score.protocol": protocol}))
        for calibrate in (False, True):
            yield protocol, calibrate, proto, eff, load_truth


def test_score_keys_and_report_names_of_the_quick_preset():
    keys, names = {}, {}
    digests: dict[str, str] = {}

    for protocol, calibrate, proto, eff, load_truth in _quick_setups():
        tag = f"{protocol}-{'calib' if calibrate else 'nocalib'}"
        keys[tag] = score_key(eff, calibrate, proto)
        if protocol not in digests:
            digests[protocol] = load_truth(eff).digest()
        names[tag] = report_name(report_setup(eff, calibrate=calibrate, truth_digest=digests[protocol]))
    _check("score_keys", keys)
    _check("report_names", names)


def _numbers(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of ``obj`` (a metrics.json) under a dotted name, less :data:`_NOT_NUMBERS`."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in _NOT_NUMBERS:
                continue
            out.update(_numbers(v, f"{prefix}{k}."))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_numbers(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = obj
    return out


def test_tiny_run_metrics(tmp_path_factory):
    from rankbench.pipeline import run
    from rankbench.spaces import create_space
    from rankbench.truth import measure_truth

    cfg = apply_overrides(load_preset("quick"), TINY)
    truth_csv = tmp_path_factory.mktemp("golden-truth") / "truth-tiny.csv"
    measure_truth(create_space("s4", m=2), cfg, truth_csv, progress=False,
                  work_dir=tmp_path_factory.mktemp("golden-truth-work"))
    cfg = apply_overrides(cfg, {"truth.source": str(truth_csv)})
    (res,), _ = run(cfg, calibrate=True, runs_root=tmp_path_factory.mktemp("golden-runs"), progress=False,
                    n_boot=50, echo=None)
    metrics = json.loads((res.report_dir / "metrics.json").read_text())
    got = {"platform": metrics["platform"]["key"], "run_dir": Path(res.run_dir).name, "numbers": _numbers(metrics)}
    if WRITE:
        _record("tiny_run", got)
        return
    want = _golden()["tiny_run"]
    assert got["run_dir"] == want["run_dir"]
    if got["platform"] != want["platform"]:
        pytest.skip(f"golden numbers were recorded on platform {want['platform']}, this is {got['platform']}")
    assert got["numbers"].keys() == want["numbers"].keys()
    changed = {k: (want["numbers"][k], v) for k, v in got["numbers"].items() if v != want["numbers"][k]}
    assert not changed, f"golden numbers changed: {changed}"



def test_reference_rankers_against_the_bundled_nb101_store():
    """The reference rankers with a store (NB101's counts and shorter budgets), which the tiny
    run (measured truth) does not reach: each ranker's scores over the nb101-quick candidates."""
    import hashlib

    from rankbench import nb101
    from rankbench.references import NetworkSize, reference_scores
    from rankbench.spaces import space_from_config

    cfg = apply_overrides(load_preset("nb101-quick"), {"train.device": "cpu"})
    proto = get_protocol(cfg.score.protocol)
    cfg = proto.apply(cfg)
    candidates = proto.candidates(space_from_config(cfg), cfg.score)
    with nb101.open(cfg.truth.store or None) as store:
        refs, desc = reference_scores([c.spec for c in candidates], NetworkSize(num_classes=cfg.model.num_classes),
                                      store=store, metric=cfg.truth.metric)
    got = {name: {"n": len(v), "finite": int(sum(x == x for x in v.tolist())),
                  "sha256": hashlib.sha256(json.dumps(v.tolist()).encode()).hexdigest(),
                  "description": desc.get(name, "")} for name, v in refs.items()}
    _check("references_nb101", got)
