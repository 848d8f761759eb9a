"""NB101's operations as PyTorch modules (the same layers as nasbench-pytorch's Network)."""
from __future__ import annotations

from torch import nn

from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3


class ConvBnRelu(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU, NB101's building block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, bn_momentum: float = 0.1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            nn.ReLU(inplace=False),
        )


def make_op(op: str, channels: int, bn_momentum: float = 0.1) -> nn.Module:
    """One NB101 vertex op at ``channels`` in and out."""
    if op == CONV3X3:
        return ConvBnRelu(channels, channels, 3, bn_momentum)
    if op == CONV1X1:
        return ConvBnRelu(channels, channels, 1, bn_momentum)
    if op == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB101 op {op!r}")


def projection(in_channels: int, out_channels: int, bn_momentum: float = 0.1) -> nn.Module:
    """NB101's 1x1 conv-BN-ReLU on every edge out of the cell input."""
    return ConvBnRelu(in_channels, out_channels, 1, bn_momentum)


def op_key(op: str) -> str:
    """ModuleDict keys may not contain '.'; NB101 op names do not, but keep one place for it."""
    return op.replace(".", "_")
