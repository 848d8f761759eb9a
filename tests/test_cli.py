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
    (["--set", "score.proxies=synflow,nope"], "unknown zero-cost proxy 'nope'; proxies: synflow, snip"),
    (["--set", "score.proxy_batch_size=1"], "score.proxy_batch_size = 1"),
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

    def fake_run(cfg, *, calibrate, seeds, runs_root, progress, echo, plan=None):
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


# -- issue 21 item 5: globs over runs/ skip what is no run; --report skips runs without it ------
def test_compare_glob_skips_non_runs_and_runs_without_the_report(tmp_path, capsys):
    a = _report(tmp_path, {"model.variant": "lsbn"}, 0.5)
    b = _report(tmp_path, {"model.variant": "bn"}, 0.2)
    p = _report(tmp_path, {"model.variant": "bn", "score.protocol": "paper"}, 0.1)  # bn's run, a paper report
    (tmp_path / "summary-lsbn-quick-s4-m4-clean-seeds2020-2021-t1-calib").mkdir()
    (tmp_path / "ablation-quick-s4-m4-clean-seeds2020-2020-t1").mkdir()
    unscored = RunDir(run_dir_for(apply_overrides(load_preset("quick"), {"model.variant": "esbn"}), tmp_path))
    unscored.path.mkdir()
    unscored.config_path.write_text("{}")
    everything = sorted(tmp_path.iterdir())  # what runs/* gives
    assert main(["compare", *map(str, everything)]) == 0
    out, err = capsys.readouterr()
    notes = [ln for ln in err.splitlines() if ln.startswith("note: skipped")]
    assert len(notes) == 3 and any("summary-" in n for n in notes) and any("no report yet" in n for n in notes)
    assert a.name in out and b.name in out and p.name in out
    assert main(["compare", *map(str, everything), "--report", "clean-calib"]) == 0
    out, err = capsys.readouterr()
    assert p.name not in out and a.name in out and b.name in out  # bn's run: its clean report only
    assert main(["compare", *map(str, everything), "--report", "paper"]) == 0
    out, err = capsys.readouterr()
    assert p.name in out and a.name not in out and "no report matching 'paper'" in err
    assert main(["compare", str(tmp_path / "ablation-quick-s4-m4-clean-seeds2020-2020-t1")]) == 2
    assert "nothing to compare" in capsys.readouterr().err


def test_figures_glob_skips_folders_that_are_no_run(tmp_path):
    from rankbench.cli.figures import run_dirs_of
    from rankbench.cli import CLIError

    run = RunDir(tmp_path / "lsbn-quick-s4-m4-seed2020-abc")
    run.path.mkdir()
    run.config_path.write_text("{}")
    summary = tmp_path / "summary-x"
    summary.mkdir()
    (tmp_path / "notes.txt").write_text("")
    notes = []
    assert run_dirs_of(sorted(tmp_path.iterdir()), notes.append) == [run.path]
    assert len(notes) == 2 and all(n.startswith("skipped ") for n in notes)
    with pytest.raises(CLIError) as e:
        run_dirs_of([summary], notes.append)
    assert e.value.code == 2 and "not a rankbench run directory" in str(e.value)
    with pytest.raises(CLIError) as e:
        run_dirs_of([tmp_path / "missing"], notes.append)
    assert e.value.code == 3


# -- item 6: compare --out by extension, LaTeX; the weights and platform of each report --------
def _with_provenance(report_dir: Path, weights: str, platform: str) -> None:
    m = json.loads((report_dir / "metrics.json").read_text())
    m.update(weights_digest=weights, platform={"key": platform, "device": "cpu"})
    (report_dir / "metrics.json").write_text(json.dumps(m))


@pytest.mark.parametrize("ext", [".md", ".csv", ".json", ".tex"])
def test_compare_out_writes_the_format_its_extension_names(tmp_path, capsys, ext):
    a = _report(tmp_path / "runs", {"model.variant": "lsbn"}, 0.5)
    b = _report(tmp_path / "runs", {"model.variant": "bn"}, 0.2)
    out = tmp_path / f"cmp{ext}"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    md = capsys.readouterr().out.split("\nwritten:")[0].strip()
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["cmp" + ext, "runs"]
    text = out.read_text()
    if ext == ".md":
        assert text.strip() == md
    elif ext == ".csv":
        import pandas as pd

        assert len(pd.read_csv(out)) == 4
    elif ext == ".json":
        doc = json.loads(text)
        assert len(doc["rows"]) == 4 and doc["differing"]["model.variant"] == ["lsbn", "bn"]
        assert doc["rows"][0]["kendall_tau_subnet"] == pytest.approx(0.5)
    else:
        for word in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{ll", r"Kendall tau (subnet)",
                     r"lsbn-quick-s4-m4-seed2020-", r"+0.500 [+0.40, +0.60]"):
            assert word in text, word
        assert "_" not in text.replace(r"\_", "")  # every underscore escaped


@pytest.mark.parametrize("out", ["cmp.txt", "cmp.html"])
def test_compare_out_refuses_an_unknown_extension(tmp_path, capsys, out):
    a = _report(tmp_path / "runs", {}, 0.5)
    assert main(["compare", str(a), "--out", str(tmp_path / out)]) == 2
    assert ".json" in capsys.readouterr().err and not (tmp_path / out).exists()


def test_compare_shows_which_weights_each_report_scored(tmp_path, capsys):
    a = _report(tmp_path / "one", {}, 0.5)
    b = _report(tmp_path / "two", {}, 0.5)  # the same report name, the same config ...
    assert a.name == b.name
    _with_provenance(a, "aaaaaaaaaaaa", "p1")
    _with_provenance(b, "bbbbbbbbbbbb", "p2")  # ... other weights, another platform
    assert main(["compare", str(a), str(b)]) == 0
    md = capsys.readouterr().out
    head = md.splitlines()[2]
    assert "| weights | platform |" in head
    assert "aaaaaaaaaaaa | p1" in md and "bbbbbbbbbbbb | p2" in md and "different weights" in md
    from rankbench.cli.compare import collect_reports, compare_table

    table, _ = compare_table(collect_reports([a, b]))
    assert list(table["weights"]) == ["aaaaaaaaaaaa"] * 2 + ["bbbbbbbbbbbb"] * 2
    old = _report(tmp_path / "three", {}, 0.4)  # made before the key existed: no column, no error
    assert main(["compare", str(old)]) == 0
    assert "weights" not in capsys.readouterr().out


def test_latex_escapes_and_booktabs():
    from rankbench._latex import booktabs, escape

    assert escape("a_b 50% #1 & {x} ± −") == r"a\_b 50\% \#1 \& \{x\} $\pm$ $-$"
    tex = booktabs(["name", "tau"], [["lsbn_x", "+0.5"]])
    assert tex.splitlines()[2:6] == [r"\begin{tabular}{lr}", r"\toprule", r"name & tau \\", r"\midrule"]
    with pytest.raises(ValueError):
        booktabs(["a", "b"], [["only one"]])


# -- item 7: --seed, --epochs, --threads; --dry-run says what exists and which truth ----------
def test_seed_epochs_threads_options(sandbox, capsys):
    assert main(["run", "--dry-run", "--seed", "7", "--seeds", "2", "--epochs", "3", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    doc = tomllib.loads(out)
    assert doc["train"]["seed"] == 7 and doc["train"]["epochs"] == 3 and doc["train"]["num_threads"] == 2
    dirs = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("# run directory")]
    assert ["seed7" in dirs[0], "seed8" in dirs[1]] == [True, True]
    for argv in (["train", "--seed", "5"], ["ablation", "--seed", "5", "--variants", "bn"], ["truth"]):
        assert main([*argv, "--dry-run", "--threads", "3", "--epochs", "4"] if argv[0] != "truth"
                    else [*argv, "--dry-run", "--threads", "3"]) == 0
        doc = tomllib.loads(capsys.readouterr().out)
        assert doc["train"]["num_threads"] == 3
        if argv[0] != "truth":
            assert doc["train"]["seed"] == 5 and doc["train"]["epochs"] == 4
    assert main(["run", "--dry-run", "--seeds", "0"]) == 2


def _fake_run(cfg, root: Path, *, finished: bool, epochs_done: int) -> Path:
    rd = RunDir(run_dir_for(cfg, root))
    rd.path.mkdir(parents=True)
    rd.config_path.write_text(json.dumps(cfg.to_dict()))
    rd.train_log.write_text("epoch,train_loss,epoch_s\n" + "".join(f"{i},1.0,2.0\n" for i in range(epochs_done)))
    rd.checkpoint.parent.mkdir()
    rd.checkpoint.write_bytes(b"")
    if finished:
        rd.done_marker.write_text(json.dumps({"epochs": epochs_done}))
        rd.supernet.write_bytes(b"")
    return rd.path


def test_dry_run_says_whether_the_run_is_reused_and_which_truth(sandbox, capsys):
    from rankbench.truth import load_truth

    assert main(["run", "--dry-run", "--calibrate", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("# run directory: "))
    assert lines[i + 1] == "#   new: trains 3 epochs"
    assert lines[i + 2].startswith("#   report: reports/clean-calib-") and lines[i + 2].endswith("(new)")
    cfg = load_preset("quick")
    repeats = int(load_truth(cfg).table["n_repeats"].max())
    assert repeats != cfg.truth.seeds  # the case the issue names: 10 repeats, truth.seeds = 2
    truth = next(ln for ln in lines if ln.startswith("# truth: "))
    assert "data/truth-quick.csv" in truth and f"x {repeats} repeats" in truth
    assert f"truth.seeds = {cfg.truth.seeds} below is what `rankbench truth` would measure" in out
    assert _tree(sandbox) == []

    runs = sandbox / "runs"
    three = apply_overrides(cfg, {"train.epochs": 3})
    _fake_run(three, runs, finished=True, epochs_done=3)
    _fake_run(apply_overrides(three, {"train.seed": 2021}), runs, finished=False, epochs_done=1)
    assert main(["run", "--dry-run", "--epochs", "3", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "#   exists, finished (3 epochs): reused, not trained again" in out
    assert "#   exists, unfinished (1/3): training resumes from its checkpoint" in out
    assert main(["train", "--dry-run", "--epochs", "3", "--seed", "2021"]) == 2  # interrupted: needs --resume
    err = capsys.readouterr().err
    assert "--resume" in err and "resume=True" not in err
    assert main(["train", "--dry-run", "--epochs", "3", "--seed", "2021", "--resume"]) == 0
    assert "resumed from its checkpoint" in capsys.readouterr().out


# -- item 8: rankbench runs ---------------------------------------------------------------------
def test_runs_lists_each_run_newest_first(sandbox, capsys):
    import os
    import time

    root = sandbox / "runs"
    cfg = apply_overrides(load_preset("quick"), {"train.epochs": 3})
    done = _fake_run(cfg, root, finished=True, epochs_done=3)
    rep = done / "reports" / "clean-calib-abc"
    rep.mkdir(parents=True)
    (rep / "metrics.json").write_text(json.dumps({"metrics": _metrics(0.25, True)}))
    old = _fake_run(apply_overrides(cfg, {"model.variant": "bn"}), root, finished=False, epochs_done=1)
    live = _fake_run(apply_overrides(cfg, {"train.seed": 7}), root, finished=False, epochs_done=2)
    (root / "summary-lsbn-x").mkdir()  # no run: left out
    now = time.time()
    for path, age in ((done, 600), (old, 7200), (live, 1)):
        for p in [path, *path.rglob("*")]:
            os.utime(p, (now - age, now - age))
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert [live.name in lines[0], done.name in lines[1], old.name in lines[2]] == [True] * 3
    assert "no report" in lines[0] and "no report" in lines[2]
    assert lines[0].split()[:6] == ["lsbn", "s4", "m=4", "seed", "7", "training"] and "2/3 epochs" in lines[0]
    assert lines[1].split()[5] == "finished" and "3/3 epochs" in lines[1]
    assert "clean-calib-abc (tau +0.250 no calib, +0.450 calib)" in lines[1]
    assert lines[2].split()[:6] == ["bn", "s4", "m=4", "seed", "2020", "interrupted"] and "1/3" in lines[2]
    assert main(["runs", str(done)]) == 0  # one run directory: its line
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["runs", str(sandbox / "nowhere")]) == 3


# -- item 5: ablation prints its table, the per-seed summaries go to its folder -----------------
def test_ablation_prints_its_table_not_every_summary(sandbox, capsys, monkeypatch):
    from functools import partial

    import rankbench.ablation
    import rankbench.html_report

    monkeypatch.setattr(rankbench.html_report, "publish_report", lambda *a, **k: None)  # figures: not tested here
    monkeypatch.setattr(rankbench.html_report, "publish_ablation", lambda *a, **k: None)
    monkeypatch.setattr(rankbench.ablation, "ablation", partial(rankbench.ablation.ablation, n_boot=50))
    tiny = [*TINY_TRAIN, "--set", "score.calib_batches=1", "--set", "score.calib_batch_size=20",
            "--set", "score.eval_batch_size=20", "--no-progress"]
    assert main(["ablation", "--variants", "bn", *tiny]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) < 25, out
    assert "ranked 15 candidates" not in out and "regret: true accuracy" not in out  # no per-run summary
    assert any(ln.startswith("bn: 1 seed(s) scored; Kendall tau per subnet") for ln in lines)
    assert any(ln.startswith("| variant | BN calibration |") for ln in lines)
    (folder,) = (sandbox / "runs").glob("ablation-*")
    assert "ranked 15 candidates" in (folder / "summaries.txt").read_text()
    tex = (folder / "ablation.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "reference: params" in tex
