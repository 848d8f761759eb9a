"""NB101's operations as PyTorch modules (the same layers as nasbench-pytorch's Network).

Blocks whose structure is static carry the class attribute ``compilable = True``: their
``forward`` takes tensors only, so they can be compiled one by one (``torch.compile``) while
the supernet's choice of blocks stays in Python.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3

__all__ = ["ConvBnRelu", "PathBlock", "Conv1x1", "Classifier", "make_op", "projection", "op_key"]


class ConvBnRelu(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU, NB101's building block."""

    compilable = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, bn_momentum: float = 0.1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            nn.ReLU(inplace=False),
        )


class PathBlock(nn.Sequential):
    """A fixed chain of blocks, e.g. a path: the cell input's projection, then an op."""

    compilable = True


class Conv1x1(nn.Conv2d):
    """1x1 convolution without bias (S4's aggregation conv, node 5)."""

    compilable = True

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1, bias=False)


class Classifier(nn.Linear):
    """Global average pool over the spatial dimensions, then a linear layer ([N, C, H, W] ->
    [N, classes]); its parameters are the linear layer's (``weight``, ``bias``)."""

    compilable = True

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(torch.mean(x, dim=(2, 3)))


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
