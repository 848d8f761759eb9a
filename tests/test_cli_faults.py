"""The everyday path when something is in the way (issue 21, items 1 and 4): a runs folder or an
--out that cannot be written is an exit-2 error saying what and how to fix it, checked before
anything runs (``--dry-run`` included); a read-only finished run is re-summarised without
writing a byte; SIGTERM exits 143, and the resume hint names the command's option, not the
Python API.

The tests run as root on the project's machines, where ``chmod`` does not stop a write: each
case uses a path under a *file* (which stops root too), and the ``chmod`` variants skip as
root. The read-only re-summary also runs as root, with the run directory reported unwritable.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

import rankbench.rundir
from rankbench.cli import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_TERMINATED, main

def _chmod_blocks_writes() -> bool:
    """Whether a folder without write permission stops this process (not as root, nor with
    CAP_DAC_OVERRIDE)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ro = Path(d) / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            (ro / "probe").write_text("")
        except PermissionError:
            return True
        finally:
            ro.chmod(0o755)
        return False


needs_chmod = pytest.mark.skipif(not _chmod_blocks_writes(),
                                 reason="running as root: chmod does not stop a write (the tests with a path "
                                        "under a file cover the same checks)")

#: the tiniest run that trains and scores (S4 with m = 2: 15 subnets), on the bundled truth
TINY = ["--set", "model.width=4", "--set", "model.stacks=1", "--set", "model.cells_per_stack=1",
        "--set", "data.resolution=8", "--set", "data.train_size=64", "--set", "data.valid_size=20",
        "--set", "data.test_size=20", "--set", "data.batch_size=32", "--set", "score.calib_batches=1",
        "--set", "score.calib_batch_size=20", "--set", "score.eval_batch_size=20",
        "--threads", "1", "--device", "cpu", "--epochs", "1", "--m", "2", "--no-progress"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.setenv("RANKBENCH_RUNS", str(box / "runs"))
    monkeypatch.setenv("RANKBENCH_HOME", str(box / "home"))
    monkeypatch.chdir(box)
    return box


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run with its clean-calib report: (runs root, run directory)."""
    import rankbench.html_report
    import rankbench.pipeline

    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setattr(rankbench.html_report, "publish_report", lambda *a, **k: None)  # figures: not what is tested
    mp.setattr(rankbench.pipeline, "run", partial(rankbench.pipeline.run, n_boot=50))  # fewer resamples
    try:
        assert main(["run", "--variant", "lsbn", "--calibrate", "--runs-root", str(root), *TINY]) == 0
    finally:
        mp.undo()
    (run_dir,) = [d for d in root.iterdir() if d.name.startswith("lsbn-quick-s4-m2-seed2020-")]
    return root, run_dir


# -- item 1: a folder that cannot be written: exit 2 up front -----------------------------------
@pytest.mark.parametrize("argv", [["run", "--dry-run"], ["run"], ["train", "--dry-run"], ["train"],
                                  ["ablation", "--dry-run", "--variants", "bn"], ["truth", "--dry-run"]],
                         ids=lambda a: " ".join(a))
def test_runs_root_at_a_file_exits_2_before_anything(sandbox, capsys, monkeypatch, argv):
    (sandbox / "afile").write_text("not a folder")
    monkeypatch.setenv("RANKBENCH_RUNS", str(sandbox / "afile"))
    assert main([*argv, *(TINY if argv[0] != "truth" else [])]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RANKBENCH_RUNS" in err and "is a file, not a folder" in err
    assert "point RANKBENCH_RUNS at a " in err
    assert sorted(p.name for p in sandbox.iterdir()) == ["afile"]  # nothing else was created


def test_runs_root_option_under_a_file_names_the_option(sandbox, capsys):
    (sandbox / "afile").write_text("")
    assert main(["run", "--dry-run", "--runs-root", str(sandbox / "afile" / "runs"), *TINY]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "--runs-root" in err and "afile is a file" in err


@needs_chmod
@pytest.mark.parametrize("dry", [True, False])
def test_read_only_runs_folder_exits_2(sandbox, capsys, dry):
    runs = sandbox / "runs"
    runs.mkdir()
    runs.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(["run", *(["--dry-run"] if dry else []), *TINY]) == EXIT_INVALID
    finally:
        runs.chmod(0o755)
    err = capsys.readouterr().err
    assert "not writable" in err and "chmod" in err and list(runs.iterdir()) == []


def test_out_folders_that_cannot_be_written(sandbox, capsys, finished):
    _, run_dir = finished
    (sandbox / "afile").write_text("")
    assert main(["figures", str(run_dir), "--out", str(sandbox / "afile" / "figs")]) == EXIT_INVALID
    assert "--out" in capsys.readouterr().err
    assert main(["compare", str(run_dir), "--out", str(sandbox / "afile" / "cmp.md")]) == EXIT_INVALID
    assert "afile is a file" in capsys.readouterr().err
    assert main(["compare", str(run_dir), "--out", str(sandbox / "afile" / "cmp")]) == EXIT_INVALID
    assert "afile is a file" in capsys.readouterr().err
    assert sorted(p.name for p in sandbox.iterdir()) == ["afile"]


@needs_chmod
def test_out_into_a_read_only_folder(sandbox, capsys, finished):
    _, run_dir = finished
    ro = sandbox / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(["compare", str(run_dir), "--out", str(ro / "cmp.csv")]) == EXIT_INVALID
        assert main(["figures", str(run_dir), "--out", str(ro)]) == EXIT_INVALID
    finally:
        ro.chmod(0o755)
    assert "not writable" in capsys.readouterr().err and list(ro.iterdir()) == []


def test_an_unwritable_path_the_checks_missed_is_exit_2_not_a_traceback(capsys, monkeypatch, finished, tmp_path):
    import rankbench.cli.compare as compare

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.md"))

    monkeypatch.setattr(compare, "compare_markdown", denied)
    assert main(["compare", str(finished[1])]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "Permission denied" in err and "x.md" in err and "Traceback" not in err


# -- item 1: a read-only finished run is re-summarised, nothing written -------------------------
def _read_only(monkeypatch, folder: Path) -> None:
    """Report ``folder`` (and everything in it) as unwritable, as a chmod would for a user."""
    real = rankbench.rundir.write_problem

    def problem(path):
        p = Path(path).resolve()
        if p == folder.resolve() or folder.resolve() in p.parents:
            return f"{folder} is not writable"
        return real(path)

    monkeypatch.setattr(rankbench.rundir, "write_problem", problem)


def test_read_only_finished_run_is_resummarised_without_writing(finished, monkeypatch, capsys):
    root, run_dir = finished
    _read_only(monkeypatch, run_dir)
    before = _tree(root)
    argv = ["run", "--variant", "lsbn", "--calibrate", "--runs-root", str(root), *TINY]
    assert main([*argv, "--dry-run"]) == 0
    assert "its stored report would be shown" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "read-only: its stored report is shown" in out and "tau per subnet" in out and "BN calibration" in out
    assert _tree(root) == before
    # a report that does not exist yet cannot be written there: exit 2 with the fix
    assert main([*argv, "--protocol", "paper"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert str(run_dir) in err and "chmod -R u+w" in err
    assert _tree(root) == before


@needs_chmod
def test_read_only_finished_run_with_chmod(finished, capsys):
    root, run_dir = finished
    before = _tree(root)
    paths = [run_dir, *run_dir.rglob("*")]
    for p in paths:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        assert main(["run", "--variant", "lsbn", "--calibrate", "--runs-root", str(root), *TINY]) == 0
        assert main(["train", "--variant", "lsbn", "--runs-root", str(root), *TINY]) == 0  # reused: read only
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | 0o200)
    assert "stored report is shown" in capsys.readouterr().out
    assert _tree(root) == before


# -- item 4: SIGTERM exits 143; the hint names --resume, not the Python API ----------------------
@pytest.mark.parametrize("name, code", [("SIGTERM", EXIT_TERMINATED), ("SIGINT", EXIT_INTERRUPTED),
                                        (None, EXIT_INTERRUPTED)])
def test_interruption_exit_codes(sandbox, capsys, monkeypatch, name, code):
    import rankbench.pipeline
    import rankbench.train

    def interrupted(*a, **k):
        raise KeyboardInterrupt(*([name] if name else []))

    monkeypatch.setattr(rankbench.train, "train_supernet", interrupted)
    monkeypatch.setattr(rankbench.pipeline, "run", interrupted)
    assert main(["train", *TINY]) == code
    assert main(["run", *TINY]) == code
    err = capsys.readouterr().err
    assert "resume=True" not in err and "rerun the same command" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals a child process: Linux only")
def test_real_sigterm_exits_143_and_resume_hint_names_the_option(sandbox, capsys):
    argv = [sys.executable, "-m", "rankbench", "train", *TINY, "--epochs", "10000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list((sandbox / "runs").glob("*/train_log.csv")):  # training has begun
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start in 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_TERMINATED, err[-2000:]
    assert "--resume" in err and "resume=True" not in err and "Traceback" not in err
    # the same command without --resume: the hint names the option, exit 2, nothing trained
    assert main(argv[3:]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "interrupted training" in err and "--resume" in err and "resume=True" not in err
