"""MixPath's NAS-Bench-101 subspace S4 (as in the public MixPath code).

Cell: input -> choice nodes 1..m (each active node runs conv1x1 / conv3x3 / maxpool3x3 on a
projection of the input) -> node 5 (conv1x1-bn-relu, sums the active nodes) -> output.
m = 4 gives 255 subnets in 34 NB101 hash classes (the paths are parallel, so subnets that only
swap which node holds which op are isomorphic).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence, cast

import numpy as np

from rankbench.nb101.spec import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, ModelSpec
from rankbench.spaces import register_space
from rankbench.spaces.base import SpaceMixin, SpaceSettings

__all__ = ["Subnet", "S4Space", "S4Settings", "S4_OPS", "OP_CHAR", "CHAR_OP"]

#: op order used for sampling (index = public code's op choice)
S4_OPS = (CONV1X1, CONV3X3, MAXPOOL3X3)

#: one-character op codes used in subnet names: "3" conv3x3, "1" conv1x1, "m" maxpool, "-" off
OP_CHAR = {CONV3X3: "3", CONV1X1: "1", MAXPOOL3X3: "m", None: "-"}
CHAR_OP = {v: k for k, v in OP_CHAR.items()}


@dataclass(frozen=True)
class Subnet:
    """One architecture of S4 (an :class:`~rankbench.spaces.base.Arch`).

    ``ops[i]`` is the op of choice node ``i + 1`` or ``None`` when that node is inactive.
    ``name`` (also ``code``) is compact, e.g. ``"3m--"``: node 1 conv3x3, node 2 maxpool,
    3 and 4 off.
    """

    ops: tuple[str | None, ...]

    def __post_init__(self):
        if not any(op is not None for op in self.ops):
            raise ValueError("a subnet needs at least one active path")
        for op in self.ops:
            if op not in OP_CHAR:
                raise ValueError(f"unknown op {op!r}; expected one of {[o for o in OP_CHAR if o]} or None")

    @classmethod
    def from_code(cls, code: str) -> "Subnet":
        try:
            return cls(tuple(CHAR_OP[c] for c in code))
        except KeyError as e:
            raise ValueError(f"subnet code {code!r}: unknown character {e.args[0]!r}; use 3, 1, m or -") from None

    from_name = from_code

    @property
    def name(self) -> str:
        return "".join(OP_CHAR[o] for o in self.ops)

    @property
    def code(self) -> str:
        """The same as :attr:`name` (the name S4 subnets had before spaces were plug-ins)."""
        return self.name

    @property
    def m(self) -> int:
        return len(self.ops)

    @property
    def active(self) -> tuple[int, ...]:
        """0-based indices of the active choice nodes."""
        return tuple(i for i, op in enumerate(self.ops) if op is not None)

    @property
    def num_paths(self) -> int:
        return len(self.active)

    @cached_property
    def spec(self) -> ModelSpec:
        """The NB101 cell: input -> every active node -> node 5 (conv1x1, sums them) -> output.

        Built over NB101's 7 vertices (input, 4 choice nodes, node 5, output); inactive nodes
        are pruned by :class:`ModelSpec`, as NB101 does.
        """
        n = 7
        matrix = np.zeros((n, n), dtype=np.int8)
        ops = [INPUT] + [CONV3X3] * 4 + [CONV1X1, OUTPUT]
        for i, op in enumerate(self.ops):  # the active nodes
            if op is not None:
                matrix[0, i + 1] = 1
                matrix[i + 1, 5] = 1
                ops[i + 1] = op
        matrix[5, 6] = 1
        return ModelSpec(matrix, ops)

    @property
    def hash(self) -> str:
        return self.spec.hash

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class S4Settings(SpaceSettings):
    """``[space]`` for S4: ``m``, the number of choice nodes (1..4; the public code: 4)."""

    name: str = "s4"
    m: int = 4  # maximum number of active paths (candidate nodes 1..m)

    def __post_init__(self):
        if isinstance(self.m, bool) or not isinstance(self.m, int) or not 1 <= self.m <= 4:
            raise ValueError(f"S4 allows m = 1..4 active paths (choice nodes 1..4), got m={self.m!r}")


@register_space("s4", settings=S4Settings)
class S4Space(SpaceMixin):
    """NB101 subspace S4: up to m parallel paths, 3 ops each, summed by node 5."""

    name = "s4"
    ops = S4_OPS
    group_column = "num_paths"

    def __init__(self, m: int = 4):
        S4Settings(m=m)  # checks m
        self.m = m
        self._subnets: list[Subnet] | None = None
        self._by_hash: dict[str, Subnet] | None = None

    def __repr__(self) -> str:
        return f"S4Space(m={self.m})"

    def settings(self) -> dict[str, int]:
        return {"m": self.m}

    def candidates(self, n: int = 0, seed: int = 0) -> list[Subnet]:
        """Every distinct subnet, ordered by number of paths, then active nodes, then ops;
        with ``n``, that many drawn with ``seed`` (kept in this order)."""
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
        if 0 < n < len(self._subnets):
            keep = sorted(random.Random(seed).sample(range(len(self._subnets)), n))
            return [self._subnets[i] for i in keep]
        return list(self._subnets)

    def subnets(self) -> list[Subnet]:
        """Every distinct subnet (:meth:`candidates`)."""
        return self.candidates()

    def hash_classes(self) -> dict[str, list[Subnet]]:
        """NB101 hash -> the isomorphic subnets that share it, in :meth:`candidates` order."""
        return super().hash_classes()

    def describe(self, arch: Subnet) -> dict[str, int]:
        return {"num_paths": int(arch.num_paths)}

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
        return super().sample_arch(rng, num_cells, per_cell)

    def arch_from_name(self, name: str) -> Subnet:
        s = Subnet.from_code(name)
        self.check(s)
        return s

    def arch_from_spec(self, spec: ModelSpec) -> Subnet:
        """The first subnet (in :meth:`candidates` order) whose NB101 graph is ``spec``'s."""
        if self._by_hash is None:
            self._by_hash = {h: members[0] for h, members in self.hash_classes().items()}
        try:
            return self._by_hash[spec.hash]
        except KeyError:
            raise ValueError(f"this NB101 cell is not in {self!r} (hash {spec.hash})") from None

    def check(self, subnet: Subnet | Sequence[Subnet]) -> None:
        for s in subnet if isinstance(subnet, (list, tuple)) else [cast(Subnet, subnet)]:
            if s.m != self.m:
                raise ValueError(f"subnet {s.name!r} has {s.m} choice nodes; this space has m={self.m}")
