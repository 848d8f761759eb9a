"""SynFlow (Tanaka et al., NeurIPS 2020) as a zero-cost proxy (Abdelfattah et al., ICLR 2021).

Followed: SamsungLabs/zero-cost-nas ``foresight/pruners/measures/synflow.py`` (measure
``synflow``, ``bn=False``), written from the formula: a copy of the network with every
BatchNorm removed (zero-cost-nas replaces BN's forward by the identity), every parameter and
buffer replaced by its absolute value, in float64; one all-ones input image of the batch's
shape; R = sum of the logits; score = sum over conv/linear weights of |w * dR/dw|. No data
and no labels are read. Deviation: none in the value (the copy is the same network rebuilt
from the same seed, or a ``deepcopy``, whose BNs are swapped for ``nn.Identity``). Higher =
better. Values grow with depth and width (products of weights): large, but finite in float64.
"""
from __future__ import annotations

import torch
from torch import nn

from rankbench.proxies._base import Probe, prunable_layers, register_proxy, total


def _without_bn(net: nn.Module) -> nn.Module:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _without_bn(child)
    return net


@register_proxy("synflow", needs={"network"}, source="SamsungLabs/zero-cost-nas foresight/pruners/measures/synflow.py",
                label="SynFlow")
def synflow(probe: Probe) -> float:
    """SynFlow: sum of |w * dR/dw| over conv/linear weights of the BN-free, |w|, float64 copy
    of the network on an all-ones input (R = sum of logits). Higher = better."""
    net = _without_bn(probe.fresh_network()).double()
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point():
                t.abs_()
    weights = [m.weight for m in prunable_layers(net)]
    ones = torch.ones((1,) + tuple(probe.x.shape[1:]), dtype=torch.float64, device=probe.x.device)
    r = net(ones).sum()
    g = torch.autograd.grad(r, weights, allow_unused=True)
    return total((w.detach() * gi).abs() for w, gi in zip(weights, g) if gi is not None)
