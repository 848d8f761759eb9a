"""NAS-Bench-101 cell specs: validation, pruning and the official isomorphism-invariant hash.

A cell is an upper-triangular 0/1 adjacency matrix over at most 7 vertices plus one op per
vertex (``input``, the three NB101 ops, ``output``). Hashing uses nasbench-pytorch's
``graph_util.hash_module`` on a NumPy matrix (its own ``ModelSpec.hash_spec`` keeps a torch
tensor and fails under NumPy 2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
#: NB101's op vocabulary in its canonical order: the hash labels are these indices.
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
#: Integer codes used in NB101 dumps: -1 input, -2 output, 0.. the ops above.
OP_CODES = {INPUT: -1, OUTPUT: -2, CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2}
CODE_TO_OP = {v: k for k, v in OP_CODES.items()}
#: short names accepted wherever an op is given (CLI, ModelSpec); specs always hold the full names
OP_ALIASES = {"conv3x3": CONV3X3, "conv1x1": CONV1X1, "maxpool3x3": MAXPOOL3X3}
MAX_VERTICES = 7
MAX_EDGES = 9


class InvalidSpecError(ValueError):
    """A cell spec that is not a valid NAS-Bench-101 cell; the message says what and where."""


def _as_matrix(matrix) -> np.ndarray:
    if isinstance(matrix, str):
        return matrix_from_string(matrix)
    arr = np.asarray(matrix)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidSpecError(f"adjacency must be a square matrix, got shape {arr.shape}")
    if not np.isin(arr, (0, 1)).all():
        bad = np.argwhere(~np.isin(arr, (0, 1)))[0]
        raise InvalidSpecError(
            f"adjacency entries must be 0 or 1; entry [{bad[0]},{bad[1]}] is {arr[tuple(bad)]!r}"
        )
    return arr.astype(np.int8)


def matrix_from_string(text: str) -> np.ndarray:
    """Parse NB101's row-major 0/1 string ("0110000..."), whose length must be a square."""
    text = text.strip()
    n = int(round(len(text) ** 0.5))
    if n * n != len(text) or not text:
        raise InvalidSpecError(
            f"adjacency string has {len(text)} characters; it must be n*n 0/1 digits, row-major "
            f"(49 for a 7-vertex cell)"
        )
    if set(text) - {"0", "1"}:
        raise InvalidSpecError(f"adjacency string may hold only 0 and 1, got {sorted(set(text) - {'0', '1'})}")
    return np.frombuffer(text.encode(), dtype=np.uint8).reshape(n, n).astype(np.int8) - ord("0")


def matrix_to_string(matrix: np.ndarray) -> str:
    return "".join(str(int(v)) for v in np.asarray(matrix).ravel())


def _normalise_ops(ops: Sequence) -> list[str]:
    out = []
    for i, op in enumerate(ops):
        if isinstance(op, (int, np.integer)):
            if int(op) not in CODE_TO_OP:
                raise InvalidSpecError(f"op code {op!r} at vertex {i} is not an NB101 code (-2..2)")
            op = CODE_TO_OP[int(op)]
        op = str(op).strip()
        op = OP_ALIASES.get(op, op)
        if op not in OP_CODES:
            raise InvalidSpecError(
                f"op {op!r} at vertex {i} is not an NB101 op; allowed: input, output, {', '.join(OPS)} "
                f"(or {', '.join(OP_ALIASES)})"
            )
        out.append(op)
    return out


def _reach(matrix: np.ndarray, start: int, forward: bool) -> set[int]:
    seen, frontier = {start}, [start]
    n = matrix.shape[0]
    while frontier:
        v = frontier.pop()
        nbrs = np.nonzero(matrix[v] if forward else matrix[:, v])[0]
        for w in nbrs.tolist():
            if w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen if n else set()


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A validated, pruned NAS-Bench-101 cell.

    ``ModelSpec(matrix, ops)`` validates the raw spec (shape, 0/1, upper-triangular, at most
    7 vertices and 9 edges, first op ``input`` and last ``output``, only NB101 ops, input
    connected to output) and prunes vertices that are not on an input->output path, as NB101
    does. ``matrix``/``ops`` are the pruned cell; ``hash`` is NB101's key.
    """

    matrix: np.ndarray
    ops: tuple[str, ...]
    original_matrix: np.ndarray = field(repr=False)
    original_ops: tuple[str, ...] = field(repr=False)

    def __init__(self, matrix, ops: Sequence):
        m = _as_matrix(matrix)
        ops_n = _normalise_ops(list(ops))
        n = m.shape[0]
        if n != len(ops_n):
            raise InvalidSpecError(f"adjacency is {n}x{n} but {len(ops_n)} ops were given; they must match")
        if n < 2:
            raise InvalidSpecError("a cell needs at least the input and output vertices")
        if n > MAX_VERTICES:
            raise InvalidSpecError(f"{n} vertices; NB101 cells have at most {MAX_VERTICES}")
        if np.tril(m).any():
            i, j = np.argwhere(np.tril(m))[0]
            raise InvalidSpecError(
                f"edge {i}->{j} is on or below the diagonal; the adjacency must be strictly "
                f"upper-triangular (a DAG in topological order)"
            )
        edges = int(m.sum())
        if edges > MAX_EDGES:
            raise InvalidSpecError(f"{edges} edges; NB101 cells have at most {MAX_EDGES}")
        if ops_n[0] != INPUT or ops_n[-1] != OUTPUT:
            raise InvalidSpecError(f"first op must be 'input' and last 'output', got {ops_n[0]!r} .. {ops_n[-1]!r}")
        for i, op in enumerate(ops_n[1:-1], start=1):
            if op in (INPUT, OUTPUT):
                raise InvalidSpecError(f"vertex {i} is {op!r}; interior vertices take one of {', '.join(OPS)}")
        keep = sorted(_reach(m, 0, True) & _reach(m, n - 1, False))
        if 0 not in keep or n - 1 not in keep:
            raise InvalidSpecError("the input is not connected to the output: no path 0 -> output")
        pruned = m[np.ix_(keep, keep)]
        object.__setattr__(self, "matrix", pruned)
        object.__setattr__(self, "ops", tuple(ops_n[i] for i in keep))
        object.__setattr__(self, "original_matrix", m)
        object.__setattr__(self, "original_ops", tuple(ops_n))

    @classmethod
    def from_string(cls, adjacency: str, ops: str | Sequence[str]) -> "ModelSpec":
        """From the CLI's form: a row-major 0/1 string and comma-joined op names."""
        if isinstance(ops, str):
            ops = [o for o in ops.split(",")]
        return cls(matrix_from_string(adjacency), ops)

    @property
    def removed_vertices(self) -> tuple[int, ...]:
        """Vertices of the given spec that pruning removed (on no input -> output path), in its
        numbering; empty when the spec was already pruned."""
        kept = set(_reach(self.original_matrix, 0, True) & _reach(self.original_matrix, len(self.original_ops) - 1,
                                                                  False))
        return tuple(v for v in range(len(self.original_ops)) if v not in kept)

    @property
    def num_vertices(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.matrix.sum())

    @property
    def labels(self) -> list[int]:
        """NB101 hash labels: -1 input, op index in :data:`OPS`, -2 output."""
        return [OP_CODES[o] for o in self.ops]

    @cached_property
    def hash(self) -> str:
        """NB101's isomorphism-invariant MD5 key of the pruned cell."""
        # imported here: nasbench_pytorch.model's __init__ imports torch (~2 s)
        from nasbench_pytorch.model import graph_util

        return graph_util.hash_module(self.matrix, self.labels)

    @property
    def adjacency_string(self) -> str:
        return matrix_to_string(self.matrix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"ModelSpec(adjacency={self.adjacency_string!r}, ops={list(self.ops)!r}, hash={self.hash!r})"


def hash_spec(matrix, ops: Sequence) -> str:
    """NB101 hash of a raw (unpruned) spec."""
    return ModelSpec(matrix, ops).hash
