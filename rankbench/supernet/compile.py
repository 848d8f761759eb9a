"""Compiled supernet training that covers every subnet with a fixed number of compilations.

``torch.compile(net)`` on a supernet traces ``forward(x, arch)`` for one architecture: dynamo
guards on the subnet, builds one graph per distinct subnet and, past its recompile limit (8),
runs the rest eagerly with only a warning (8 of S4's 255 subnets compiled). Here the
architecture-dependent glue (which paths run, the sum, the choice of shadow BN) stays eager
and what has static structure is compiled: every module whose class carries
``compilable = True`` (a path block, the aggregation conv, the stem, the classifier; its
``forward`` takes only tensors). Blocks of the same class and shapes share one graph (since
torch 2.5 dynamo inlines nn modules and passes their parameters as graph inputs), so the
number of compilations depends on the block kinds and shapes (and on the mode: training,
calibration, evaluation), never on the number of subnets.

    from rankbench.supernet.compile import compile_supernet
    compile_supernet(net)          # in place; state_dict keys, checkpoints, DDP unchanged

Why not ``module.compile()``: in torch 2.13 it wraps ``Module._call_impl``, a frame dynamo
skips, so it silently runs eagerly. Why one compiled function per block kind: dynamo's
cache and its recompile limit are per code object; one shared function for every block
would hit the limit, and a lookup would test every block kind's guards in turn.

Worth it? Not on CPU: training steps x0.41-0.64 of eager, scoring x1.04-1.06 (inductor's CPU
code for training-mode BN is slower than ATen's, and each compiled call has a fixed host
cost). On a GPU the paper preset's eager step is projected to be bound by its host, and the
compiled blocks cost more host time per step than the eager ops (x1.4-2.9 at negligible sizes),
so no gain is expected either; ``bench/gpu_check.py`` measures it (``ratio compile_vs_bf16``).
Numbers and commands: ``bench/README.md``, section ``bench_compile.py``.
"""
from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

__all__ = ["compile_supernet", "compilable_blocks", "uncompile_supernet", "is_compiled", "graph_count"]


def compilable_blocks(net: nn.Module) -> list[nn.Module]:
    """The outermost submodules of ``net`` whose class has ``compilable = True``, in module
    order (a compilable block inside another is compiled as part of it)."""
    out: list[nn.Module] = []

    def visit(mod: nn.Module) -> None:
        for child in mod.children():
            if getattr(type(child), "compilable", False) is True:
                out.append(child)
            else:
                visit(child)

    if getattr(type(net), "compilable", False) is True:
        return [net]
    visit(net)
    return out


def _call(module, *args, **kwargs):
    return module._call_impl(*args, **kwargs)


#: (block kind, compile options) -> that kind's compiled function, shared by every network
_RUNNERS: dict[tuple, Any] = {}


def _kind(module: nn.Module) -> tuple:
    """What decides a block's graph: its class, its submodules' classes and configuration,
    and its parameters' shapes. Blocks of one kind share a compiled function (and graphs)."""
    return (type(module), repr(module),
            tuple((n, tuple(p.shape), p.dtype) for n, p in module.named_parameters()))


def _runner(kind: tuple, compile_kw: dict[str, Any]) -> Any:
    """The compiled function for one block kind: a private copy of :func:`_call`'s code, so
    that each kind has its own dynamo cache (and recompile limit)."""
    key = (kind, repr(sorted(compile_kw.items())))
    fn = _RUNNERS.get(key)
    if fn is None:
        code = _call.__code__.replace(co_name=f"_call_{len(_RUNNERS)}_{kind[0].__name__}")
        fn = torch.compile(types.FunctionType(code, _call.__globals__, code.co_name), **compile_kw)
        _RUNNERS[key] = fn
    return fn


def compile_supernet(net: nn.Module, *, backend: str = "inductor", mode: str | None = None,
                     fullgraph: bool = True, dynamic: bool | None = None,
                     options: dict[str, Any] | None = None) -> nn.Module:
    """Compile the static-structure blocks of ``net`` (:func:`compilable_blocks`) in place and
    return ``net``. The keywords are :func:`torch.compile`'s; ``fullgraph=True`` makes a block
    that does not compile to a single graph fail loudly instead of running partly eagerly.

    The network keeps its parameters, state_dict keys and forward signature, so checkpoints,
    :func:`rankbench.distributed.wrap_ddp` and scoring work unchanged; a deep copy or an
    unpickled copy runs eagerly (``nn.Module`` drops the compiled call when copied). Compilation
    happens at a block kind's first call in each mode (training, evaluation, no-grad)."""
    blocks = compilable_blocks(net)
    if not blocks:
        raise ValueError(f"{type(net).__name__} has no compilable blocks (modules whose class sets "
                         f"compilable = True); nothing to compile")
    compile_kw: dict[str, Any] = {"backend": backend, "mode": mode, "fullgraph": fullgraph, "dynamic": dynamic}
    if options:
        compile_kw["options"] = dict(options)
    for block in blocks:
        block._compiled_call_impl = _CompiledCall(block, _runner(_kind(block), compile_kw))
    return net


class _CompiledCall:
    """``module(*args)`` through its kind's compiled function; eagerly in training mode when a
    BatchNorm of the block keeps a cumulative average (``momentum=None``, as BN calibration
    does): its update factor ``1 / num_batches_tracked`` is a value on the device, which a
    graph cannot take as a constant."""

    __slots__ = ("module", "fn", "bns")

    def __init__(self, module: nn.Module, fn: Any):
        self.module, self.fn = module, fn
        self.bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def __call__(self, *args, **kwargs):
        m = self.module
        if m.training and any(b.momentum is None for b in self.bns):
            return m._call_impl(*args, **kwargs)
        return self.fn(m, *args, **kwargs)


def uncompile_supernet(net: nn.Module) -> nn.Module:
    """Undo :func:`compile_supernet`: every block of ``net`` runs eagerly again."""
    for mod in net.modules():
        if isinstance(getattr(mod, "_compiled_call_impl", None), _CompiledCall):
            mod._compiled_call_impl = None
    return net


def is_compiled(net: nn.Module) -> bool:
    """True when :func:`compile_supernet` has compiled ``net``'s blocks."""
    return any(isinstance(getattr(m, "_compiled_call_impl", None), _CompiledCall) for m in net.modules())


def graph_count() -> int:
    """Graphs dynamo has compiled in this process so far (all callers):
    ``torch._dynamo.utils.counters["stats"]["unique_graphs"]``."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
