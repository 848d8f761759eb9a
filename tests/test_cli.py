"""The everyday CLI: validation before anything is created, --dry-run, a fast --help, the
truth's default output, ``rankbench compare``."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rankbench.cli import main
from rankbench.config import ConfigError, apply_overrides, load_preset, validate_config
from rankbench.rundir import RunDir, run_dir_for

COMMANDS = ("run", "train", "ablation", "truth")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Every place a command could write (runs root, data home, working directory) inside one
    empty folder, so a test can assert that nothing at all was created."""
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.setenv("RANKBENCH_RUNS", str(box / "runs"))
    monkeypatch.setenv("RANKBENCH_HOME", str(box / "home"))
    monkeypatch.chdir(box)
    return box


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- item 3: validate everything before creating anything -----------------------------------
BAD = [
    (["--set", "train.epochs=-1"], "train.epochs = -1"),
    (["--set", "train.epochs=0"], "train.epochs = 0"),
    (["--set", "data.batch_size=0"], "data.batch_size = 0"),
    (["--m", "7"], "m = 1..4"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--set", "train.lr=-0.1"], "learning rate must be > 0"),
    (["--set", "train.weight_decay=-1e-4"], "train.weight_decay = -0.0001"),
    (["--set", "train.momentum=-0.9"], "train.momentum = -0.9"),
    (["--set", "model.variant=nope"], "unknown variant"),
    (["--space", "nope"], "nope"),
    (["--set", "score.protocol=nope"], "unknown protocol"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("argv, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_invalid_config_exits_2_and_creates_nothing(sandbox, monkeypatch, capsys, command, argv, words):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([command, *argv, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert words in err and "run directory" not in out
    assert _tree(sandbox) == []


@pytest.mark.parametrize("command", ("run", "ablation", "truth"))
def test_bad_seed_count_creates_nothing(sandbox, capsys, command):
    assert main([command, "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err and _tree(sandbox) == []


def test_validate_config_lists_every_problem_with_its_fix():
    cfg = apply_overrides(load_preset("quick"), {"train.lr": -1.0, "data.batch_size": 0, "train.epochs": 0})
    with pytest.raises(ConfigError) as e:
        validate_config(cfg)
    msg = str(e.value)
    assert "3 problems" in msg
    for key in ("train.lr", "data.batch_size", "train.epochs"):
        assert f"--set {key}=" in msg
    assert validate_config(load_preset("quick")) is not None and validate_config(load_preset("paper"))


@pytest.mark.parametrize("field, value", [("train.lr", float("nan")), ("train.grad_clip", float("inf"))])
def test_non_finite_numbers_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=f"{field} = .*finite"):
        validate_config(apply_overrides(load_preset("quick"), {field: value}))


def test_ablation_checks_every_variant_before_the_first(sandbox, capsys):
    assert main(["ablation", "--variants", "bn", "nope", "--no-progress"]) == 2
    assert "--variants nope" in capsys.readouterr().err and _tree(sandbox) == []


# -- item 10: --dry-run, the run directory first, "reused" once ------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_dry_run_prints_the_resolved_config_and_creates_nothing(sandbox, capsys, command, tmp_path):
    argv = [command, "--dry-run", "--set", "train.epochs=3", "--m", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert _tree(sandbox) == []
    comments = [ln for ln in out.splitlines() if ln.startswith("#")]
    assert comments[0] == "# dry run: nothing was created or run"
    doc = tomllib.loads(out)  # the comments are TOML comments: the whole output is a preset
    assert doc["train"]["epochs"] == 3 and doc["space"] == {"name": "s4", "m": 2}
    preset = tmp_path / "resolved.toml"
    preset.write_text(out)
    again = load_preset(str(preset))
    assert again.train.epochs == 3 and again.space.m == 2
    if command == "truth":
        assert f"# truth CSV: {sandbox / 'home' / 'truth-quick.csv'}" in comments
    else:
        assert any(c.startswith("# run directory") and str(sandbox / "runs") in c for c in comments)


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_space_wherever_m_and_tensorboard_on_run_and_train(sandbox, capsys):
    from rankbench.cli import build_parser

    with_m = 0
    for name, sub in _subparsers(build_parser()):
        opts = {o for a in sub._actions for o in a.option_strings}
        positional = {a.dest for a in sub._actions if not a.option_strings}
        if "--m" in opts:
            with_m += 1
            assert "--space" in opts or "space" in positional, name
    assert with_m >= 4
    for command in ("run", "train"):
        assert main([command, "--dry-run", "--tensorboard", "--space", "s4"]) == 0
        assert tomllib.loads(capsys.readouterr().out)["train"]["tensorboard"] is True
    assert main(["train", "--dry-run"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["train"]["tensorboard"] is False


def test_dry_run_run_directories_are_the_ones_a_run_uses(sandbox, capsys):
    assert main(["run", "--dry-run", "--seeds", "2", "--set", "train.epochs=3"]) == 0
    dirs = [ln.split(": ", 1)[1] for ln in capsys.readouterr().out.splitlines()
            if ln.startswith("# run directory")]
    cfg = apply_overrides(load_preset("quick"), {"train.epochs": 3})
    expected = [str(run_dir_for(apply_overrides(cfg, {"train.seed": cfg.train.seed + i}))) for i in range(2)]
    assert dirs == expected


def test_run_prints_its_run_directory_first(sandbox, capsys, monkeypatch):
    import rankbench.pipeline

    calls = []

    def fake_run(cfg, *, calibrate, seeds, runs_root, progress, echo):
        calls.append((cfg.model.variant, seeds))
        echo("SUMMARY")
        return [], None

    monkeypatch.setattr(rankbench.pipeline, "run", fake_run)
    assert main(["run", "--variant", "bn", "--seeds", "2", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert calls == [("bn", 2)]
    assert lines[0].startswith("run directory: ") and lines[1].startswith("run directory: ")
    assert "seed2020" in lines[0] and "seed2021" in lines[1] and lines[2] == "SUMMARY"


TINY_TRAIN = ["--set", "model.width=4", "--set", "model.stacks=1", "--set", "model.cells_per_stack=1",
              "--set", "data.resolution=8", "--set", "data.train_size=64", "--set", "data.valid_size=20",
              "--set", "data.test_size=20", "--set", "data.batch_size=32", "--set", "train.num_threads=1",
              "--device", "cpu", "--epochs", "1", "--m", "2"]


def test_train_says_reused_once_and_run_directory_first(sandbox, capsys):
    argv = ["train", "--variant", "bn", *TINY_TRAIN]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0].startswith("run directory: ")
    assert main(argv) == 0  # with progress on: train_supernet would announce the reuse too
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == first[0]
    assert (out + err).replace(str(sandbox), "").lower().count("reus") == 1


# -- item 7: --help and --version import neither torch nor pandas ----------------------------
HEAVY = ("torch", "pandas", "matplotlib", "scipy", "h5py")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["run", "--help"], ["data", "import", "--help"],
                                  ["compare", "--help"]])
def test_help_imports_nothing_heavy(argv):
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "rankbench", *argv],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    imported = {ln.split("|")[-1].strip() for ln in res.stderr.splitlines() if ln.startswith("import time:")}
    assert len(imported) > 10  # the report was parsed
    top = {name.split(".")[0] for name in imported}
    assert not top & set(HEAVY), sorted(top & set(HEAVY))


# -- item 8: truth --out defaults to $RANKBENCH_HOME, never the package ----------------------
def test_truth_out_default_and_folder(sandbox, capsys, tmp_path):
    assert main(["truth", "--dry-run"]) == 0
    assert f"# truth CSV: {sandbox / 'home' / 'truth-quick.csv'}" in capsys.readouterr().out
    folder = tmp_path / "somewhere"
    folder.mkdir()
    assert main(["truth", "--dry-run", "--out", str(folder)]) == 0
    assert f"# truth CSV: {folder / 'truth-quick.csv'}" in capsys.readouterr().out
    assert main(["truth", "--dry-run", "--out", str(tmp_path / "x.txt")]) == 2
    assert ".csv" in capsys.readouterr().err and _tree(sandbox) == []


def test_measured_truth_still_finds_the_bundled_file(sandbox):
    from rankbench._paths import bundled_dir
    from rankbench.truth import load_truth

    truth = load_truth(load_preset("quick"))  # nothing in $RANKBENCH_HOME: the shipped quick truth
    assert Path(truth.location).resolve() == (bundled_dir() / "truth-quick.csv").resolve()


def test_measured_truth_prefers_what_rankbench_truth_wrote(sandbox):
    import shutil

    from rankbench._paths import bundled_dir
    from rankbench.cli.run import default_truth_out
    from rankbench.truth import load_truth

    out = default_truth_out("quick")
    out.parent.mkdir(parents=True)
    shutil.copy(bundled_dir() / "truth-quick.csv", out)
    assert Path(load_truth(load_preset("quick")).location) == out


# -- item 12: rankbench compare ---------------------------------------------------------------
def _metrics(tau: float, calib: bool) -> dict:
    def level(t):
        return {"kendall_tau": t, "kendall_tau_ci": [t - 0.1, t + 0.1], "spearman": t + 0.1,
                "precision_at_10": 0.5, "top1_regret": 0.01, "n": 34}

    out = {"no_calib": {"per_subnet": level(tau), "per_class": level(tau - 0.05), "mean_accuracy": 0.4}}
    if calib:
        out["calib"] = {"per_subnet": level(tau + 0.2), "per_class": level(tau + 0.1), "mean_accuracy": 0.6}
    return out


def _report(root: Path, overrides: dict, tau: float, *, calib: bool = True) -> Path:
    from rankbench.reports import report_name, report_setup

    cfg = apply_overrides(load_preset("quick"), overrides)
    rd = RunDir(run_dir_for(cfg, root))
    rd.path.mkdir(parents=True, exist_ok=True)
    rd.config_path.write_text(json.dumps(cfg.to_dict()))
    setup = report_setup(cfg, calibrate=calib, truth_digest="d1")
    name = report_name(setup)
    d = rd.report_dir(name)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({
        "report": name, "setup": setup, "config": cfg.to_dict(), "metrics": _metrics(tau, calib),
        "truth": {"digest": "d1"}, "references": {"params": {"per_subnet": {"kendall_tau": 0.3}}}}))
    (d / "scores.csv").write_text("name,hash\n3---,abc\n")
    return d


def test_compare_table_shows_metrics_and_only_differing_fields(tmp_path, capsys):
    a = _report(tmp_path, {"model.variant": "lsbn"}, 0.5)
    b = _report(tmp_path, {"model.variant": "bn", "train.epochs": 3}, 0.2)
    c = _report(tmp_path, {"model.variant": "bn", "train.epochs": 3, "score.protocol": "paper"}, 0.1,
                calib=False)
    out_dir = tmp_path / "cmp"
    assert main(["compare", str(a), str(b.parent.parent), str(c / "metrics.json"), "--out", str(out_dir)]) == 0
    md = capsys.readouterr().out
    assert "differ in: " in md
    head = md.splitlines()[2]
    for col in ("Kendall tau (subnet)", "Kendall tau (class)", "Spearman", "P@10%", "top-1 regret",
                "model.variant", "train.epochs", "score.protocol"):
        assert col in head
    assert "train.seed" not in head and "model.width" not in head  # equal everywhere: not shown
    assert "+0.500 [+0.40, +0.60]" in md and "+0.700 [+0.60, +0.80]" in md  # lsbn without / with calibration

    import pandas as pd

    table = pd.read_csv(out_dir / "compare.csv")
    assert len(table) == 5  # 2 settings + 2 settings + 1 setting
    assert list(table["setting"]).count("BN calibration") == 2
    assert table.loc[0, "kendall_tau_subnet"] == pytest.approx(0.5)
    assert table.loc[0, "kendall_tau_class_ci_low"] == pytest.approx(0.35)
    assert set(table["model.variant"]) == {"lsbn", "bn"}
    assert (out_dir / "compare.md").read_text().strip() == md.split("\nwritten:")[0].strip()


def test_compare_a_run_with_several_reports_and_errors(tmp_path, capsys):
    a = _report(tmp_path, {}, 0.5)
    b = _report(tmp_path, {"score.eval_size": 100}, 0.4)  # same run, another scoring setup
    assert a.parent == b.parent
    assert main(["compare", str(a.parent.parent), "--references"]) == 0
    md = capsys.readouterr().out
    assert "score.eval_size" in md and "reference: params" in md
    assert main(["compare", str(a.parent.parent), "--report", a.name]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "missing")]) == 3
    assert main(["compare", str(tmp_path)]) == 2  # the runs root is no run directory
    assert "neither a report" in capsys.readouterr().err


def test_list_variants_and_spaces_show_what_supports_what(capsys):
    from rankbench.cli import main
    from rankbench.supernet import list_variants, variant_info

    assert main(["list", "variants"]) == 0
    out = capsys.readouterr().out
    for v in list_variants():
        line = next(ln for ln in out.splitlines() if ln.split()[0] == v)
        assert "[" + ", ".join(variant_info(v).spaces) + "]" in line
    assert main(["spaces", "list"]) == 0
    out = capsys.readouterr().out
    assert "spos" not in next(ln for ln in out.splitlines() if ln.startswith("nb101"))


def test_space_picks_its_own_quick_preset(capsys):
    from rankbench.cli import main

    assert main(["run", "--space", "nb101", "--variant", "lsbn", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert 'preset = "nb101-quick"' in out and 'source = "nb101"' in out
    assert main(["run", "--variant", "lsbn", "--dry-run"]) == 0
    assert 'preset = "quick"' in capsys.readouterr().out
