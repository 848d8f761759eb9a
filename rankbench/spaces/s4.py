"""MixPath's NAS-Bench-101 subspace S4 (as in the public MixPath code).

Cell: input -> choice nodes 1..m (each active node runs conv1x1 / conv3x3 / maxpool3x3 on a
projection of the input) -> node 5 (conv1x1-bn-relu, sums the active nodes) -> output.
m = 4 gives 255 subnets in 34 NB101 hash classes (the paths are parallel, so subnets that only
swap which node holds which op are isomorphic).
"""
from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from typing import Sequence

from rankbench.nb101.spec import CONV1X1, CONV3X3, MAXPOOL3X3
from rankbench.spaces import register_space
from rankbench.spaces.base import Subnet

#: op order used for sampling (index = public code's op choice)
S4_OPS = (CONV1X1, CONV3X3, MAXPOOL3X3)


@register_space("s4")
class S4Space:
    """NB101 subspace S4: up to m parallel paths, 3 ops each, summed by node 5."""

    name = "s4"
    ops = S4_OPS

    def __init__(self, m: int = 4):
        if not isinstance(m, int) or not 1 <= m <= 4:
            raise ValueError(f"S4 allows m = 1..4 active paths (choice nodes 1..4), got m={m!r}")
        self.m = m
        self._subnets: list[Subnet] | None = None

    def __repr__(self) -> str:
        return f"S4Space(m={self.m})"

    def subnets(self) -> list[Subnet]:
        """Every distinct subnet, ordered by number of paths, then active nodes, then ops."""
        if self._subnets is None:
            out = []
            for k in range(1, self.m + 1):
                for nodes in itertools.combinations(range(self.m), k):
                    for ops in itertools.product(self.ops, repeat=k):
                        choice: list[str | None] = [None] * self.m
                        for node, op in zip(nodes, ops):
                            choice[node] = op
                        out.append(Subnet(tuple(choice)))
            self._subnets = out
        return list(self._subnets)

    def hash_classes(self) -> "OrderedDict[str, list[Subnet]]":
        """NB101 hash -> the isomorphic subnets that share it, in :meth:`subnets` order."""
        classes: OrderedDict[str, list[Subnet]] = OrderedDict()
        for s in self.subnets():
            classes.setdefault(s.hash, []).append(s)
        return classes

    def sample(self, rng: random.Random) -> Subnet:
        """As the public code: m' uniform in 1..m, then m' distinct nodes, then an op per node."""
        k = rng.randint(1, self.m)
        nodes = sorted(rng.sample(range(self.m), k))
        choice: list[str | None] = [None] * self.m
        for node in nodes:
            choice[node] = self.ops[rng.randrange(len(self.ops))]
        return Subnet(tuple(choice))

    def sample_arch(self, rng: random.Random, num_cells: int, per_cell: bool = False) -> Subnet | list[Subnet]:
        """One training step's architecture: one subnet shared by all cells (the public
        code's default) or one drawn per cell."""
        if per_cell:
            return [self.sample(rng) for _ in range(num_cells)]
        return self.sample(rng)

    def check(self, subnet: Subnet | Sequence[Subnet]) -> None:
        for s in [subnet] if isinstance(subnet, Subnet) else subnet:
            if s.m != self.m:
                raise ValueError(f"subnet {s.code!r} has {s.m} choice nodes; this space has m={self.m}")
