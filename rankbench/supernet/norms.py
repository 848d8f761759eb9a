"""Normalisation after a sum of inputs: where vanilla BN, shadow BN and scaling differ.

A norm knows nothing of any search space. A cell builds one per place where several inputs
are summed (S4: node 5; NB101: a vertex), naming the inputs that *can* be summed there
(``inputs``, small integer ids: S4's choice nodes 1..m, NB101's predecessor vertices), and
calls it with the ids actually summed in this forward pass (``active``, sorted, non-empty):

    norm = NORMS.get("lsbn")(channels, inputs=(1, 2, 3, 4), bn_momentum=0.1)
    y = norm(x, active=(1, 3))          # SBN_2 (two summed inputs)
    norm.bns((1, 3))                    # the BatchNorms that pass used

LSBN keys on the fan-in ``len(active)``, ESBN on the set ``active``, scaling divides by the
fan-in, vanilla BN ignores it. ``NORMS.get(name)`` is the ``norm=`` factory cells receive.
"""
from __future__ import annotations

from typing import Callable, Sequence, cast

from torch import Tensor, nn

from rankbench._registry import Registry

__all__ = ["NORMS", "NormFactory", "VanillaBN", "LinearShadowBN", "ExponentialShadowBN", "ScaledBN",
           "subset_key", "resolve_norm"]

NORMS: Registry = Registry("normalisation")

#: ``factory(channels, inputs, bn_momentum=...) -> norm module``
NormFactory = Callable[..., "_Norm"]


def resolve_norm(norm: str | NormFactory) -> NormFactory:
    """A norm factory from a registered name, or the factory itself."""
    return NORMS.get(norm) if isinstance(norm, str) else norm


def subset_key(active: Sequence[int]) -> str:
    """ModuleDict key of a set of input ids: ``"n13"`` for inputs 1 and 3 (``"n1_13"`` once
    an id has two digits)."""
    ids = [str(i) for i in sorted(active)]
    return "n" + ("".join(ids) if all(len(i) == 1 for i in ids) else "_".join(ids))


class _Norm(nn.Module):
    """A norm: ``forward(x, active)`` normalises a sum of the ``active`` inputs."""

    def __init__(self, channels: int, inputs: Sequence[int], bn_momentum: float = 0.1):
        super().__init__()
        self.inputs = tuple(inputs)
        if not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"a norm needs distinct input ids, got {inputs!r}")

    def bns(self, active: Sequence[int]) -> list[nn.BatchNorm2d]:
        """The BatchNorms a pass summing ``active`` goes through (every norm says)."""
        raise NotImplementedError


@NORMS.register("bn")
class VanillaBN(_Norm):
    """One BatchNorm whatever is summed (the naive baseline)."""

    def __init__(self, channels: int, inputs: Sequence[int], bn_momentum: float = 0.1):
        super().__init__(channels, inputs, bn_momentum)
        self.bn = nn.BatchNorm2d(channels, momentum=bn_momentum)

    def forward(self, x: Tensor, active: Sequence[int]) -> Tensor:
        return self.bn(x)

    def bns(self, active: Sequence[int]) -> list[nn.BatchNorm2d]:
        return [self.bn]


@NORMS.register("lsbn")
class LinearShadowBN(_Norm):
    """Linear shadow BN: one BatchNorm per fan-in; SBN_k normalises sums of k inputs."""

    def __init__(self, channels: int, inputs: Sequence[int], bn_momentum: float = 0.1):
        super().__init__(channels, inputs, bn_momentum)
        self.sbn = nn.ModuleList(nn.BatchNorm2d(channels, momentum=bn_momentum) for _ in self.inputs)

    def forward(self, x: Tensor, active: Sequence[int]) -> Tensor:
        return self.sbn[len(active) - 1](x)

    def bns(self, active: Sequence[int]) -> list[nn.BatchNorm2d]:
        return [cast(nn.BatchNorm2d, self.sbn[len(active) - 1])]


@NORMS.register("esbn")
class ExponentialShadowBN(_Norm):
    """Exponential shadow BN: one BatchNorm per non-empty set of inputs (2^n - 1)."""

    def __init__(self, channels: int, inputs: Sequence[int], bn_momentum: float = 0.1):
        super().__init__(channels, inputs, bn_momentum)
        n = len(self.inputs)
        keys = [subset_key([self.inputs[i] for i in range(n) if mask >> i & 1]) for mask in range(1, 2**n)]
        self.sbn = nn.ModuleDict({k: nn.BatchNorm2d(channels, momentum=bn_momentum) for k in sorted(keys)})

    def forward(self, x: Tensor, active: Sequence[int]) -> Tensor:
        return self.sbn[subset_key(active)](x)

    def bns(self, active: Sequence[int]) -> list[nn.BatchNorm2d]:
        return [cast(nn.BatchNorm2d, self.sbn[subset_key(active)])]


@NORMS.register("scale")
class ScaledBN(_Norm):
    """Simple scaling: divide the sum of k inputs by k, then one BatchNorm."""

    def __init__(self, channels: int, inputs: Sequence[int], bn_momentum: float = 0.1):
        super().__init__(channels, inputs, bn_momentum)
        self.bn = nn.BatchNorm2d(channels, momentum=bn_momentum)

    def forward(self, x: Tensor, active: Sequence[int]) -> Tensor:
        return self.bn(x / len(active))

    def bns(self, active: Sequence[int]) -> list[nn.BatchNorm2d]:
        return [self.bn]
