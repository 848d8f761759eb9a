"""Supernet cells for S4-style multi-path spaces.

:class:`MixPathCell` shares weights across subnets: every (choice node, op) pair owns a 1x1
projection from the cell input followed by its op; node 5 sums the active nodes, then
1x1 conv -> normalisation variant -> ReLU. :class:`SPOSCell` gives every distinct path
combination (NB101 hash class) its own weights, as the SPOS baseline of the paper.

Both take an optional ``memo`` (a dict, one per input batch): the outputs of the modules that
read only the cell input (:meth:`input_modules`) are computed once and reused by every
subnet run on the same input. Scoring uses it on the first cell, whose input, the stem's
output, is the same for every candidate.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn

from rankbench.spaces.base import Subnet
from rankbench.supernet.norms import NORMS
from rankbench.supernet.ops import make_op, op_key, projection


class MixPathCell(nn.Module):
    """Weight-sharing multi-path cell; ``norm`` names the aggregation normalisation."""

    def __init__(self, in_channels: int, channels: int, m: int, ops: Sequence[str], norm: str = "bn",
                 bn_momentum: float = 0.1):
        super().__init__()
        self.m = m
        self.paths = nn.ModuleList(
            nn.ModuleDict({op_key(op): nn.Sequential(projection(in_channels, channels, bn_momentum),
                                                     make_op(op, channels, bn_momentum)) for op in ops})
            for _ in range(m)
        )
        self.node5 = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = NORMS.get(norm)(channels, m, bn_momentum)
        self.relu = nn.ReLU()

    def path(self, node: int, op: str) -> nn.Module:
        """Projection + op of choice node ``node`` (0-based) running ``op``."""
        return self.paths[node][op_key(op)]

    def aggregate(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        """Node 5's input: the sum of the active paths' outputs."""
        out = None
        for path in self.input_modules(subnet):
            y = run_memo(path, x, memo)
            out = y if out is None else out + y
        return out

    def forward(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        return self.relu(self.norm(self.node5(self.aggregate(x, subnet, memo)), subnet))

    def input_modules(self, subnet: Subnet) -> list[nn.Module]:
        """The modules of ``subnet`` that read only the cell input: its active paths, in order."""
        return [self.paths[i][op_key(subnet.ops[i])] for i in subnet.active]

    def used_modules(self, subnet: Subnet) -> list[nn.Module]:
        return self.input_modules(subnet) + [self.node5] + list(self.norm.bns(subnet))

    def used_bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return _bns(self.used_modules(subnet))


class _StandaloneCell(nn.Module):
    """One NB101 S4 cell with its own weights: paths for a multiset of ops, node 5, BN."""

    def __init__(self, in_channels: int, channels: int, ops: Sequence[str], bn_momentum: float):
        super().__init__()
        self.ops = tuple(ops)
        self.paths = nn.ModuleList(
            nn.Sequential(projection(in_channels, channels, bn_momentum), make_op(op, channels, bn_momentum))
            for op in ops
        )
        self.node5 = nn.Conv2d(channels, channels, 1, bias=False)
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
        classes: OrderedDict[str, list[Subnet]] = OrderedDict()
        for s in subnets:
            classes.setdefault(s.hash, []).append(s)
        self._candidate_of: dict[Subnet, str] = {}
        cands = {}
        for idx, (h, members) in enumerate(classes.items()):
            key = f"c{idx:02d}"
            rep = members[0]
            cands[key] = _StandaloneCell(in_channels, channels, sorted(op for op in rep.ops if op), bn_momentum)
            for s in members:
                self._candidate_of[s] = key
        self.candidates = nn.ModuleDict(cands)

    def candidate(self, subnet: Subnet) -> _StandaloneCell:
        try:
            return self.candidates[self._candidate_of[subnet]]
        except KeyError:
            raise ValueError(f"subnet {subnet.code!r} is not in this SPOS supernet's space") from None

    def forward(self, x: Tensor, subnet: Subnet, memo: dict | None = None) -> Tensor:
        return run_memo(self.candidate(subnet), x, memo)

    def input_modules(self, subnet: Subnet) -> list[nn.Module]:
        """The whole candidate reads only the cell input."""
        return [self.candidate(subnet)]

    def used_modules(self, subnet: Subnet) -> list[nn.Module]:
        return [self.candidate(subnet)]

    def used_bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return _bns(self.used_modules(subnet))


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
    out, seen = [], set()
    for mod in mods:
        for m in mod.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in seen:
                seen.add(id(m))
                out.append(m)
    return out


__all__ = ["MixPathCell", "SPOSCell", "run_memo"]
_ = torch  # torch is re-exported by type hints only
