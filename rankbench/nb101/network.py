"""The stand-alone NAS-Bench-101 network of a cell (nasbench-pytorch's ``Network``)."""
from __future__ import annotations

import torch
from nasbench_pytorch.model import Network
from nasbench_pytorch.model import ModelSpec as _TorchModelSpec

from rankbench.nb101.spec import ModelSpec


def build_network(spec: ModelSpec, *, stem_channels: int = 128, num_stacks: int = 3,
                  cells_per_stack: int = 3, num_classes: int = 10, momentum: float = 0.1,
                  eps: float = 1e-5) -> torch.nn.Module:
    """NB101's network for ``spec``; Placeholder dummies are left in, see :func:`count_parameters`."""
    tspec = _TorchModelSpec(spec.matrix.astype(int), list(spec.ops))
    return Network(tspec, num_labels=num_classes, stem_out_channels=stem_channels,
                   num_stacks=num_stacks, num_modules_per_stack=cells_per_stack,
                   momentum=momentum, eps=eps)


class IgnoreArch(torch.nn.Module):
    """Wraps a stand-alone network so that the supernet training loop can call ``model(x, arch)``."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, arch=None):
        return self.net(x)


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters as NB101 counts them: nasbench-pytorch's Placeholder dummies excluded."""
    total = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".a") and p.ndim == 0:  # Placeholder.a
            continue
        if name.endswith("dev_param") and p.numel() == 0:
            continue
        total += p.numel()
    return total


def nb101_parameters(spec: ModelSpec, **kw) -> int:
    """NB101 ``trainable_parameters`` of ``spec`` (defaults: NB101's 128-channel network)."""
    return count_parameters(build_network(spec, **kw))
