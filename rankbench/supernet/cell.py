"""Supernet cells: the registry that ties a search space to its cell, and S4's cells.

A space's cell module registers a factory::

    @register_cell("s4")
    def _s4_cell(space, in_channels, channels, *, norm, bn_momentum=0.1) -> nn.Module: ...

``norm`` is a norm factory (``rankbench.supernet.norms``: ``norm(channels, inputs,
bn_momentum=...)``), injected by the variant; ``register_cell(space, variant=name)``
registers a cell that only that variant uses (SPOS; ``norm`` is then None). A cell module:

- ``forward(x, arch, memo=None) -> Tensor``: runs only the modules ``arch`` uses;
- ``input_modules(arch)``: the modules that read only the cell input, in order (scoring runs
  them once per batch for the first cell: ``run_memo``);
- ``used_modules(arch)``: every module ``arch`` uses (parameters, BNs to calibrate).

:class:`MixPathCell` (S4) shares weights across subnets: every (choice node, op) pair owns a
1x1 projection from the cell input followed by its op; node 5 sums the active nodes, then
1x1 conv -> normalisation -> ReLU. :class:`SPOSCell` gives every distinct path combination
(NB101 hash class) its own weights, as the SPOS baseline of the paper.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, cast

from torch import Tensor, nn

from rankbench.supernet.norms import NormFactory, resolve_norm
from rankbench.supernet.ops import Conv1x1, PathBlock, make_op, op_key, projection

if TYPE_CHECKING:
    from rankbench.spaces.s4 import S4Space, Subnet

__all__ = ["register_cell", "get_cell", "cell_spaces", "CellFactory", "SupernetCell", "MixPathCell", "SPOSCell",
           "run_memo"]

#: ``factory(space, in_channels, channels, *, norm, bn_momentum) -> cell module``
CellFactory = Callable[..., nn.Module]

_CELLS: dict[tuple[str, str | None], CellFactory] = {}


class SupernetCell(Protocol):
    """What a registered cell module provides (the module docstring's contract)."""

    def __call__(self, x: Tensor, arch: Any, memo: dict | None = None) -> Tensor: ...

    def input_modules(self, arch: Any) -> list[nn.Module]: ...

    def used_modules(self, arch: Any) -> list[nn.Module]: ...


def register_cell(space: str, *, variant: str | None = None) -> Callable[[CellFactory], CellFactory]:
    """Decorator: the cell factory of search space ``space`` (any normalisation variant), or,
    with ``variant``, the cell that variant uses on ``space`` instead."""
    def deco(factory: CellFactory) -> CellFactory:
        key = (space, variant)
        if key in _CELLS:
            raise ValueError(f"a cell for space {space!r}" + (f", variant {variant!r}," if variant else "")
                             + " is registered twice")
        _CELLS[key] = factory
        return factory

    return deco


def cell_spaces(variant: str | None = None) -> tuple[str, ...]:
    """Spaces with a shared cell (``variant=None``), or with a cell of ``variant``'s own."""
    return tuple(s for s, v in _CELLS if v == variant)


def get_cell(space: str, variant: str | None = None) -> CellFactory:
    try:
        return _CELLS[(space, variant)]
    except KeyError:
        known = ", ".join(cell_spaces(variant)) or "(none)"
        what = f"variant {variant!r}" if variant else "the normalisation variants"
        raise ValueError(f"no supernet cell for search space {space!r} with {what}; spaces: {known}") from None


class MixPathCell(nn.Module):
    """Weight-sharing multi-path cell (S4); ``norm`` names (or builds) node 5's normalisation."""

    def __init__(self, in_channels: int, channels: int, m: int, ops: Sequence[str],
                 norm: str | NormFactory = "bn", bn_momentum: float = 0.1):
        super().__init__()
        self.m = m
        self.paths = nn.ModuleList(
            nn.ModuleDict({op_key(op): PathBlock(projection(in_channels, channels, bn_momentum),
                                                 make_op(op, channels, bn_momentum)) for op in ops})
            for _ in range(m)
        )
        self.node5 = Conv1x1(channels, channels)
        # the norm's inputs are the choice nodes, numbered 1..m as in NB101's cell
        self.norm = resolve_norm(norm)(channels, tuple(range(1, m + 1)), bn_momentum=bn_momentum)
        self.relu = nn.ReLU()

    def path(self, node: int, op: str) -> nn.Module:
        """Projection + op of choice node ``node`` (0-based) running ``op``."""
        return cast(nn.ModuleDict, self.paths[node])[op_key(op)]

    @staticmethod
    def _active(subnet: Subnet) -> tuple[int, ...]:
        return tuple(i + 1 for i in subnet.active)

    def aggregate(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        """Node 5's input: the sum of the active paths' outputs."""
        out: Tensor | None = None
        for path in self.input_modules(subnet):
            y = run_memo(path, x, memo)
            out = y if out is None else out + y
        if out is None:
            raise ValueError("a subnet needs at least one active path")
        return out

    def forward(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        return self.relu(self.norm(self.node5(self.aggregate(x, subnet, memo)), self._active(subnet)))

    def input_modules(self, subnet: Subnet) -> list[nn.Module]:
        """The modules of ``subnet`` that read only the cell input: its active paths, in order."""
        return [self.path(i, cast(str, subnet.ops[i])) for i in subnet.active]  # active: ops[i] is set

    def used_modules(self, subnet: Subnet) -> list[nn.Module]:
        return self.input_modules(subnet) + [self.node5] + list(self.norm.bns(self._active(subnet)))

    def used_bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return _bns(self.used_modules(subnet))


@register_cell("s4")
def _s4_cell(space: S4Space, in_channels: int, channels: int, *, norm: NormFactory,
             bn_momentum: float = 0.1) -> MixPathCell:
    return MixPathCell(in_channels, channels, space.m, space.ops, norm=norm, bn_momentum=bn_momentum)


class _StandaloneCell(nn.Module):
    """One NB101 S4 cell with its own weights: paths for a multiset of ops, node 5, BN."""

    compilable = True

    def __init__(self, in_channels: int, channels: int, ops: Sequence[str], bn_momentum: float):
        super().__init__()
        self.ops = tuple(ops)
        self.paths = nn.ModuleList(
            PathBlock(projection(in_channels, channels, bn_momentum), make_op(op, channels, bn_momentum))
            for op in ops
        )
        self.node5 = Conv1x1(channels, channels)
        self.bn = nn.BatchNorm2d(channels, momentum=bn_momentum)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.paths[0](x)
        for p in self.paths[1:]:
            out = out + p(x)
        return self.relu(self.bn(self.node5(out)))


class SPOSCell(nn.Module):
    """SPOS on the multi-path space: each path combination is its own single-path candidate.

    Candidates are the NB101 hash classes of the space (34 for m = 4): subnets that differ
    only by which node holds which op are the same network, so they share one candidate.
    """

    def __init__(self, in_channels: int, channels: int, subnets: Sequence[Subnet], bn_momentum: float = 0.1):
        super().__init__()
        classes: dict[str, list[Subnet]] = {}
        for s in subnets:
            classes.setdefault(s.hash, []).append(s)
        self._candidate_of: dict[str, str] = {}
        cands = {}
        for idx, (h, members) in enumerate(classes.items()):
            key = f"c{idx:02d}"
            cands[key] = _StandaloneCell(in_channels, channels, sorted(op for op in members[0].ops if op), bn_momentum)
            self._candidate_of[h] = key
        self.candidates = nn.ModuleDict(cands)

    def candidate(self, subnet: Subnet) -> _StandaloneCell:
        try:
            return cast(_StandaloneCell, self.candidates[self._candidate_of[subnet.hash]])
        except KeyError:
            raise ValueError(f"subnet {subnet.name!r} is not in this SPOS supernet's space") from None

    def forward(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        return run_memo(self.candidate(subnet), x, memo)

    def input_modules(self, subnet: Subnet) -> list[nn.Module]:
        """The whole candidate reads only the cell input."""
        return [self.candidate(subnet)]

    def used_modules(self, subnet: Subnet) -> list[nn.Module]:
        return [self.candidate(subnet)]

    def used_bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return _bns(self.used_modules(subnet))


@register_cell("s4", variant="spos")
def _s4_spos_cell(space: S4Space, in_channels: int, channels: int, *, norm: None = None,
                  bn_momentum: float = 0.1) -> SPOSCell:
    return SPOSCell(in_channels, channels, space.candidates(), bn_momentum=bn_momentum)


def run_memo(module: nn.Module, x: Tensor, memo: dict | None) -> Tensor:
    """``module(x)``, looked up in / stored into ``memo`` when given. A memo is valid for one
    input ``x`` and one state of the module (mode, BN statistics): the caller's contract."""
    if memo is None:
        return module(x)
    y = memo.get(module)
    if y is None:
        y = memo[module] = module(x)
    return y


def _bns(mods: Sequence[nn.Module]) -> list[nn.BatchNorm2d]:
    out: list[nn.BatchNorm2d] = []
    seen: set[int] = set()
    for mod in mods:
        for m in mod.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in seen:
                seen.add(id(m))
                out.append(cast(nn.BatchNorm2d, m))  # the cells' norms are all 2-d
    return out
