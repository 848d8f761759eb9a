"""Data-parallel training and scoring: 2 gloo ranks on the CPU, end to end at a tiny size.

One launch of two ranks (processes forked from a forkserver that has imported rankbench
once, so a launch costs no interpreter start-up) sets the torchrun environment variables and
runs, in order:

1. ``rankbench train`` (the CLI, so ``init_from_env``) for 2 epochs;
2. the same training through ``fit``, stopped by a SIGTERM that only rank 1 receives (the
   ranks must agree to stop after the same step; rank 0 writes one checkpoint), then
   ``rankbench train --resume``;
3. one DDP step on each of two subnets: weights and momentum of the paths only the first
   uses must not move in the second (DDP leaves their grad None); and the used-only
   all-reduce (wrap_ddp's hook) gives bit for bit the update of DDP's full all-reduce;
4. ``rankbench run --calibrate`` reusing the finished training of 1: scoring sharded over
   the ranks, gathered by rank 0 into the report's scores.csv.

The test then checks the files and compares with single-process results in this process:
the resumed training ends with the same weights as the uninterrupted one, and the
distributed scores equal single-process scores of the same weights. The real ``torchrun``
launcher is exercised by the slow test at the end.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from rankbench.config import apply_overrides, load_preset

TINY = {
    "model.width": 4, "model.cells_per_stack": 1, "space.m": 2, "data.resolution": 16, "data.train_size": 300,
    "data.valid_size": 100, "data.test_size": 100, "data.batch_size": 32, "train.epochs": 2,
    "train.num_threads": 1, "train.device": "cpu", "score.calib_batches": 2, "score.calib_batch_size": 32,
    "score.eval_batch_size": 50,
}
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
WORLD = 2
TIMEOUT_S = 240


def tiny_cfg():
    return apply_overrides(load_preset("quick"), TINY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what each rank runs ----------------------------------------------------------------------
def _as_rank(rank: int, port: int, home: str) -> None:
    """The environment torchrun gives a worker."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD),
                       "LOCAL_WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANKBENCH_HOME": home, "RANKBENCH_RUNS": str(Path(home) / "runs"),
                       "OMP_NUM_THREADS": "1"})
    os.environ.pop("RANKBENCH_DATA", None)
    torch.set_num_threads(1)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def _worker(rank: int, port: int, home: str, root: str, truth: str) -> None:
    from rankbench import distributed, rundir
    from rankbench.cli import main
    from rankbench.data.splits import load_splits
    from rankbench.supernet import supernet_from_config
    from rankbench.train import fit, make_optimizer, train_step

    _as_rank(rank, port, home)
    root_p = Path(root)
    cfg = tiny_cfg()

    # 1. the CLI: joins the group, trains with DDP, rank 0 writes
    _check(main(["train", "--runs-root", str(root_p / "runs"), "--no-progress"] + SETS) == 0, "train failed")
    _check(distributed.is_distributed() and distributed.world_size() == WORLD, "no process group")

    # 2. a SIGTERM to rank 1 only: both ranks stop after the same step, one checkpoint; resume
    cut = root_p / "cut"
    torch.manual_seed(cfg.train.seed)
    net = supernet_from_config(cfg)
    with distributed.main_first():
        splits = load_splits(cfg.data, progress=False)
        if distributed.is_main():
            rundir.init_run_dir(cut, cfg)

    def term(epoch: int, step: int) -> None:
        if (epoch, step) == (0, 3) and rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = False
    try:
        fit(net, lambda rng: net.space.sample_arch(rng, net.num_cells), splits, cfg, cut, progress=False,
            on_step=term)
    except KeyboardInterrupt:
        stopped = True
    _check(stopped, f"rank {rank} did not stop")
    distributed.barrier()
    _check(main(["train", "--out", str(cut), "--resume", "--no-progress"] + SETS) == 0, "resume failed")

    # 3. DDP leaves the weights and momentum of paths the step's subnet does not use alone
    from rankbench.spaces import Subnet

    torch.manual_seed(0)
    net = supernet_from_config(cfg)
    opt = make_optimizer(net, cfg.train)
    ddp = distributed.wrap_ddp(net)
    g = torch.Generator().manual_seed(rank)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    a, b = Subnet.from_code("3-"), Subnet.from_code("-1")
    train_step(ddp, opt, x, y, a, grad_clip=5.0)
    params = dict(net.named_parameters())
    only_a = {n for n, _ in net.used_parameters(a)} - {n for n, _ in net.used_parameters(b)}
    _check(bool(only_a), "no path only subnet a uses")
    before = {n: (params[n].detach().clone(), opt.state[params[n]]["momentum_buffer"].clone()) for n in only_a}
    train_step(ddp, opt, x, y, b, grad_clip=5.0)
    for n in only_a:
        _check(params[n].grad is None, f"{n}: DDP gave an unused parameter a gradient")
        _check(torch.equal(params[n], before[n][0]), f"{n}: an unused weight moved")
        _check(torch.equal(opt.state[params[n]]["momentum_buffer"], before[n][1]), f"{n}: momentum moved")
    same = distributed.all_gather_objects({k: v.clone() for k, v in net.state_dict().items()
                                           if k.endswith("weight")})
    _check(all(torch.equal(same[0][k], same[1][k]) for k in same[0]), "ranks hold different weights")

    # 3b. all-reducing only the used gradients (wrap_ddp's hook) == DDP's all-reduce of all
    nets, opts, ddps = [], [], []
    for used_only in (False, True):
        torch.manual_seed(0)
        nets.append(supernet_from_config(cfg))
        opts.append(make_optimizer(nets[-1], cfg.train))
        ddps.append(distributed.wrap_ddp(nets[-1], used_only=used_only))
    for sub in (a, b, a, Subnet.from_code("31")):
        for n_, o_, d_ in zip(nets, opts, ddps):
            train_step(d_, o_, x, y, sub, grad_clip=5.0, used=[p for _, p in n_.used_parameters(sub)])
    p0, p1 = dict(nets[0].named_parameters()), dict(nets[1].named_parameters())
    _check(all(torch.equal(p0[k], p1[k]) for k in p0), "the used-only all-reduce changed the update")
    reducer = distributed.grad_reducer(ddps[1])
    _check(distributed.grad_reducer(ddps[0]) is None and reducer is not None, "reducer not installed")
    _check(0 < reducer.sent < reducer.total, f"sent {reducer.sent} of {reducer.total} gradient elements")

    # 4. the ranking pipeline: reuses run 1, shards the scoring, rank 0 writes scores.csv
    _check(main(["run", "--calibrate", "--runs-root", str(root_p / "runs"), "--no-progress", "--set",
                 f"truth.source={truth}"] + SETS) == 0, "run failed")


def _launch(fn, *args) -> None:
    """Run ``fn(rank, *args)`` on WORLD ranks; fail on any rank's error or after TIMEOUT_S."""
    import torch.multiprocessing as tmp

    ctx = tmp.start_processes(fn, args=args, nprocs=WORLD, join=False, start_method="forkserver")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"distributed workers still running after {TIMEOUT_S} s (a deadlock?)")


def _fake_truth(path: Path) -> Path:
    """A made-up measured truth for S4's 9 hash classes with m = 2 (the scores are compared,
    not the ranking)."""
    from rankbench.spaces import create_space

    classes = list(dict.fromkeys(s.hash for s in create_space("s4", m=2).candidates()))
    pd.DataFrame({"hash": classes, "validation_accuracy": [0.5 + 0.01 * i for i in range(len(classes))]}
                 ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One launch of the worker; (data home, root of the run directories it leaves)."""
    # the forkserver imports these once; each rank is a fork of it (no interpreter start-up)
    multiprocessing.set_forkserver_preload(["torch._dynamo", "torch.optim", "rankbench.cli", "rankbench.train",
                                            "rankbench.pipeline", "rankbench.scoring", "rankbench.metrics",
                                            "rankbench.truth", "rankbench.supernet", "rankbench.data.splits",
                                            "pandas", "tqdm.auto"])
    home = os.environ.get("RANKBENCH_HOME") or str(tmp_path_factory.mktemp("dist-home"))  # shares decode caches
    root = tmp_path_factory.mktemp("dist-runs")
    truth = _fake_truth(root / "truth.csv")
    _launch(_worker, _free_port(), home, str(root), str(truth))
    return home, root


# -- checks in this process -------------------------------------------------------------------
def _run_dir(root: Path) -> Path:
    from rankbench import rundir

    return rundir.run_dir_for(tiny_cfg(), root / "runs")


def test_training_writes_one_run(launched):
    from rankbench.train import read_log

    _, root = launched
    d = _run_dir(root)
    done = json.loads((d / "train_done.json").read_text())
    assert done["epochs"] == 2 and done["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch": 32}
    assert done["steps_per_epoch"] == 10  # 300 images in global batches of 32: the single-process count
    assert sorted(p.name for p in (d / "checkpoints").iterdir()) == ["last.pt"]
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert [r["epoch"] for r in read_log(d / "train_log.csv")] == [1, 2]
    assert "2 ranks (gloo)" in json.loads((d / "versions.json").read_text())["device"]


def test_resume_after_signal_matches_uninterrupted(launched):
    from rankbench.train import read_log

    _, root = launched
    ref = torch.load(_run_dir(root) / "supernet.pt", weights_only=True)
    got = torch.load(root / "cut" / "supernet.pt", weights_only=True)
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    a, b = read_log(_run_dir(root) / "train_log.csv"), read_log(root / "cut" / "train_log.csv")
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-9)


def test_sharded_scores_equal_single_process(launched, one_thread, monkeypatch):
    from rankbench.data.splits import load_splits
    from rankbench.pipeline import SCORE_COLUMNS
    from rankbench.scoring import get_protocol, score_candidates
    from rankbench.spaces import create_space
    from rankbench.train import load_supernet

    home, root = launched
    monkeypatch.setenv("RANKBENCH_HOME", str(home))  # the decode cache the workers wrote
    d = _run_dir(root)
    (report,) = (d / "reports").iterdir()  # the pipeline's one report (clean, calibrated)
    got = pd.read_csv(report / "scores.csv", dtype={"name": str})
    assert set(SCORE_COLUMNS) <= set(got.columns) and len(got) == 15  # every subnet of S4 with m = 2
    net, cfg = load_supernet(d)
    proto = get_protocol(cfg.score.protocol)
    cfg = proto.apply(cfg)
    candidates = proto.candidates(create_space("s4", m=2), cfg.score)
    splits = load_splits(cfg.data, progress=False)
    for calib, col in ((False, "no_calib"), (True, "calib")):
        ref = score_candidates(net, candidates, splits, cfg.score, calibrate=calib, protocol=proto,
                               data_cfg=cfg.data, progress=False)
        assert got["name"].tolist() == ref["name"].tolist()
        assert got[f"acc_{col}"].tolist() == ref["accuracy"].tolist()
        assert got[f"loss_{col}"].tolist() == pytest.approx(ref["loss"].tolist(), rel=1e-12, abs=0)
    caches = sorted((d / "scores").glob("*.csv"))
    assert len(caches) == 2 and all(len(pd.read_csv(c)) == 15 for c in caches)


def test_single_process_helpers_are_no_ops():
    from rankbench import distributed

    assert not distributed.is_distributed() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.is_main() and distributed.all_gather_objects(3) == [3]
    assert distributed.broadcast_object("x") == "x"
    distributed.barrier()
    assert distributed.gather_sharded([1, 2, 3], lambda xs: {x: x * x for x in xs}) == {1: 1, 2: 4, 3: 9}
    assert [distributed.shard_bounds(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]


def test_sharded_loader_splits_the_single_process_batches():
    from rankbench.data import BatchLoader
    from rankbench.distributed import ShardedBatchLoader

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (70, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (70,), generator=g)

    def loader():
        return BatchLoader(images, labels, 32, shuffle=True, augment=True, crop_padding=2, cutout=4, seed=5)

    full = loader()
    full.set_epoch(1)
    whole = list(full.batches())
    for world in (2, 3, 7):
        shards = [ShardedBatchLoader(loader(), r, world) for r in range(world)]
        for s in shards:
            s.set_epoch(1)
        # 70 = 32 + 32 + 6: a last batch smaller than the number of ranks is skipped
        assert all(len(s) == (3 if world < 7 else 2) for s in shards)
        parts = [list(s.batches(1)) for s in shards]
        for i, (x, y) in enumerate(whole[1:len(shards[0])]):
            assert torch.equal(torch.cat([p[i][0] for p in parts]), x)
            assert torch.equal(torch.cat([p[i][1] for p in parts]), y)
            assert sum(p[i][2] for p in parts) == pytest.approx(world)  # loss weights: W * b_r / b


@pytest.mark.slow
def test_torchrun_cli(tmp_path):
    """The real launcher: ``python -m torch.distributed.run --nproc_per_node 2 -m rankbench train``."""
    env = {**os.environ, "RANKBENCH_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "rankbench", "train", "--out", str(tmp_path / "run"), "--no-progress"] + SETS
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run directory:") == 1 and "2 ranks (gloo)" in proc.stdout  # rank 0 prints
    done = json.loads((tmp_path / "run" / "train_done.json").read_text())
    assert done["distributed"]["world_size"] == 2
