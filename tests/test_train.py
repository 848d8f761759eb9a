"""Supernet training: determinism, exact resume, unused paths untouched, divergence, reuse, CLI.

Everything runs at a tiny size (width 4, one cell per stack, 16x16 images, 128 training
images, batch 32, 2 epochs) on one CPU thread. Loop-level tests use synthetic images;
``train_supernet`` and the CLI read the bundled CIFAR-10 sample (decode cache in a temp
RANKBENCH_HOME). Interruptions are simulated by raising KeyboardInterrupt from ``fit``'s
``on_epoch_end`` / ``on_step`` callbacks, or by sending this process SIGTERM.
"""
from __future__ import annotations

import json
import math
import os
import signal

import pytest
from conftest import synthetic_splits
import torch
from torch import nn

from rankbench.cli import main
from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import downsample, load_splits
from rankbench.spaces import Subnet
from rankbench.supernet import supernet_from_config
from rankbench.train import (CHECKPOINT, DONE, LOG_COLUMNS, TrainingDivergedError, fit, load_checkpoint,
                             load_supernet, make_optimizer, param_groups, read_log, train_step, train_supernet)

TINY = {
    "model.width": 4, "model.cells_per_stack": 1, "data.resolution": 16, "data.train_size": 128,
    "data.valid_size": 50, "data.test_size": 50, "data.batch_size": 32, "train.epochs": 2,
    "train.num_threads": 1, "train.device": "cpu",
}
TINY_SET = [f"{k}={v}" for k, v in TINY.items()]


@pytest.fixture(scope="module", autouse=True)
def _env(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster, and immune to a busy machine
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKBENCH_HOME", str(tmp_path_factory.mktemp("rankbench_home")))
        mp.delenv("RANKBENCH_RUNS", raising=False)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(128, 32, 32)


def tiny_cfg(**over):
    return apply_overrides(load_preset("quick"), {**TINY, **over})


def make_net(cfg):
    torch.manual_seed(cfg.train.seed)
    return supernet_from_config(cfg)


def run_fit(cfg, splits, run_dir, **kw):
    net = make_net(cfg)
    sampler = lambda rng: net.space.sample_arch(rng, net.num_cells, cfg.train.sampling == "per_cell")  # noqa: E731
    out = fit(net, sampler, splits, cfg, run_dir, progress=False, **kw)
    return net, out


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- data --------------------------------------------------------------------------------------


def test_downsample_is_rounded_block_mean():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    y = downsample(x, 16)
    assert y.dtype == torch.uint8 and y.shape == (5, 3, 16, 16)
    ref = x.double().reshape(5, 3, 16, 2, 16, 2).mean(dim=(3, 5))
    assert (y.double() - ref).abs().max() <= 0.5
    assert downsample(x, 32) is x
    with pytest.raises(ValueError, match="divide"):
        downsample(x, 12)


def test_load_splits_resolution():
    cfg = tiny_cfg()
    s = load_splits(cfg.data, progress=False)
    assert s.train.images.shape == (128, 3, 16, 16) and len(s.valid) == 50
    full = load_splits(apply_overrides(cfg, {"data.resolution": 32}).data, progress=False)
    assert torch.equal(s.train.labels, full.train.labels)
    assert torch.equal(s.train.images, downsample(full.train.images, 16))
    with pytest.raises(ValueError, match="resolution"):
        load_splits(apply_overrides(cfg, {"data.resolution": 24}).data, progress=False)


# -- optimizer and step -------------------------------------------------------------------------


def test_weight_decay_only_on_conv_and_linear_weights():
    cfg = tiny_cfg()
    net = make_net(cfg)
    decay, no_decay = param_groups(net, 3e-4)
    assert decay["weight_decay"] == 3e-4 and no_decay["weight_decay"] == 0.0
    decay_ids = {id(p) for p in decay["params"]}
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            assert id(mod.weight) not in decay_ids and id(mod.bias) not in decay_ids
        elif isinstance(mod, (nn.Conv2d, nn.Linear)):
            assert id(mod.weight) in decay_ids
            if mod.bias is not None:
                assert id(mod.bias) not in decay_ids
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(net.parameters()))
    opt = make_optimizer(net, cfg.train)
    assert [g["weight_decay"] for g in opt.param_groups] == [cfg.train.weight_decay, 0.0]
    assert all(g["nesterov"] is False and g["momentum"] == cfg.train.momentum for g in opt.param_groups)


def test_unused_path_weights_and_momentum_untouched():
    cfg = tiny_cfg()
    net = make_net(cfg)
    opt = make_optimizer(net, cfg.train)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    a = Subnet.from_code("3---")  # node 1 conv3x3: gets momentum buffers
    b = Subnet.from_code("-1m-")  # does not use node 1
    train_step(net, opt, x, y, a, grad_clip=5.0)
    used_a = {n for n, _ in net.used_parameters(a)}
    used_b = {n for n, _ in net.used_parameters(b)}
    only_a = used_a - used_b
    assert only_a
    params = dict(net.named_parameters())
    before_w = {n: params[n].detach().clone() for n in only_a}
    before_m = {n: opt.state[params[n]]["momentum_buffer"].clone() for n in only_a}
    before_b = {n: params[n].detach().clone() for n in used_b}
    train_step(net, opt, x, y, b, grad_clip=5.0)
    for n in only_a:
        assert params[n].grad is None, n
        assert torch.equal(params[n], before_w[n]), n
        assert torch.equal(opt.state[params[n]]["momentum_buffer"], before_m[n]), n
    # never-used paths get no optimizer state at all; used ones moved
    never = set(params) - used_a - used_b
    assert never and all(params[n] not in opt.state for n in never)
    assert any(not torch.equal(params[n], before_b[n]) for n in used_b)


def test_step_over_used_parameters_is_the_same_update():
    """train_step(used=...) zeroes, clips and steps only the subnet's weights: same result."""
    cfg = tiny_cfg(**{"model.variant": "spos"})
    nets = [make_net(cfg), make_net(cfg)]
    opts = [make_optimizer(n, cfg.train) for n in nets]
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    for code in ("3---", "-1m-", "3---", "33-1"):
        s = Subnet.from_code(code)
        train_step(nets[0], opts[0], x, y, s, grad_clip=0.5)
        used = [p for _, p in nets[1].used_parameters(s)]
        train_step(nets[1], opts[1], x, y, s, grad_clip=0.5, used=used)
        assert all(p.grad is None for p in nets[1].parameters())
    assert same_weights(*nets)
    for p0, p1 in zip(nets[0].parameters(), nets[1].parameters()):
        assert (p0 in opts[0].state) == (p1 in opts[1].state)
        if p0 in opts[0].state:
            assert torch.equal(opts[0].state[p0]["momentum_buffer"], opts[1].state[p1]["momentum_buffer"])
    assert [len(g["params"]) for g in opts[1].param_groups] == [len(g["params"]) for g in opts[0].param_groups]


# -- the loop ----------------------------------------------------------------------------------


def test_same_seed_same_weights(splits, tmp_path):
    cfg = tiny_cfg()
    a, out = run_fit(cfg, splits, tmp_path / "a")
    b, _ = run_fit(cfg, splits, tmp_path / "b")
    assert same_weights(a, b)
    c, _ = run_fit(tiny_cfg(**{"train.seed": 7}), splits, tmp_path / "c")
    assert not same_weights(a, c)
    rows = read_log(tmp_path / "a" / "train_log.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert tuple(rows[0]) == LOG_COLUMNS
    assert rows[0]["lr"] == pytest.approx(cfg.train.lr) and rows[1]["lr"] == pytest.approx(cfg.train.lr / 2)
    assert out["epochs"] == 2 and math.isfinite(out["train_loss"])
    saved = torch.load(tmp_path / "a" / "supernet.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in a.state_dict().items())


def test_standalone_network(splits, tmp_path):
    """The same loop trains a plain network: a wrapper that ignores arch, a sampler giving None."""

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

        def forward(self, x, arch):
            assert arch is None
            return self.net(x)

    torch.manual_seed(0)
    model = Plain()
    out = fit(model, lambda rng: None, splits, tiny_cfg(), tmp_path, progress=False, weights_name="net.pt")
    assert (tmp_path / "net.pt").exists() and out["weights"] == "net.pt"


def test_final_weights_are_a_hook_the_caller_passes(splits, tmp_path):
    """fit saves the final weights and train_done.json only through the FinalWeights hook: the
    standard hooks include it (with weights_name); hooks without it save neither; a name that
    disagrees with the hook's is refused. A fingerprint given is the one recorded."""
    from rankbench.train import FinalWeights, standard_hooks

    cfg = tiny_cfg(**{"train.epochs": 1})
    net = make_net(cfg)
    sampler = lambda rng: net.space.sample_arch(rng, net.num_cells)  # noqa: E731
    bare = [h for h in standard_hooks(cfg, tmp_path / "bare", progress=False) if not isinstance(h, FinalWeights)]
    out = fit(net, sampler, splits, cfg, tmp_path / "bare", progress=False, hooks=bare)
    assert not (tmp_path / "bare" / "supernet.pt").exists() and not (tmp_path / "bare" / DONE).exists()
    assert out["weights_digest"] and out["fingerprint"] == cfg.training_fingerprint()
    with pytest.raises(ValueError, match="pass one name"):
        fit(make_net(cfg), sampler, splits, cfg, tmp_path / "clash", progress=False, weights_name="a.pt",
            hooks=[FinalWeights("b.pt")])
    named = make_net(cfg)
    out = fit(named, sampler, splits, cfg, tmp_path / "named", progress=False, fingerprint="plan0fp",
              hooks=standard_hooks(cfg, tmp_path / "named", progress=False, weights_name="w.pt"))
    done = json.loads((tmp_path / "named" / DONE).read_text())
    assert done["weights"] == out["weights"] == "w.pt" and done["fingerprint"] == "plan0fp"
    saved = torch.load(tmp_path / "named" / "w.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in named.state_dict().items())
    # the finished run is found by the hook's name, and its fingerprint is checked
    again = fit(make_net(cfg), sampler, splits, cfg, tmp_path / "named", resume=True, progress=False,
                fingerprint="plan0fp", hooks=[FinalWeights("w.pt")])
    assert again["reused"] is True
    with pytest.raises(ValueError, match="another config"):
        fit(make_net(cfg), sampler, splits, cfg, tmp_path / "named", resume=True, progress=False,
            hooks=[FinalWeights("w.pt")])


def _interrupt_after_epoch(k):
    def cb(epochs_done, row):
        if epochs_done == k:
            raise KeyboardInterrupt

    return cb


def test_resume_after_epoch_is_exact(splits, tmp_path):
    cfg = tiny_cfg()
    ref, _ = run_fit(cfg, splits, tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        run_fit(cfg, splits, tmp_path / "cut", on_epoch_end=_interrupt_after_epoch(1))
    state = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert state["position"]["epoch"] == 1 and state["position"]["step"] == 0
    assert not (tmp_path / "cut" / DONE).exists()
    with pytest.raises(ValueError, match="resume"):
        run_fit(cfg, splits, tmp_path / "cut")  # an interrupted run needs resume=True
    resumed, _ = run_fit(cfg, splits, tmp_path / "cut", resume=True)
    assert same_weights(ref, resumed)
    a, b = read_log(tmp_path / "ref" / "train_log.csv"), read_log(tmp_path / "cut" / "train_log.csv")
    assert [(r["lr"], r["train_loss"], r["train_acc"]) for r in a] == [(r["lr"], r["train_loss"], r["train_acc"])
                                                                        for r in b]


def test_resume_mid_epoch_is_exact(splits, tmp_path):
    cfg = tiny_cfg()
    ref, _ = run_fit(cfg, splits, tmp_path / "ref")

    def stop(epoch, step):
        if (epoch, step) == (1, 2):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(cfg, splits, tmp_path / "cut", on_step=stop)
    pos = load_checkpoint(tmp_path / "cut" / CHECKPOINT)["position"]
    assert (pos["epoch"], pos["step"]) == (1, 2)
    resumed, _ = run_fit(cfg, splits, tmp_path / "cut", resume=True)
    assert same_weights(ref, resumed)
    a, b = read_log(tmp_path / "ref" / "train_log.csv"), read_log(tmp_path / "cut" / "train_log.csv")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_sigterm_saves_checkpoint(splits, tmp_path):
    cfg = tiny_cfg()

    def term(epoch, step):
        if (epoch, step) == (0, 3):
            os.kill(os.getpid(), signal.SIGTERM)

    old = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_fit(cfg, splits, tmp_path, on_step=term)
    assert signal.getsignal(signal.SIGTERM) is old  # handler restored
    pos = load_checkpoint(tmp_path / CHECKPOINT)["position"]
    assert (pos["epoch"], pos["step"]) == (0, 3)


class _Poisoned(nn.Module):
    """Returns NaN logits once ``poison`` is set."""

    def __init__(self, net):
        super().__init__()
        self.net, self.poison = net, False

    def forward(self, x, arch):
        out = self.net(x, arch)
        return out * float("nan") if self.poison else out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(splits, tmp_path):
    cfg = tiny_cfg(**{"train.epochs": 3})
    net = make_net(cfg)
    model = _Poisoned(net)

    def after(epochs_done, row):
        if epochs_done == 1:
            model.poison = True

    sampler = lambda rng: net.space.sample_arch(rng, net.num_cells)  # noqa: E731
    with pytest.raises(TrainingDivergedError, match="(?s)epoch 2/3, step 1/.*last good checkpoint.*learning rate") as e:
        fit(model, sampler, splits, cfg, tmp_path, progress=False, on_epoch_end=after)
    assert (e.value.epoch, e.value.step) == (2, 1)
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["position"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / DONE).exists() and not (tmp_path / "supernet.pt").exists()


def test_huge_lr_diverges_with_a_clear_error(splits, tmp_path):
    cfg = tiny_cfg(**{"train.lr": 1e6, "train.epochs": 4})
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate"):
        run_fit(cfg, splits, tmp_path)
    if (tmp_path / CHECKPOINT).exists():
        state = load_checkpoint(tmp_path / CHECKPOINT)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# -- runs and the CLI ---------------------------------------------------------------------------


def test_train_supernet_reuses_finished_run(tmp_path):
    cfg = tiny_cfg(**{"train.epochs": 1})
    d = train_supernet(cfg, runs_root=tmp_path, progress=False)
    assert d.parent == tmp_path and (d / "supernet.pt").exists()
    versions = json.loads((d / "versions.json").read_text())
    assert versions["device"].startswith("cpu")
    from rankbench._io import source_fingerprint  # the code that trained it, beyond the version string

    assert versions["rankbench_source"] == source_fingerprint() and len(versions["rankbench_source"]) == 12
    mtime = (d / "supernet.pt").stat().st_mtime_ns
    assert train_supernet(cfg, runs_root=tmp_path, progress=False) == d
    assert (d / "supernet.pt").stat().st_mtime_ns == mtime
    # fit on a finished directory: a no-op with resume=True, refused without
    net = make_net(cfg)
    out = fit(net, lambda rng: None, None, cfg, d, resume=True, progress=False)
    assert out["reused"] is True
    with pytest.raises(ValueError, match="finished"):
        fit(net, lambda rng: None, None, cfg, d, progress=False)
    loaded, lcfg = load_supernet(d)
    assert lcfg.training_fingerprint() == cfg.training_fingerprint()
    assert same_weights(loaded, net) and not loaded.training


def test_cli_train_and_reuse(tmp_path, capsys):
    argv = ["train", "--variant", "bn", "--preset", "quick", "--epochs", "1", "--out", str(tmp_path / "run"),
            "--no-progress"] + [x for s in TINY_SET if not s.startswith("train.epochs") for x in ("--set", s)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"run directory: {tmp_path / 'run'}" in out and "final train loss" in out
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"]["variant"] == "bn" and cfg["train"]["epochs"] == 1 and cfg["model"]["width"] == 4
    assert main(argv) == 0
    assert "reused" in capsys.readouterr().out
    assert main(["train", "--out", str(tmp_path / "bad"), "--set", "train.lr=oops", "--no-progress"]) == 2
    assert "train.lr must be a number" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["list", "variants"]) == 0
    out = capsys.readouterr().out
    assert all(v in out for v in ("bn", "lsbn", "esbn", "scale", "spos"))
    assert main(["list", "spaces"]) == 0 and "s4" in capsys.readouterr().out
    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out
    assert "quick" in out and "paper" in out


# -- configuration: what enters the training fingerprint -----------------------------------------


def test_training_fingerprint_holds_only_what_takes_effect():
    cfg = tiny_cfg()
    fp = cfg.training_fingerprint("cpu")
    assert cfg.training_fingerprint() == fp  # train.device = "cpu"
    # no effect on a CPU training: amp (bf16 autocast is CUDA only), and what never changes weights
    for key, value in {"train.amp": not cfg.train.amp, "train.checkpoint_interval_s": 1.5,
                       "train.tensorboard": True, "train.checkpoint_every": 3,
                       "train.device": "auto"}.items():
        assert tiny_cfg(**{key: value}).training_fingerprint("cpu") == fp, key
    # threads (the order of CPU reductions) and portable dispatch change CPU weights (measured)
    for key, value in {"train.compile": True, "train.channels_last": False, "train.lr": 0.1,
                       "train.sampling": "per_cell", "model.width": 8, "train.num_threads": 2,
                       "train.portable": not cfg.train.portable, "data.order": "source"}.items():
        assert tiny_cfg(**{key: value}).training_fingerprint("cpu") != fp, key
    # on CUDA amp takes effect
    assert tiny_cfg(**{"train.amp": False}).training_fingerprint("cuda") != cfg.training_fingerprint("cuda")
    assert tiny_cfg(**{"train.tensorboard": True}).training_fingerprint("cuda") == cfg.training_fingerprint("cuda")
    # ... and on CUDA threads and portable do not
    for key, value in {"train.num_threads": 2, "train.portable": not cfg.train.portable}.items():
        assert tiny_cfg(**{key: value}).training_fingerprint("cuda") == cfg.training_fingerprint("cuda"), key


def test_config_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rankbench.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


# -- checkpoints on a time interval (a real SIGKILL: tests/test_kill.py) ---------------------------


def test_checkpoint_interval_checkpoints_within_epochs(splits, tmp_path):
    seen = {}

    def look(name):
        def cb(epoch, step):
            if (epoch, step) == (1, 2):
                pos = load_checkpoint(tmp_path / name / CHECKPOINT)["position"]
                seen[name] = (pos["epoch"], pos["step"])

        return cb

    ref, _ = run_fit(tiny_cfg(**{"train.checkpoint_interval_s": 0}), splits, tmp_path / "epochs",
                     on_step=look("epochs"))
    often, _ = run_fit(tiny_cfg(**{"train.checkpoint_interval_s": 1e-6}), splits, tmp_path / "often",
                       on_step=look("often"))
    assert seen == {"epochs": (1, 0), "often": (1, 2)}
    assert same_weights(ref, often)


# -- TensorBoard ----------------------------------------------------------------------------------


class _Groups:
    """The space contract the TensorBoard hook reads: ``describe(arch)[group_column]``."""

    group_column = "num_paths"

    def describe(self, arch):
        return {"num_paths": arch.num_paths}


def test_tensorboard_events(splits, tmp_path):
    pytest.importorskip("tensorboard")
    import random
    from collections import Counter

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rankbench.train import log_ranking_metrics

    cfg = tiny_cfg(**{"train.tensorboard": True})

    def stop(epoch, step):
        if (epoch, step) == (1, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(cfg, splits, tmp_path, on_step=stop, space=_Groups())
    _, out = run_fit(cfg, splits, tmp_path, resume=True, space=_Groups())
    tags = log_ranking_metrics(tmp_path, {"calib": {"kendall_tau": 0.5, "per_subnet": [1, 2], "n": 3},
                                          "note": "text", "ok": True})
    assert tags == ["ranking/calib/kendall_tau", "ranking/calib/n"]

    ea = EventAccumulator(str(tmp_path / "tensorboard"))
    ea.Reload()
    spe = out["steps_per_epoch"]
    for tag in ("step/loss", "step/acc", "step/lr"):  # every step once, across the interruption
        assert [e.step for e in ea.Scalars(tag)] == list(range(1, 2 * spe + 1)), tag
    rows = read_log(tmp_path / "train_log.csv")
    for tag, col in (("epoch/loss", "train_loss"), ("epoch/acc", "train_acc"), ("epoch/lr", "lr")):
        events = ea.Scalars(tag)
        assert [e.step for e in events] == [spe, 2 * spe]
        assert [e.value for e in events] == pytest.approx([r[col] for r in rows], rel=1e-5), tag
    # epoch 1's sampled archs by number of paths: replay the sampler (one arch per step)
    net = make_net(cfg)
    rng = random.Random(cfg.train.seed)
    expected = Counter(net.space.sample_arch(rng, net.num_cells).num_paths for _ in range(spe))
    counts = {int(t.split("=")[1]): {e.step: int(e.value) for e in ea.Scalars(t)} for t in ea.Tags()["scalars"]
              if t.startswith("sampled/num_paths=")}
    assert {k: c[spe] for k, c in counts.items() if spe in c} == dict(expected)
    assert sum(c.get(2 * spe, 0) for c in counts.values()) == spe - 1  # the resumed epoch: since the resume
    (ranking,) = ea.Scalars("ranking/calib/kendall_tau")
    assert ranking.value == 0.5 and ranking.step == 2 * spe


def test_tensorboard_missing_fails_before_training(splits, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    cfg = tiny_cfg(**{"train.tensorboard": True})
    with pytest.raises(ValueError, match=r'pip install "rankbench\[tb\]"'):
        run_fit(cfg, splits, tmp_path / "fit")
    assert not (tmp_path / "fit" / CHECKPOINT).exists() and not (tmp_path / "fit" / "train_log.csv").exists()
    with pytest.raises(ValueError, match=r'pip install "rankbench\[tb\]"'):
        train_supernet(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_sparse_loss_syncs_checkpoint_and_resume_exactly(splits, tmp_path):
    """As on CUDA, losses reach the host every few steps: an interrupt or a timed checkpoint
    between two syncs syncs first, and the resumed run still ends exactly as the reference."""
    from rankbench.train import Hook, standard_hooks

    class SyncEvery3(Hook):
        def on_start(self, loop):
            loop.check_every = 3

    cfg = tiny_cfg()
    ref, _ = run_fit(cfg, splits, tmp_path / "ref")

    def stop(epoch, step):
        if (epoch, step) == (1, 2):  # two steps of epoch 2 not synced yet
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cut = tiny_cfg(**{"train.checkpoint_interval_s": 0})
        run_fit(cut, splits, tmp_path / "cut",
                hooks=standard_hooks(cut, tmp_path / "cut", progress=False, extra=[SyncEvery3()], on_step=stop))
    pos = load_checkpoint(tmp_path / "cut" / CHECKPOINT)["position"]
    assert (pos["epoch"], pos["step"], pos["seen"]) == (1, 2, 2 * cfg.data.batch_size)
    again = tiny_cfg(**{"train.checkpoint_interval_s": 1e-6})
    resumed, _ = run_fit(again, splits, tmp_path / "cut", resume=True,
                         hooks=standard_hooks(again, tmp_path / "cut", progress=False, extra=[SyncEvery3()]))
    assert same_weights(ref, resumed)
    a, b = read_log(tmp_path / "ref" / "train_log.csv"), read_log(tmp_path / "cut" / "train_log.csv")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_fairnas_resume_mid_group_is_exact(splits, tmp_path):
    """A sampler that keeps state (FairNAS's position in its group of steps) is checkpointed
    with the training: a run interrupted mid-group resumes to the same weights."""
    from rankbench.training.samplers import make_sampler

    cfg = tiny_cfg()

    def fit_fair(run_dir, **kw):
        net = make_net(cfg)
        sampler = make_sampler("fairnas", net.space, net.num_cells)
        return net, fit(net, sampler, splits, cfg, run_dir, progress=False, **kw)

    ref, _ = fit_fair(tmp_path / "ref")

    def stop(epoch, step):
        if (epoch, step) == (0, 2):  # groups are 4 steps on m=4: step 2 is mid-group
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_fair(tmp_path / "cut", on_step=stop)
    state = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert state["sampler_state"]["pos"] not in (0, None)
    resumed, _ = fit_fair(tmp_path / "cut", resume=True)
    assert same_weights(ref, resumed)
