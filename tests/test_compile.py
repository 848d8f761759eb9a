"""Compiled supernet training (rankbench.supernet.compile): the compiled blocks give eager's
numbers, and the number of compilations does not grow with the number of distinct archs.

Most tests compile with the ``aot_eager`` backend: dynamo capture and AOT autograd as with
inductor (the same graphs, guards and recompiles), without inductor's C++ code generation,
which takes minutes on a busy 2-core machine; one test runs inductor (slow). Tolerances:
``aot_eager`` runs the same aten ops as eager, so losses agree to float32 rounding (rel
1e-5); inductor fuses and reorders float32 sums (rel 1e-3 over a few steps); under bf16
autocast both paths cast at the same ops (rel 1e-2).
"""
import contextlib
import copy
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rankbench.spaces import create_space, list_spaces
from rankbench.supernet import create_supernet, list_variants
from rankbench.supernet.compile import (compilable_blocks, compile_supernet, graph_count, is_compiled,
                                        uncompile_supernet)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALLEST = dict(width=4, stacks=1, cells_per_stack=1)
TWO_STACKS = dict(width=4, stacks=2, cells_per_stack=1)
SPACE_VARIANTS = [(s, v) for s in list_spaces() for v in list_variants(s)]


@pytest.fixture
def fresh_dynamo():
    """Empty dynamo caches, so that a test's blocks compile afresh (its graph count, a
    difference of counters, is then its own). The other tests share the caches: blocks of
    one kind compile once for all of them."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _pair(space, variant: str, size: dict = SMALLEST):
    """Two copies of one supernet with the same initial weights; the caller compiles one."""
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(create_supernet(space, variant, **size))
    return nets


def _archs(space, n: int, seed: int) -> list:
    """``n`` distinct archs drawn from the space's training distribution."""
    rng, out = random.Random(seed), {}
    for _ in range(100 * n):
        a = space.sample(rng)
        out.setdefault(a.name, a)
        if len(out) == n:
            return list(out.values())
    raise AssertionError(f"{space.name}: fewer than {n} distinct archs in {100 * n} draws")


def _train(net, archs, *, seed: int = 0, autocast: bool = False, res: int = 8) -> list[float]:
    """One SGD step per arch on fixed random batches; the losses."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    losses = []
    for arch in archs:
        x, y = torch.randn(8, 3, res, res, generator=g), torch.randint(0, 10, (8,), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
            out = net(x, arch)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _kinds(net, archs=None) -> set:
    """Block kinds (class and configuration) of the compilable blocks, or of those ``archs`` use."""
    blocks = compilable_blocks(net)
    if archs is not None:
        used = {id(m) for a in archs for m in net.used_modules(a)}
        blocks = [b for b in blocks if id(b) in used]
    return {(type(b), repr(b)) for b in blocks}


@pytest.mark.parametrize("space_name,variant", SPACE_VARIANTS)
def test_every_variant_compiles_to_whole_graphs_and_matches_eager(space_name, variant):
    """fullgraph=True: a block that does not compile to one graph fails here; 3 steps on
    distinct archs give eager's losses, and the weights stay eager's."""
    space = create_space(space_name)
    eager, comp = _pair(space, variant)
    compile_supernet(comp, backend="aot_eager")
    assert is_compiled(comp) and not is_compiled(eager) and compilable_blocks(comp)
    archs = _archs(space, 3, seed=1)
    le, lc = _train(eager, archs), _train(comp, archs)
    assert lc == pytest.approx(le, rel=1e-5)
    for (n, a), (_, b) in zip(eager.state_dict().items(), comp.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("space_name", list_spaces())
def test_compilations_do_not_grow_with_distinct_archs(space_name, fresh_dynamo):
    """Train on 10 distinct archs, then on 30 more: no new graph, and at most one graph per
    block kind (training mode), far below the number of archs."""
    space = create_space(space_name)
    net = create_supernet(space, "lsbn", **SMALLEST)
    compile_supernet(net, backend="aot_eager")
    archs = _archs(space, 40, seed=2)
    # precondition: the first 10 already use every block kind the 40 use (as any training soon does)
    assert _kinds(net, archs[:10]) == _kinds(net, archs)
    g0 = graph_count()
    _train(net, archs[:10])
    after_10 = graph_count() - g0
    _train(net, archs[10:])
    after_40 = graph_count() - g0
    assert after_40 == after_10
    assert 0 < after_10 <= len(_kinds(net)) < 40


def test_evaluation_and_calibration_compile_once_per_kind(fresh_dynamo):
    """Scoring-style use, calibration (train mode, no grad, cumulative-average BNs) then
    evaluation of many subnets: each stage adds at most one graph per block kind (blocks
    with a cumulative-average BN run eagerly) and none after its first 12 subnets; the
    calibrated statistics and the outputs match eager's."""
    space = create_space("s4")
    eager, comp = _pair(space, "lsbn", TWO_STACKS)
    compile_supernet(comp, backend="aot_eager")
    archs = _archs(space, 24, seed=3)
    assert _kinds(comp, archs[:12]) == _kinds(comp, archs)
    kinds = len(_kinds(comp))
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    g0, counts = graph_count(), []
    for net in (eager, comp):  # as calibrate_bn(reset=True): every BN a cumulative average
        net.train()
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        with torch.no_grad():
            for part in (archs[:12], archs[12:]):
                for s in part:
                    net(x, s)
                counts.append(graph_count() - g0)
    for (n, a), (_, b) in zip(eager.state_dict().items(), comp.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=n)
    outs = []
    for net in (eager, comp):
        net.eval()
        with torch.no_grad():
            outs.append([net(x, s) for s in archs[:12]])
        counts.append(graph_count() - g0)
    with torch.no_grad():
        for s in archs[12:]:
            comp(x, s)
    counts.append(graph_count() - g0)
    calib_12, calib_24, eval_12, eval_24 = counts[2], counts[3], counts[5], counts[6]
    assert counts[:2] == [0, 0]  # eager compiled nothing
    assert calib_12 == calib_24 <= kinds
    assert eval_12 == eval_24 <= calib_24 + kinds
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_on_cpu_compiled_matches_eager():
    space = create_space("s4")
    eager, comp = _pair(space, "lsbn")
    compile_supernet(comp, backend="aot_eager")
    archs = _archs(space, 3, seed=4)
    le, lc = _train(eager, archs, autocast=True), _train(comp, archs, autocast=True)
    assert lc == pytest.approx(le, rel=1e-2)


def test_state_dict_unchanged_and_uncompile(fresh_dynamo):
    """Compiling changes no parameter, buffer or state_dict key (checkpoints load across);
    copies and pickles work; uncompile_supernet makes every call eager again."""
    space = create_space("s4")
    eager, comp = _pair(space, "esbn")
    keys = list(comp.state_dict())
    compile_supernet(comp, backend="aot_eager")
    assert list(comp.state_dict()) == keys
    assert not is_compiled(copy.deepcopy(comp))  # a copy runs eagerly (nn.Module drops the compiled call)
    torch.save(comp, io.BytesIO())  # and the compiled network still pickles
    comp.load_state_dict(eager.state_dict())
    uncompile_supernet(comp)
    assert not is_compiled(comp)
    g0 = graph_count()
    _train(comp, _archs(space, 2, seed=5))
    assert graph_count() == g0


def test_refuses_a_module_without_compilable_blocks():
    with pytest.raises(ValueError, match="compilable"):
        compile_supernet(torch.nn.Sequential(torch.nn.Flatten()))


@pytest.mark.slow
def test_inductor_matches_eager():
    """The real backend (C++ code generation on CPU: a minute or more on a busy machine)."""
    space = create_space("s4")
    eager, comp = _pair(space, "lsbn")
    compile_supernet(comp)
    archs = _archs(space, 4, seed=6)
    le, lc = _train(eager, archs), _train(comp, archs)
    assert lc == pytest.approx(le, rel=1e-3)


def test_gpu_check_smoke_runs_on_cpu():
    """bench/gpu_check.py --device cpu --smoke (~15 s): every part runs and prints its ratio
    lines; the compiled mode recompiles nothing while timed; the 1-process DDP step equals
    the plain step."""
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), "--device", "cpu", "--smoke", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ratios = {}
    for line in proc.stdout.splitlines():
        if line.startswith("ratio "):
            _, name, value = line.split()
            ratios[name] = float(value)
    for name in ("real_vs_synthetic_fp32", "real_vs_synthetic_bf16", "real_vs_synthetic_bf16+compile",
                 "epoch_s_bf16+compile", "score_candidates_per_s_eager", "score_candidates_per_s_compiled",
                 "ddp_gloo_vs_plain_step"):
        assert ratios.get(name, 0) > 0, name
    assert ratios["compile_recompiles_during_timing"] == 0
    assert ratios["score_recompiles_during_timing"] == 0
    assert ratios["ddp_max_weight_diff"] < 1e-6
