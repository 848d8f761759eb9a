"""Trainings and truth shards as submitit jobs (``--launcher local``), at a tiny size on CPU:

- an ablation whose runs are trained by 2 local jobs at once gives the weights and every
  metric of the sequential ablation with the same seeds; so does a truth measured in 2 shards;
- a job killed with SIGKILL mid-training is reported with its log and the missing run; the
  dry run then lists that one job (resuming), and rerunning trains only it, from its checkpoint,
  to the weights of an uninterrupted training;
- submitit's preemption signal stops the training at a step with a checkpoint, submitit
  requeues the job and it finishes from there;
- without submitit, --launcher exits 2 saying how to install it; the Slurm set-up maps the
  options (and a TOML [launcher] table) onto submitit's parameters.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset
from rankbench.launch import JobsFailedError, LauncherOptions, train_missing
from rankbench.ablation import ablation
from rankbench.pipeline import planned_run_dirs
from rankbench.spaces import create_space
from rankbench.truth import measure_truth

TINY = {
    "model.width": 4, "model.stacks": 1, "model.cells_per_stack": 1, "space.m": 2,
    "data.resolution": 16, "data.train_size": 100, "data.valid_size": 50, "data.test_size": 50,
    "data.batch_size": 50, "train.epochs": 1, "train.num_threads": 1, "train.device": "cpu",
    "score.calib_batches": 2, "score.calib_batch_size": 25, "score.eval_batch_size": 50,
    "truth.seeds": 1, "truth.train_epochs": 1,
}
#: long enough to be stopped mid-training: 8 epochs of 60 steps, a checkpoint at each epoch end
LONG = {**TINY, "data.train_size": 600, "data.batch_size": 10, "train.epochs": 8, "train.checkpoint_interval_s": 0}
#: keys of a report's metrics.json that say where and when, not what was measured
VOLATILE = {"timings", "created", "run_dir", "training_reused", "score_caches", "platform_notes"}

pytestmark = pytest.mark.usefixtures("one_thread")
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None or not sys.platform.startswith("linux"),
                                    reason="needs submitit (pip install -e '.[test]') and Linux (/proc, fork)")


def _sets(d: dict, truth: Path) -> list[str]:
    return [f"--set={k}={v}" for k, v in {**d, "truth.source": str(truth)}.items()]


def _cfg(truth: Path, d: dict = TINY):
    return apply_overrides(load_preset("quick"), {**d, "truth.source": str(truth)})


def _opts(**kw) -> LauncherOptions:
    return LauncherOptions("local", poll_s=0.05, **kw)


@pytest.fixture(scope="module")
def truth_csv(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("truth") / "truth-tiny.csv"
    measure_truth(create_space("s4", m=2), apply_overrides(load_preset("quick"), TINY), out, progress=False,
                  work_dir=tmp_path_factory.mktemp("truth-work"))
    return out


@pytest.fixture(scope="module")
def sequential(truth_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("sequential")
    table, out = ablation(_cfg(truth_csv), ["bn", "lsbn"], runs_root=root, progress=False, n_boot=50, echo=None)
    return root, table, out


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "supernet.pt", map_location="cpu", weights_only=True)


def _same_weights(a: Path, b: Path) -> bool:
    x, y = _weights(a), _weights(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _reports(root: Path) -> dict[str, dict]:
    """{run name/report name: metrics without where and when} of every report under ``root``."""
    out = {}
    for m in sorted(root.glob("*/reports/*/metrics.json")):
        d = json.loads(m.read_text())
        out[f"{m.parent.parent.parent.name}/{m.parent.name}"] = {k: v for k, v in d.items() if k not in VOLATILE}
    return out


@needs_submitit
def test_ablation_as_two_local_jobs_matches_sequential(truth_csv, sequential, tmp_path, capsys):
    seq_root, seq_table, seq_out = sequential
    dry = ["ablation", "--variants", "bn", "lsbn", "--preset", "quick", *_sets(TINY, truth_csv), "--runs-root",
           str(tmp_path), "--launcher", "local", "--jobs", "2", "--dry-run"]
    assert main(dry) == 0
    out = capsys.readouterr().out
    assert "jobs to submit: 2 of 2 trainings" in out and "job 2/2: train lsbn seed 2020 (new)" in out, out
    lines: list[str] = []
    table, out = ablation(_cfg(truth_csv), ["bn", "lsbn"], runs_root=tmp_path, progress=False, n_boot=50,
                          echo=lines.append, launcher=_opts(jobs=2))
    assert any("2 to run as jobs" in ln for ln in lines), lines
    assert sum(ln.startswith("job ") and " done: train " in ln for ln in lines) == 2, lines
    assert out.name == seq_out.name
    runs = sorted(p.parent.name for p in tmp_path.glob("*/supernet.pt"))
    assert runs == sorted(p.parent.name for p in seq_root.glob("*/supernet.pt")) and len(runs) == 2
    for name in runs:
        assert _same_weights(seq_root / name, tmp_path / name), name
    assert _reports(tmp_path) == _reports(seq_root)
    paths = [c for c in table.columns if c == "reports"]
    pd.testing.assert_frame_equal(table.drop(columns=paths), seq_table.drop(columns=paths))
    # every job left its logs with submitit
    assert len(list((tmp_path / "submitit").glob("*/*_log.out"))) == 2
    # a second ablation submits nothing: every run is finished
    lines.clear()
    ablation(_cfg(truth_csv), ["bn", "lsbn"], runs_root=tmp_path, progress=False, n_boot=50, echo=lines.append,
             launcher=_opts(jobs=2))
    assert any("2 finished (reused), 0 to run as jobs" in ln for ln in lines), lines
    assert main(dry) == 0
    assert "jobs to submit: 0 of 2 trainings" in capsys.readouterr().out


@needs_submitit
def test_truth_in_two_shard_jobs_matches_sequential(truth_csv, tmp_path, capsys):
    out = tmp_path / "truth.csv"
    args = ["truth", "--preset", "quick", *[f"--set={k}={v}" for k, v in TINY.items()], "--out", str(out),
            "--work-dir", str(tmp_path / "work"), "--no-progress", "--launcher", "local", "--jobs", "2"]
    assert main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "jobs to submit: 2 of 2 shards" in dry and "job 2/2: truth shard 1/2" in dry
    assert not out.exists()
    assert main(args) == 0, capsys.readouterr().err
    got, want = pd.read_csv(out, dtype={"hash": str}), pd.read_csv(truth_csv, dtype={"hash": str})
    pd.testing.assert_frame_equal(got.drop(columns="wall_s"), want.drop(columns="wall_s"))
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["finished"] and side["rows"] == len(want)
    assert {s.get("shard") for s in side["sessions"]} >= {"0/2", "1/2"}  # each shard's session, kept
    assert not (tmp_path / "truth-shards").exists()  # merged, then the shard CSVs are removed
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "jobs to submit: 0 of 2 shards" in capsys.readouterr().out


def _job_pids(folder: Path) -> list[int]:
    """The job processes submitit started with ``folder`` (its ``_submit`` command line)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in cmd and str(folder).encode() in b" ".join(cmd):
            pids.append(int(p.name))
    return pids


def _start_in_thread(fn) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th, box


def _signal_mid_training(run_dir: Path, folder: Path, sig: int, th: threading.Thread) -> None:
    """Once the run has a checkpoint (an epoch done, seven to go), send ``sig`` to its job."""
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists():
        assert th.is_alive(), "the launcher ended before the job checkpointed"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    assert not (run_dir / "train_done.json").exists(), "the training finished before it could be stopped"
    pids = _job_pids(folder)
    assert len(pids) == 1, pids
    os.kill(pids[0], sig)


@pytest.fixture(scope="module")
def long_reference(truth_csv, tmp_path_factory) -> Path:
    """The uninterrupted training of the LONG config, in this process."""
    from rankbench.train import train_supernet

    ((cfg, run_dir),) = planned_run_dirs(_cfg(truth_csv, LONG), 1, tmp_path_factory.mktemp("reference"))
    train_supernet(cfg, run_dir, progress=False)
    return run_dir


@needs_submitit
def test_killed_job_is_reported_and_a_rerun_resumes_it(truth_csv, long_reference, tmp_path, capsys):
    planned = planned_run_dirs(_cfg(truth_csv, LONG), 1, tmp_path)
    ((_, run_dir),) = planned
    folder = tmp_path / "submitit"
    th, box = _start_in_thread(lambda: train_missing(planned, _opts(jobs=1), runs_root=tmp_path, echo=None))
    _signal_mid_training(run_dir, folder, signal.SIGKILL, th)
    th.join(60)
    err = box.get("error")
    assert isinstance(err, JobsFailedError), box
    (failed,) = err.failed
    assert "ended without a result" in failed.error and failed.stderr.exists()
    assert str(run_dir) in str(err) and str(failed.stderr) in str(err) and "Rerun the same command" in str(err)

    cli = ["run", "--variant", "lsbn", "--preset", "quick", *_sets(LONG, truth_csv), "--runs-root", str(tmp_path),
           "--no-progress", "--launcher", "local"]
    assert main([*cli, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "jobs to submit: 1 of 1 trainings" in dry and "(resumes from its checkpoint)" in dry
    assert main(cli) == 0
    out = capsys.readouterr().out
    assert "1 to run as jobs (1 resume from a checkpoint)" in out
    logs = sorted(folder.glob("*/*_log.out"), key=lambda p: p.stat().st_mtime)
    assert len(logs) == 2 and "resuming from the checkpoint" in logs[-1].read_text()
    assert _same_weights(long_reference, run_dir)
    assert list((run_dir / "reports").iterdir())  # scored here, after the job


@needs_submitit
def test_preemption_signal_checkpoints_requeues_and_finishes(truth_csv, long_reference, tmp_path):
    planned = planned_run_dirs(_cfg(truth_csv, LONG), 1, tmp_path)
    ((_, run_dir),) = planned
    folder = tmp_path / "submitit"
    th, box = _start_in_thread(lambda: train_missing(planned, _opts(jobs=1), runs_root=tmp_path, echo=None))
    _signal_mid_training(run_dir, folder, signal.SIGUSR2, th)
    th.join(120)
    assert not th.is_alive() and "error" not in box, box
    ((result,),) = [box["result"]]
    assert result.ok
    log = result.stdout.read_text() + result.stderr.read_text()
    assert "preemption signal" in log and "Requeued" in log and "resuming from the checkpoint" in log, log
    assert _same_weights(long_reference, run_dir)


def test_launcher_without_submitit_exits_2_with_how_to_install(truth_csv, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    rc = main(["ablation", "--variants", "lsbn", "--preset", "quick", *_sets(TINY, truth_csv), "--launcher", "local",
               "--dry-run"])
    assert rc == 2
    assert "pip install 'rankbench[cluster]'" in capsys.readouterr().err


@needs_submitit
def test_launcher_options_and_slurm_setup(tmp_path, monkeypatch, capsys):
    from rankbench.launch.slurm import slurm_executor, slurm_parameters
    from rankbench.launch.submit import job_devices

    toml = tmp_path / "cluster.toml"
    toml.write_text('[launcher]\npartition = "gpu"\ntime = "4:00:00"\ngpus = 2\narray_parallelism = 8\n'
                    'setup = ["source .venv/bin/activate"]\naccount = "nas"\n')
    opts = LauncherOptions.build("slurm", toml, array_parallelism=16)  # the command line wins
    assert (opts.partition, opts.time_min, opts.gpus_per_job, opts.array_parallelism) == ("gpu", 240, 2, 16)
    p = slurm_parameters(opts)
    assert p["tasks_per_node"] == p["gpus_per_node"] == 2 and p["slurm_array_parallelism"] == 16
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # pretend srun exists
    script = slurm_executor(tmp_path / "%j", opts)._executor._make_submission_file_text("python -m x", "u")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=240", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --ntasks-per-node=2", "#SBATCH --account=nas", "#SBATCH --signal=USR2@120",
                 "source .venv/bin/activate"):
        assert line in script, line
    # the jobs must train on the device type the caller plans with (it names the run directories)
    cpu = apply_overrides(load_preset("quick"), {"train.device": "cpu"})
    with pytest.raises(ValueError, match="run directories would differ"):
        job_devices(cpu, opts)
    assert job_devices(cpu, LauncherOptions("local", devices=("cpu", "cpu"))) == ("cpu", "cpu")
    with pytest.raises(ValueError, match="device type"):
        job_devices(cpu, LauncherOptions("local", devices=("cuda:0",)))
    for bad in (["--launcher", "local", "--devices", "gpu0"], ["--jobs", "2"],
                ["--launcher", "local", "--launcher-config", str(tmp_path / "none.toml")]):
        assert main(["ablation", "--variants", "lsbn", *bad, "--dry-run"]) == 2, bad
    capsys.readouterr()
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text("[launcher]\npartitions = 'gpu'\n")
    assert main(["ablation", "--launcher", "slurm", "--launcher-config", str(bad_key), "--dry-run"]) == 2
    assert "partitions is not a launcher option" in capsys.readouterr().err
