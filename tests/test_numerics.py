"""The compute platform, portable mode and weights digests (rankbench.numerics).

Portable mode is about numbers that are equal across machines; what a test can check on one
machine is that it pins the dispatch: with it, a training at the machine's own vector level and
one forced to AVX2 give bit-identical weights, and without it they differ."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rankbench import numerics
from rankbench.config import apply_overrides, load_preset

TINY = ["--set", "model.width=4", "--set", "data.train_size=200", "--set", "data.valid_size=50",
        "--set", "data.test_size=20", "--set", "data.batch_size=50", "--set", "train.num_threads=1",
        "--set", "train.device=cpu", "--epochs", "1", "--no-progress"]


def _train(out: Path, env_extra: dict[str, str], *sets: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-m", "rankbench", "train", "--variant", "lsbn", "--out", str(out),
                        *TINY, *sets], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads((out / "train_done.json").read_text())


def test_platform_description_and_key():
    d = numerics.describe_platform("cpu")
    for k in numerics.NUMERIC_FIELDS:
        assert k in d
    assert d["key"] == numerics.platform_key(d)
    other = {**d, "threads": d["threads"] + 1}
    assert numerics.platform_key(other) != d["key"]
    assert numerics.platform_key({**d, "portable": not d["portable"]}) == d["key"]  # the levels count, not the flag


def test_check_same_platform_refuses_names_fields_and_allows(monkeypatch):
    here = numerics.describe_platform("cpu")
    assert numerics.check_same_platform("x", here, here) is None
    there = {**here, "aten_capability": "AVX512", "cpu_model": "Some Other CPU"}
    there["key"] = numerics.platform_key(there)
    with pytest.raises(numerics.PlatformMismatch, match="aten_capability.*cpu_model|cpu_model.*aten_capability"):
        numerics.check_same_platform("run X", there, here, allow=False)
    with pytest.raises(numerics.PlatformMismatch, match="before rankbench recorded"):
        numerics.check_same_platform("run X", None, here, allow=False)
    note = numerics.check_same_platform("run X", there, here, allow=True)
    assert "reused anyway" in note
    monkeypatch.setenv(numerics.ALLOW_ENV, "1")
    assert "reused anyway" in numerics.check_same_platform("run X", there, here)


def test_weights_digest_sees_every_bit():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    a = numerics.weights_digest(net)
    assert a == numerics.weights_digest({k: v.clone() for k, v in net.state_dict().items()})
    with torch.no_grad():
        w = net[0].weight
        w.view(-1)[0] = torch.nextafter(w.view(-1)[0], torch.tensor(10.0))  # one ulp
    assert numerics.weights_digest(net) != a
    net[1].num_batches_tracked += 1  # buffers count too
    assert len(numerics.weights_digest(net)) == 12


def test_portable_mode_refuses_after_kernels_ran_at_another_level():
    code = ("import torch; torch.ones(3) + 1; import rankbench.numerics as n\n"
            "try:\n    n.apply_portable()\nexcept n.PortableModeError as e:\n    print('ERR', e)\n"
            "else:\n    print('OK', torch.backends.cpu.get_cpu_capability())")
    env = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    here = r.stdout.strip()
    if numerics.cpu_info()["cpu_isa"] == "AVX512":
        assert here.startswith("ERR") and "new Python process" in here
    else:  # an AVX2 machine dispatches AVX2 anyway
        assert here.startswith(("OK", "ERR"))


@pytest.mark.skipif(numerics.cpu_info()["cpu_isa"] != "AVX512", reason="needs a CPU with two vector levels")
def test_portable_training_is_identical_at_two_dispatch_levels(tmp_path):
    """On an AVX-512 machine: portable mode gives the same weights whether the process starts at
    AVX-512 or AVX2; without it the two levels give different weights (what portable fixes)."""
    native = {"ATEN_CPU_CAPABILITY": "avx512"}
    forced = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    a = _train(tmp_path / "a", native, "--set", "train.portable=true")
    b = _train(tmp_path / "b", forced, "--set", "train.portable=true")
    assert a["weights_digest"] == b["weights_digest"]
    assert a["platform"]["aten_capability"] == b["platform"]["aten_capability"] == "AVX2"
    c = _train(tmp_path / "c", native, "--set", "train.portable=false")
    d = _train(tmp_path / "d", forced, "--set", "train.portable=false")
    assert c["platform"]["aten_capability"] == "AVX512" and d["platform"]["aten_capability"] == "AVX2"
    assert c["weights_digest"] != d["weights_digest"]
    assert c["platform"]["key"] != d["platform"]["key"]


def test_threads_and_portable_are_in_the_cpu_fingerprint_only():
    cfg = load_preset("quick")
    base = cfg.training_fingerprint("cpu")
    assert apply_overrides(cfg, {"train.num_threads": 2}).training_fingerprint("cpu") != base
    assert apply_overrides(cfg, {"train.portable": False}).training_fingerprint("cpu") != base
    assert apply_overrides(cfg, {"train.num_threads": 2}).training_fingerprint("cuda") == cfg.training_fingerprint("cuda")
    assert apply_overrides(cfg, {"data.order": "source"}).training_fingerprint("cpu") != base


def test_old_run_configs_keep_their_class_sorted_order():
    from rankbench.config import RunConfig

    d = load_preset("quick").to_dict()
    del d["data"]["order"]  # a config.json written before data.order
    assert RunConfig.from_dict(d).data.order == "source"
    partial = {"data": {"resolution": 16}}  # a preset: the default
    assert RunConfig.from_dict(partial).data.order == "mixed"


def test_cuda_platform_key_ignores_the_host_cpu():
    gpu = {"machine": "x86_64", "cpu_model": "A", "threads": 8, "aten_capability": "AVX512", "torch": "2.13",
           "device": "cuda (NVIDIA H200)", "cuda": "13.0", "cudnn": "91000"}
    other_host = {**gpu, "cpu_model": "B", "threads": 2, "aten_capability": "AVX2"}
    assert numerics.platform_key(gpu) == numerics.platform_key(other_host)
    assert numerics.platform_key(gpu) != numerics.platform_key({**gpu, "device": "cuda (NVIDIA H100)"})
