"""Score a group of candidates batch by batch, computing the work they share once.

Every candidate of a supernet runs the same stem on a batch, and the first cell's paths read
only the stem's output, so in a per-candidate loop (calibrate, evaluate, restore) that work
is repeated for every candidate. Here the loops are swapped: for each calibration batch,
then for each evaluation batch, the candidates of a group run one after the other on that
batch with one ``memo`` (``Supernet.forward(x, arch, memo=...)``), so the stem and each
first-cell path run once per batch for the whole group.

What makes it exact: a shared module's output depends only on the batch and on its own state;
its BN statistics are calibrated once per batch, the same updates every candidate of the
per-candidate loop would make to them. The BNs that differ per candidate (all others a
candidate uses) have their running statistics swapped in and out for each candidate: each
candidate sees exactly the statistics it would see alone. The results are the per-candidate
loop's, bit for bit (tested, and asserted by ``bench/bench_scoring.py``).

Memory: on top of one forward pass, a batch's memo holds the stem's output and the outputs of
the first cell's paths the group uses (at most m x 3 for S4), each the size of one
activation of that batch: at the paper's size (width 128, 32x32, float32) about 0.5 MB per
image each, so ~3.4 GB for an evaluation batch of 500 with all 12 paths. Lower
``score.eval_batch_size`` to shrink it (accuracies do not depend on it).
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

from rankbench.scoring.calibrate import BNState, bns_of, running_stats

__all__ = ["supports_sharing", "score_group"]

_BN = nn.modules.batchnorm._BatchNorm


class _Sharing(Protocol):
    """A network that names its shared modules (:func:`supports_sharing`)."""

    def shared_modules(self, arch: Any) -> list[nn.Module]: ...


def supports_sharing(net: nn.Module) -> bool:
    """True for networks that can reuse shared work across candidates (``shared_modules``)."""
    return hasattr(net, "shared_modules") and hasattr(net, "used_bns")


class _Stats:
    """The running statistics of a list of BNs, as one candidate holds them."""

    __slots__ = ("tensors",)

    def __init__(self, bns: Sequence[_BN], *, reset: bool):
        self.tensors: list[tuple[_BN, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        for b in bns:
            running_mean, running_var = running_stats(b)
            if reset:
                mean, var = torch.zeros_like(running_mean), torch.ones_like(running_var)
                nbt = torch.zeros_like(b.num_batches_tracked) if b.num_batches_tracked is not None else None
            else:
                mean, var = running_mean.clone(), running_var.clone()
                nbt = b.num_batches_tracked.clone() if b.num_batches_tracked is not None else None
            self.tensors.append((b, mean, var, nbt))

    def load(self) -> None:
        for b, mean, var, nbt in self.tensors:
            running_mean, running_var = running_stats(b)
            running_mean.copy_(mean)
            running_var.copy_(var)
            if nbt is not None:  # then b has num_batches_tracked
                cast(torch.Tensor, b.num_batches_tracked).copy_(nbt)

    def save(self) -> None:
        for b, mean, var, nbt in self.tensors:
            running_mean, running_var = running_stats(b)
            mean.copy_(running_mean)
            var.copy_(running_var)
            if nbt is not None:
                nbt.copy_(cast(torch.Tensor, b.num_batches_tracked))


@torch.no_grad()
def score_group(net: nn.Module, group: Sequence[Any], images: torch.Tensor, labels: torch.Tensor, *,
                calib: Sequence[torch.Tensor] | None, reset: bool, batch_size: int) -> list[tuple[float, float]]:
    """(accuracy, mean loss) of each subnet of ``group``, as ``calibrate_bn`` (when ``calib``
    is given, with ``reset``) then ``evaluate`` then a BN restore would give them one by one.

    The network's BN statistics, momenta and module modes are as before when this returns.
    """
    group = list(group)
    state = BNState(net)
    modes = [(m, m.training) for m in net.modules()]
    try:
        stats = None
        if calib is not None:
            stats = _calibrate_group(net, group, calib, reset=reset)
        net.eval()
        correct = [torch.zeros((), dtype=torch.int64, device=labels.device) for _ in group]
        loss = [torch.zeros((), dtype=torch.float64, device=labels.device) for _ in group]
        for i in range(0, len(labels), int(batch_size)):
            x, y = images[i:i + batch_size], labels[i:i + batch_size]
            memo: dict = {}
            for j, s in enumerate(group):
                if stats is not None:
                    stats[j].load()
                out = net(x, s, memo=memo).float()
                loss[j] += F.cross_entropy(out, y, reduction="sum").double()
                correct[j] += (out.argmax(1) == y).sum()
        n = len(labels)
        return [(int(c.item()) / n, float(v.item()) / n) for c, v in zip(correct, loss)]
    finally:
        state.restore()
        for m, training in modes:
            m.training = training


def _calibrate_group(net: nn.Module, group: list, calib: Sequence[torch.Tensor], *, reset: bool) -> list[_Stats]:
    """Calibrate every subnet of ``group``; returns each one's private BN statistics. The
    shared BNs end up calibrated in the network (the same for every subnet)."""
    private: list[list[_BN]] = []  # per subnet: the BNs outside its shared modules
    shared: dict[int, _BN] = {}
    for s in group:
        inside = {id(m) for mod in cast(_Sharing, net).shared_modules(s) for m in mod.modules()}
        private.append([b for b in bns_of(net, s) if id(b) not in inside])
        shared.update((id(b), b) for b in bns_of(net, s) if id(b) in inside)
    if shared.keys() & {id(b) for bns in private for b in bns}:  # else the memo would be wrong
        raise RuntimeError(f"{type(net).__name__}: a BN of a shared module is per-candidate for "
                           f"another subnet; score with group_size=1")
    if reset:  # shared BNs: reset once; cumulative average, as calibrate_bn does for each subnet
        for b in list(shared.values()) + [b for bns in private for b in bns]:
            b.momentum = None
        for b in shared.values():
            b.reset_running_stats()
    stats = [_Stats(bns, reset=reset) for bns in private]
    net.train()
    for x in calib:
        x = x[0] if isinstance(x, (tuple, list)) else x
        memo: dict = {}
        for s, st in zip(group, stats):
            st.load()
            net(x, s, memo=memo)
            st.save()
    return stats
