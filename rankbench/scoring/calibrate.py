"""BN post-calibration: re-estimate a subnet's BatchNorm running statistics before scoring it.

Two ways, both found in the field:

- ``reset=True`` (rankbench's ``clean`` protocol): the running statistics of the BNs the
  subnet uses are reset and re-estimated as a *cumulative* average over the calibration
  batches (``momentum=None``), so they are exactly the mean of the batch means and of the
  (unbiased) batch variances, independent of what the supernet held before;
- ``reset=False`` (the public MixPath code): the trained statistics are kept and updated by
  the BNs' usual exponential moving average (momentum unchanged).

:class:`BNState` snapshots every BN's statistics once and restores, in memory, only the BNs a
candidate touched: no deep copy of the network, no reload from disk.
"""
from __future__ import annotations

from typing import Any, Iterable, cast

import torch
from torch import nn

__all__ = ["calibrate_bn", "bns_of", "BNState", "running_stats"]

_BN = nn.modules.batchnorm._BatchNorm


def bns_of(net: nn.Module, arch: Any = None) -> list[_BN]:
    """The BatchNorms ``arch`` uses (``net.used_bns(arch)``), or every BN of ``net`` when
    ``arch`` is None or ``net`` cannot tell. Only BNs that track running statistics."""
    used_bns = getattr(net, "used_bns", None)
    if arch is not None and used_bns is not None:
        bns = list(used_bns(arch))
    else:
        bns = [m for m in net.modules() if isinstance(m, _BN)]
    return [b for b in bns if b.track_running_stats and b.running_mean is not None]


def running_stats(b: _BN) -> tuple[torch.Tensor, torch.Tensor]:
    """A BN's running mean and variance (those :func:`bns_of` returns all have them)."""
    mean, var = b.running_mean, b.running_var
    if mean is None or var is None:  # the TypeError using None as a tensor would raise
        raise TypeError(f"{type(b).__name__} keeps no running statistics (track_running_stats=False)")
    return mean, var


def _forward(net: nn.Module, x: torch.Tensor, arch: Any) -> torch.Tensor:
    return net(x) if arch is None else net(x, arch)


def calibrate_bn(net: nn.Module, arch: Any, batches: Iterable, *, reset: bool = True) -> list[_BN]:
    """Re-estimate the running statistics of the BNs ``arch`` uses from ``batches``.

    ``batches`` yields image tensors or ``(images, labels)`` pairs (labels are ignored), on
    the network's device: training data, normally. The forward passes run in train mode under
    ``torch.no_grad()``; every module's train/eval mode is restored afterwards. With
    ``reset`` the statistics are reset and averaged cumulatively (momentum None, restored
    after); without, they are updated with the BNs' own momentum. ``arch=None`` calls
    ``net(x)`` and calibrates every BN. Returns the BNs whose statistics changed.
    """
    bns = bns_of(net, arch)
    modes = [(m, m.training) for m in net.modules()]
    momenta = [b.momentum for b in bns]
    try:
        if reset:
            for b in bns:
                b.reset_running_stats()
                b.momentum = None
        net.train()
        with torch.no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                _forward(net, x, arch)
    finally:
        for b, mom in zip(bns, momenta):
            b.momentum = mom
        for m, training in modes:
            m.training = training
    return bns


class BNState:
    """An in-memory snapshot of every BN's running statistics (and momentum) of ``net``.

    ``restore(bns)`` puts the snapshot back into the given BNs (those a candidate touched);
    ``restore()`` into all of them. Costs one copy of the BN buffers, a few kB per BN.
    """

    def __init__(self, net: nn.Module):
        self._saved: dict[int, tuple[_BN, torch.Tensor, torch.Tensor, torch.Tensor | None, Any]] = {}
        for b in bns_of(net):
            nbt = b.num_batches_tracked.detach().clone() if b.num_batches_tracked is not None else None
            mean, var = running_stats(b)
            self._saved[id(b)] = (b, mean.detach().clone(), var.detach().clone(), nbt, b.momentum)

    def restore(self, bns: Iterable[_BN] | None = None) -> None:
        targets = self._saved.values() if bns is None else (self._saved[id(b)] for b in bns)
        with torch.no_grad():
            for b, mean, var, nbt, momentum in targets:
                running_mean, running_var = running_stats(b)
                running_mean.copy_(mean)
                running_var.copy_(var)
                if nbt is not None:  # then b has num_batches_tracked
                    cast(torch.Tensor, b.num_batches_tracked).copy_(nbt)
                b.momentum = momentum
