"""A multi-path subnet: which choice nodes are active and which op each one runs."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rankbench.nb101.spec import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, ModelSpec

#: one-character op codes used in subnet names: "3" conv3x3, "1" conv1x1, "m" maxpool, "-" off
OP_CHAR = {CONV3X3: "3", CONV1X1: "1", MAXPOOL3X3: "m", None: "-"}
CHAR_OP = {v: k for k, v in OP_CHAR.items()}


@dataclass(frozen=True)
class Subnet:
    """One architecture of a multi-path space.

    ``ops[i]`` is the op of choice node ``i + 1`` or ``None`` when that node is inactive.
    ``code`` is a compact name, e.g. ``"3m--"``: node 1 conv3x3, node 2 maxpool, 3 and 4 off.
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

    @property
    def code(self) -> str:
        return "".join(OP_CHAR[o] for o in self.ops)

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
        for i in self.active:
            matrix[0, i + 1] = 1
            matrix[i + 1, 5] = 1
            ops[i + 1] = self.ops[i]
        matrix[5, 6] = 1
        return ModelSpec(matrix, ops)

    @property
    def hash(self) -> str:
        return self.spec.hash

    def __str__(self) -> str:
        return self.code
