"""Normalisation after node 5's aggregation: where vanilla BN, shadow BN and scaling differ.

Each variant is a module ``forward(x, subnet)`` plus ``bns(subnet)``, the BatchNorms that
subnet uses (for calibration and for counting parameters).
"""
from __future__ import annotations

from torch import Tensor, nn

from rankbench._registry import Registry
from rankbench.spaces.base import Subnet

NORMS: Registry = Registry("normalisation")


@NORMS.register("bn")
class VanillaBN(nn.Module):
    """One BatchNorm for every number of active paths (the naive baseline)."""

    def __init__(self, channels: int, m: int, bn_momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, momentum=bn_momentum)

    def forward(self, x: Tensor, subnet: Subnet) -> Tensor:
        return self.bn(x)

    def bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return [self.bn]


@NORMS.register("lsbn")
class LinearShadowBN(nn.Module):
    """Linear shadow BN: m BatchNorms, SBN_k normalises steps with k active paths."""

    def __init__(self, channels: int, m: int, bn_momentum: float = 0.1):
        super().__init__()
        self.sbn = nn.ModuleList(nn.BatchNorm2d(channels, momentum=bn_momentum) for _ in range(m))

    def forward(self, x: Tensor, subnet: Subnet) -> Tensor:
        return self.sbn[subnet.num_paths - 1](x)

    def bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return [self.sbn[subnet.num_paths - 1]]


def _subset_key(subnet: Subnet) -> str:
    return "n" + "".join(str(i + 1) for i in subnet.active)


@NORMS.register("esbn")
class ExponentialShadowBN(nn.Module):
    """Exponential shadow BN: one BatchNorm per subset of active nodes (2^m - 1)."""

    def __init__(self, channels: int, m: int, bn_momentum: float = 0.1):
        super().__init__()
        keys = []
        for mask in range(1, 2**m):
            keys.append("n" + "".join(str(i + 1) for i in range(m) if mask >> i & 1))
        self.sbn = nn.ModuleDict({k: nn.BatchNorm2d(channels, momentum=bn_momentum) for k in sorted(keys)})

    def forward(self, x: Tensor, subnet: Subnet) -> Tensor:
        return self.sbn[_subset_key(subnet)](x)

    def bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return [self.sbn[_subset_key(subnet)]]


@NORMS.register("scale")
class ScaledBN(nn.Module):
    """Simple scaling: divide the k-path sum by k, then one BatchNorm."""

    def __init__(self, channels: int, m: int, bn_momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, momentum=bn_momentum)

    def forward(self, x: Tensor, subnet: Subnet) -> Tensor:
        return self.bn(x / subnet.num_paths)

    def bns(self, subnet: Subnet) -> list[nn.BatchNorm2d]:
        return [self.bn]
