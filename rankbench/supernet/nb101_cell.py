"""The weight-sharing NAS-Bench-101 cell (space ``nb101``): any NB101 cell, one set of weights.

Each supernet cell has NB101's 5 interior vertices; interior vertex ``v`` of an arch (in its
canonical labelling, :mod:`rankbench.spaces.nb101`) runs on supernet vertex ``v``:

- every vertex holds the three ops at full width ``C`` (the cell's channels): a ``C x C``
  conv3x3 and conv1x1 (each followed by the variant's normalisation, then ReLU) and a 3x3
  max-pool;
- every vertex has its own 1x1 conv-BN-ReLU projection of the cell input (``C_in -> C``), used
  when the arch has the edge input -> vertex; the output has one more, used when it has
  input -> output;
- NB101's channel rule (``compute_vertex_channels``: the output's ``C`` channels split among the
  vertices that feed it, a vertex that does not feed the output as wide as its widest
  successor) is realised by slicing the shared weights, as eval-nas does: a vertex of width
  ``c`` uses ``conv.weight[:c, :c]`` and the first ``c`` channels of its BN and of its
  projection's output; a wider predecessor's output is truncated to ``c``. The output
  concatenates the vertices that feed it and adds its projection when input -> output exists.
  Widths are NB101's (eval-nas doubles the first stack; this does not).

So the weights an arch uses are exactly NB101's network for its cell (same shapes, same
count: ``trainable_parameters``), and copying them into nasbench-pytorch's ``Network`` gives
the same logits (``tests/test_nb101_supernet.py`` checks both). Projections always run at
full width and are sliced afterwards: the same numbers for the channels used, a static shape
(``compilable``), and one output per batch that every arch can share when scoring (``memo``);
in training their BN updates the running statistics of all ``C`` channels, each with its own
batch statistics. Gradients fall only on the slices an arch uses, but an optimiser step on a
used tensor (SGD momentum, weight decay) also moves its unused slices, as in eval-nas.

**Normalisation variants** (the norm is injected, :mod:`rankbench.supernet.norms`): each
(vertex, conv op) has one norm whose inputs are the vertices that can feed vertex ``v``
(``0`` = the cell input's projection, ``1 .. v-1``); an arch passes the predecessors it sums.

- ``bn``: one BN per (vertex, op), as NB101;
- ``lsbn``: one BN per fan-in (number of summed inputs, the projection included), ``v`` at
  vertex ``v``;
- ``esbn``: one BN per set of predecessors (``2^v - 1`` at vertex ``v``; nas-landmarkreg's
  MixedVertexWSBN keeps its statistics this way);
- ``scale``: the vertex's input sum divided by its fan-in, then the op (one BN; at a conv
  vertex the injected norm divides the conv's output, the same since the conv has no bias);
- max-pool vertices have no BN: ``bn``/``lsbn``/``esbn`` leave them as NB101 does; ``scale``
  still divides their sum by the fan-in before pooling (max-pool commutes with the positive
  scaling, so it scales the vertex's output).

Projections keep one plain BN each (their input is the cell input alone). An arch uses one BN
per (vertex, op) under every variant, so its weight count is NB101's under all four. Supernet
sizes at NB101's scale (width 128, 3 stacks x 3 cells):

| variant | supernet parameters | extra over ``bn`` | BNs per (vertex, conv op), v = 1..5 | of which no cell uses |
|---|---|---|---|---|
| ``bn``, ``scale`` | 56,914,570 | 0 | 1, 1, 1, 1, 1 | none |
| ``lsbn`` | 57,022,090 | 107,520 (+0.19%) | 1, 2, 3, 4, 5 | fan-in 5 at v = 5 (10,752 parameters) |
| ``esbn`` | 57,473,674 | 559,104 (+0.98%) | 1, 3, 7, 15, 31 | 8 sets at v = 5 (86,016 parameters) |

Each extra BN holds 2 x C parameters (C = 128, 256, 512 by stack). Which fan-ins and input sets
occur at each vertex comes from enumerating all 423,624 cells in their canonical labelling
(:func:`rankbench.spaces.nb101.survey`): fan-in 5 needs 10 edges; at vertex 5 the sets {0},
{0,1}, {0,1,2}, {0,1,3}, {0,2,3}, {1,2,3}, {0,1,2,3} and {0,...,4} never occur (NB101's labelling
would number such a vertex earlier, or the cell needs more than 9 edges). For comparison, the
networks of the 1,030 cells with a spec in the bundled data have 0.36M-49.1M weights.
``tests/test_nb101_supernet.py`` recomputes the table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, TypeVar, cast

import torch
import torch.nn.functional as F
from nasbench_pytorch.model.model import compute_vertex_channels
from torch import Tensor, nn

from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.supernet.cell import _bns, register_cell, run_memo
from rankbench.supernet.norms import NormFactory, ScaledBN, resolve_norm
from rankbench.supernet.ops import op_key, projection

if TYPE_CHECKING:
    from rankbench.spaces.base import Arch, SearchSpace
    from rankbench.supernet.network import Supernet

__all__ = ["NB101SupernetCell", "SlicedConv2d", "SlicedBatchNorm2d", "VertexConv", "NUM_INTERIOR", "PLAN_CACHE",
           "to_nb101_network"]

#: interior vertices of an NB101 cell (7 vertices: input, 5 interior, output)
NUM_INTERIOR = 5
_KERNEL = {CONV3X3: 3, CONV1X1: 1}
#: archs whose plan a cell keeps
PLAN_CACHE = 4096


class SlicedConv2d(nn.Conv2d):
    """A ``C x C`` kxk convolution (no bias) that runs at the input's width ``c <= C`` with
    ``weight[:c, :c]``."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        w = self.weight if c == self.out_channels else self.weight[:c, :c]
        return F.conv2d(x, w, None, self.stride, self.padding)


class SlicedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm of ``C`` channels that normalises an input of ``c <= C`` channels with its
    first ``c`` (affine parameters and running statistics, updated in place in training).
    At full width it is ``nn.BatchNorm2d``."""

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:c] if track and self.running_mean is not None else None,
            self.running_var[:c] if track and self.running_var is not None else None,
            self.weight[:c] if self.weight is not None else None,
            self.bias[:c] if self.bias is not None else None,
            use_batch, factor, self.eps)


_M = TypeVar("_M", bound=nn.Module)


def _sliceable(module: _M) -> _M:
    """``module`` with every plain ``nn.BatchNorm2d`` inside replaced by a
    :class:`SlicedBatchNorm2d` of the same settings (the injected norms build plain ones)."""
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            if type(child) is nn.BatchNorm2d:
                parent._modules[name] = SlicedBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                                          affine=child.affine,
                                                          track_running_stats=child.track_running_stats)
    return module


def _divides_by_fan_in(norm: NormFactory) -> bool:
    """Whether a norm scales the sum by its fan-in (then max-pool vertices do it too)."""
    if getattr(norm, "divides_by_fan_in", False):
        return True
    return isinstance(norm, type) and issubclass(norm, ScaledBN)


class VertexConv(nn.Module):
    """One conv op of one vertex: the shared ``C x C`` kernel, then the variant's norm (keyed
    by the summed inputs), then ReLU."""

    def __init__(self, op: str, channels: int, inputs: Sequence[int], norm: NormFactory, bn_momentum: float):
        super().__init__()
        self.conv = SlicedConv2d(channels, _KERNEL[op])
        self.norm = _sliceable(norm(channels, tuple(inputs), bn_momentum=bn_momentum))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, active: tuple[int, ...]) -> Tensor:
        return self.relu(self.norm(self.conv(x), active))


@dataclass(frozen=True)
class _Vertex:
    v: int  # interior vertex (1-based, canonical labelling)
    op: str
    preds: tuple[int, ...]  # interior predecessors
    from_input: bool  # edge input -> v (the projection is summed)
    channels: int
    active: tuple[int, ...]  # every summed input, 0 = the input's projection
    to_output: bool


@dataclass(frozen=True)
class _Plan:
    vertices: tuple[_Vertex, ...]
    input_to_output: bool


class NB101SupernetCell(nn.Module):
    """Weight-sharing NB101 cell (see the module docstring); ``forward(x, arch, memo=None)``
    runs the cell of an nb101 arch (anything with a pruned NB101 ``spec``)."""

    def __init__(self, in_channels: int, channels: int, *, norm: str | NormFactory = "bn", bn_momentum: float = 0.1):
        super().__init__()
        norm = resolve_norm(norm)
        self.in_channels, self.channels = in_channels, channels
        self.proj = nn.ModuleList(projection(in_channels, channels, bn_momentum) for _ in range(NUM_INTERIOR))
        self.out_proj = projection(in_channels, channels, bn_momentum)
        self.vertices = nn.ModuleList(
            nn.ModuleDict({op_key(op): VertexConv(op, channels, tuple(range(v)), norm, bn_momentum)
                           for op in (CONV3X3, CONV1X1)})
            for v in range(1, NUM_INTERIOR + 1))
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.divide = _divides_by_fan_in(norm)
        self._plans: dict[Arch, _Plan] = {}

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels={self.channels}, divide_by_fan_in={self.divide}"

    def _conv(self, v: int, op: str) -> VertexConv:
        """The conv op ``op`` of interior vertex ``v`` (1-based)."""
        return cast(VertexConv, cast(nn.ModuleDict, self.vertices[v - 1])[op_key(op)])

    # -- the arch's cell ---------------------------------------------------------------------
    def plan(self, arch: Arch) -> _Plan:
        """Which vertices run which op at which width, fed by what (cached for the last
        :data:`PLAN_CACHE` archs: training visits far more of the 423,624 cells)."""
        p = self._plans.get(arch)
        if p is None:
            if len(self._plans) >= PLAN_CACHE:
                del self._plans[next(iter(self._plans))]
            p = self._plans[arch] = self._make_plan(arch)
        return p

    def _make_plan(self, arch: Arch) -> _Plan:
        spec = arch.spec
        m = spec.matrix
        n = spec.num_vertices
        if n - 2 > NUM_INTERIOR:
            raise ValueError(f"arch {getattr(arch, 'name', arch)!r} has {n - 2} interior vertices; "
                             f"the NB101 cell has {NUM_INTERIOR}")
        widths = compute_vertex_channels(self.in_channels, self.channels, m)
        out = []
        for v in range(1, n - 1):
            preds = tuple(int(u) for u in range(1, v) if m[u, v])
            from_input = bool(m[0, v])
            out.append(_Vertex(v, spec.ops[v], preds, from_input, int(widths[v]),
                               ((0,) if from_input else ()) + preds, bool(m[v, n - 1])))
        return _Plan(tuple(out), bool(m[0, n - 1]))

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: Tensor, arch: Arch, memo: dict | None = None) -> Tensor:
        plan = self.plan(arch)
        outs: dict[int, Tensor] = {}
        concat = []
        for vx in plan.vertices:
            c = vx.channels
            # summed in nasbench-pytorch's order: interior predecessors, then the projection
            terms = [_truncate(outs[u], c) for u in vx.preds]
            if vx.from_input:
                terms.append(_truncate(run_memo(self.proj[vx.v - 1], x, memo), c))
            s = terms[0]
            for t in terms[1:]:
                s = s + t
            if vx.op == MAXPOOL3X3:
                y = _max_pool3x3(self.pool, s / len(terms) if self.divide and len(terms) > 1 else s)
            else:
                y = self._conv(vx.v, vx.op)(s, vx.active)
            outs[vx.v] = y
            if vx.to_output:
                concat.append(y)
        if not concat:
            return run_memo(self.out_proj, x, memo)
        y = concat[0] if len(concat) == 1 else torch.cat(concat, 1)
        if plan.input_to_output:
            y = y + run_memo(self.out_proj, x, memo)
        return y

    # -- what an arch uses ---------------------------------------------------------------------
    def input_modules(self, arch: Arch) -> list[nn.Module]:
        """The projections the arch uses (they read only the cell input), in order."""
        plan = self.plan(arch)
        mods = [self.proj[vx.v - 1] for vx in plan.vertices if vx.from_input]
        return mods + ([self.out_proj] if plan.input_to_output else [])

    def used_modules(self, arch: Arch) -> list[nn.Module]:
        """Projections, the convs of conv vertices and the one BN each uses."""
        mods = self.input_modules(arch)
        for vx in self.plan(arch).vertices:
            if vx.op != MAXPOOL3X3:
                block = self._conv(vx.v, vx.op)
                mods.append(block.conv)
                mods.extend(block.norm.bns(vx.active))
        return mods

    def used_bns(self, arch: Arch) -> list[nn.BatchNorm2d]:
        return _bns(self.used_modules(arch))

    def used_slices(self, arch: Arch) -> list[tuple[Tensor, tuple[slice, ...]]]:
        """(parameter, the slice of it the arch uses) for every weight the arch uses."""
        out: list[tuple[Tensor, tuple[slice, ...]]] = []
        plan = self.plan(arch)

        def conv_bn_relu(block: nn.Module, c: int) -> None:
            seq = cast(nn.Sequential, block)
            conv, bn = cast(nn.Conv2d, seq[0]), cast(nn.BatchNorm2d, seq[1])
            out.extend([(conv.weight, (slice(0, c),)), (bn.weight, (slice(0, c),)), (bn.bias, (slice(0, c),))])

        for vx in plan.vertices:
            if vx.from_input:
                conv_bn_relu(self.proj[vx.v - 1], vx.channels)
        if plan.input_to_output:
            conv_bn_relu(self.out_proj, self.channels)
        for vx in plan.vertices:
            if vx.op == MAXPOOL3X3:
                continue
            block = self._conv(vx.v, vx.op)
            c = slice(0, vx.channels)
            out.append((block.conv.weight, (c, c)))
            for bn in block.norm.bns(vx.active):
                out.extend([(bn.weight, (c,)), (bn.bias, (c,))])
        return out

    def param_count(self, arch: Arch) -> int:
        """Weights the arch uses, counted on the slices (:meth:`used_slices`; NB101's
        ``trainable_parameters`` of the cell when the network has NB101's widths)."""
        plan, cin = self.plan(arch), self.in_channels
        n = (cin + 2) * self.channels if plan.input_to_output else 0  # conv 1x1, BN weight and bias
        for vx in plan.vertices:
            c = vx.channels
            if vx.from_input:
                n += (cin + 2) * c
            if vx.op != MAXPOOL3X3:
                bns = self._conv(vx.v, vx.op).norm.bns(vx.active)
                n += _KERNEL[vx.op] ** 2 * c * c + sum(2 * c for bn in bns if bn.affine)
        return n


def _truncate(x: Tensor, channels: int) -> Tensor:
    return x if x.shape[1] == channels else x[:, :channels]


def _max_pool3x3(pool: nn.Module, x: Tensor) -> Tensor:
    """``pool(x)`` (3x3 max-pool, stride 1, padding 1); on CPU without autograd (scoring) as
    the maximum of shifted views, rows then columns: the same values (max is exact) and memory
    format. ATen's CPU max-pool is slow on the channel slices a vertex often gets and in the
    contiguous format (x7-x9 there, x1.4 on a whole channels-last batch; scoring x1.2-1.4:
    ``bench/bench_nb101_scoring.py --aten-pool``). Where a gradient is needed ``pool`` runs:
    its gradient on ties (ReLU zeros) goes to one input, ``torch.maximum``'s would be split."""
    if x.device.type != "cpu" or (x.requires_grad and torch.is_grad_enabled()):
        return pool(x)
    p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))  # max-pool's padding: never the maximum
    rows = torch.maximum(torch.maximum(p[:, :, :, :-2], p[:, :, :, 1:-1]), p[:, :, :, 2:])
    return torch.maximum(torch.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


@register_cell("nb101")
def _nb101_cell(space: SearchSpace, in_channels: int, channels: int, *, norm: NormFactory,
                bn_momentum: float = 0.1) -> NB101SupernetCell:
    return NB101SupernetCell(in_channels, channels, norm=norm, bn_momentum=bn_momentum)


@torch.no_grad()
def to_nb101_network(net: "Supernet", arch: "Arch") -> nn.Module:
    """nasbench-pytorch's stand-alone ``Network`` for ``arch`` (one arch for every cell) with
    the weights, BN statistics and momentum the supernet ``net`` holds for it: the sliced
    shared weights copied into NB101's own layers (for checks, or to fine-tune an arch)."""
    from rankbench.nb101.network import build_network

    stem_conv = cast(nn.Conv2d, net.stem[0])
    stacks = len(net._downsample_before) + 1
    bn0 = cast(nn.BatchNorm2d, net.stem[1])
    # nasbench-pytorch's Network: untyped, its layers are read by name below
    out: Any = build_network(arch.spec, stem_channels=stem_conv.out_channels, num_stacks=stacks,
                             cells_per_stack=net.num_cells // stacks, num_classes=net.classifier.out_features,
                             momentum=bn0.momentum if bn0.momentum is not None else 0.1, eps=bn0.eps)
    out = out.to(device=stem_conv.weight.device, dtype=stem_conv.weight.dtype)

    def conv(dst: nn.Conv2d, src: Tensor) -> None:
        dst.weight.copy_(src)

    def bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, c: int) -> None:
        _present(dst.weight).copy_(_present(src.weight)[:c])
        _present(dst.bias).copy_(_present(src.bias)[:c])
        _present(dst.running_mean).copy_(_present(src.running_mean)[:c])
        _present(dst.running_var).copy_(_present(src.running_var)[:c])
        _present(dst.num_batches_tracked).copy_(_present(src.num_batches_tracked))

    def conv_bn_relu(dst: Any, src: nn.Module, c: int) -> None:
        seq = cast(nn.Sequential, src)
        conv(dst.conv_bn_relu[0], cast(nn.Conv2d, seq[0]).weight[:c])
        bn(dst.conv_bn_relu[1], cast(nn.BatchNorm2d, seq[1]), c)

    conv_bn_relu(out.layers[0], net.stem, stem_conv.out_channels)
    nb_cells = [out.layers[i] for i in sorted(out.cell_indices)]
    for cell, nb_cell in zip(cast("Sequence[NB101SupernetCell]", net.cells), nb_cells):
        plan = cell.plan(arch)
        n = len(plan.vertices) + 2
        for vx in plan.vertices:
            c = vx.channels
            if vx.from_input:
                conv_bn_relu(nb_cell.input_op[vx.v], cell.proj[vx.v - 1], c)
            if vx.op != MAXPOOL3X3:
                block = cell._conv(vx.v, vx.op)
                dst = nb_cell.vertex_op[vx.v]
                dst = (dst.conv3x3 if vx.op == CONV3X3 else dst.conv1x1).conv_bn_relu
                conv(dst[0], block.conv.weight[:c, :c])
                (src_bn,) = block.norm.bns(vx.active)
                bn(dst[1], src_bn, c)
        if plan.input_to_output:
            conv_bn_relu(nb_cell.input_op[n - 1], cell.out_proj, cell.channels)
    out.classifier.weight.copy_(net.classifier.weight)
    out.classifier.bias.copy_(net.classifier.bias)
    return out


def _present(t: Tensor | None) -> Tensor:
    """``t``, which an affine BN with running statistics (every BN here) has."""
    if t is None:  # the TypeError indexing or copying None would raise
        raise TypeError("a BatchNorm without affine parameters or running statistics")
    return t
