"""Few-shot NAS (Zhao et al., ICML 2021): K sub-supernets, split by the op of one choice node.

Few-shot NAS splits the one-shot supernet on one edge: each of the K ops of that edge gets its
own sub-supernet, which trains only the subnets whose edge holds that op, and a candidate is
scored by the sub-supernet whose split contains it. The splits partition the space, so every
candidate has exactly one.

**Splits in rankbench.** A split is ``(node, op)``: the subnets whose choice node ``node``
(1-based) runs ``op``, written with the arch names' op characters (``"3"`` conv3x3, ``"1"``
conv1x1, ``"m"`` maxpool3x3, ``"-"`` no op at that node):

- ``s4``: node ``1 .. m``, its op or ``"-"`` (the node inactive): K = 4 splits per node (3 for
  ``m = 1``, where the node is never off). Splits go by node, not by hash class: ``"3---"``
  and ``"-3--"`` are isomorphic but lie in different splits, as each trains other weights
  (node 1's conv3x3 vs node 2's).
- ``nb101``: interior vertex ``node`` (1 .. 5) of the cell in its canonical labelling, which
  the weight-sharing cell runs on supernet vertex ``node`` (:mod:`rankbench.supernet.nb101_cell`),
  so a split fixes which op that vertex's weights train; ``"-"``: the cell has fewer than
  ``node`` interior vertices. K = 4 per vertex. The splits are unequal (NB101's labelling puts
  conv3x3 first where it can; ``1=-`` is the single cell input -> output). The same for the
  NAS-Bench-1Shot1 spaces (``nb1shot1-*``: NB101 cells, the same supernet cell), where some
  splits are empty (a sampler for one fails when it is made).
- any other space: ValueError.

A sub-supernet trains with the training sampler ``fewshot:<node>=<op>``
(:mod:`rankbench.training.samplers`): the space's own training draw conditioned on the split
(S4: the public code's draw; nb101: uniform over the split's cells). Each split is its own run
(``train.sampler`` is part of the training fingerprint), and each scores every candidate as
usual; :func:`combine_scores` then keeps, for each candidate, the row of its own split.

**How to run it** (S4, split on node 1; each run writes ``<run dir>/reports/<report>/scores.csv``,
and ``rankbench run ... --dry-run`` prints the run directory)::

    for op in - 1 3 m; do
        rankbench run --preset quick --calibrate --set "train.sampler=fewshot:1=$op"
    done

then, in Python, with the four reports' ``scores.csv``::

    import pandas as pd
    from rankbench.fewshot import Splitting
    from rankbench.spaces import create_space

    split = Splitting(create_space("s4", m=4), node=1)
    tables = {op: pd.read_csv(path) for op, path in {"-": ..., "1": ..., "3": ..., "m": ...}.items()}
    combined = split.combine(tables)          # one row per candidate, its own split's scores
    combined.to_csv("fewshot-scores.csv", index=False)

``combined`` keeps the reports' columns (``acc_no_calib``, ``acc_calib``, ``truth``, ...) plus
``split`` (the op of the candidate's split), so the usual metrics apply to it (e.g.
``rankbench.metrics.point.kendall_tau(combined.acc_calib, combined.truth)``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from rankbench.spaces.nb101 import NB101Arch, NB101Space, draw_cell
from rankbench.spaces.s4 import OP_CHAR as S4_OP_CHAR
from rankbench.spaces.s4 import S4Space, Subnet

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Splitting", "split_of", "split_ops", "parse_split", "combine_scores", "NO_OP"]

#: the split of subnets with no op at the node (S4: node inactive; nb101: no such vertex)
NO_OP = "-"

#: nb101's interior vertices (the weight-sharing cell's vertices 1..5)
_NB101_NODES = 5

#: a conditioned draw gives up after this many consecutive misses (no split here is that rare)
_MAX_MISSES = 100_000


def _nodes(space: Any) -> int:
    """How many choice nodes ``space`` can be split on; ValueError for a space without splits."""
    if isinstance(space, S4Space):
        return space.m
    if isinstance(space, NB101Space):
        return _NB101_NODES
    raise ValueError(f"few-shot splits are defined for the s4 and nb101 spaces, not {space!r}")


def split_ops(space: Any, node: int) -> tuple[str, ...]:
    """The K splits of ``space`` at choice node ``node`` (1-based), as op characters."""
    n = _nodes(space)
    if isinstance(node, bool) or not isinstance(node, int) or not 1 <= node <= n:
        raise ValueError(f"few-shot split node must be 1..{n} in {space!r}, got {node!r}")
    if isinstance(space, S4Space):
        ops = tuple(S4_OP_CHAR[o] for o in space.ops)
        return ops + (NO_OP,) if space.m > 1 else ops  # m = 1: the one node is always active
    return ("3", "1", "m", NO_OP)


def split_of(arch: Any, node: int) -> str:
    """The split of ``arch`` at choice node ``node``: the op character it runs there, or ``"-"``."""
    if isinstance(arch, Subnet):
        if not 1 <= node <= arch.m:
            raise ValueError(f"subnet {arch.name!r} has choice nodes 1..{arch.m}, not {node!r}")
        return S4_OP_CHAR[arch.ops[node - 1]]
    if isinstance(arch, NB101Arch):
        if not 1 <= node <= _NB101_NODES:
            raise ValueError(f"nb101 cells have interior vertices 1..{_NB101_NODES}, not {node!r}")
        ops = arch.name.partition("_")[0]
        return ops[node - 1] if node <= len(ops) else NO_OP
    raise ValueError(f"few-shot splits are defined for s4 and nb101 archs, not {type(arch).__name__}")


def parse_split(space: Any, text: str) -> tuple[int, str]:
    """``"<node>=<op>"`` -> (node, op), checked against ``space``'s splits."""
    node_text, eq, op = (text or "").partition("=")
    try:
        node = int(node_text)
    except ValueError:
        node = -1
    if not eq or node < 0:
        raise ValueError(f"a few-shot split is <node>=<op>, e.g. 1=3 (node 1 runs conv3x3) or 2=- (node 2 has "
                         f"no op); got {text!r}")
    ops = split_ops(space, node)
    if op not in ops:
        raise ValueError(f"few-shot split {text!r}: node {node} of {space!r} splits into ops {', '.join(ops)}")
    return node, op


@dataclass(frozen=True)
class Splitting:
    """The K few-shot splits of ``space`` at choice node ``node`` (1-based)."""

    space: Any
    node: int

    def __post_init__(self) -> None:
        split_ops(self.space, self.node)  # checks the space and the node

    @property
    def ops(self) -> tuple[str, ...]:
        """The splits' ops (op characters; ``"-"``: no op at the node)."""
        return split_ops(self.space, self.node)

    def sampler_spec(self, op: str) -> str:
        """The ``train.sampler`` that trains split ``op``'s sub-supernet."""
        if op not in self.ops:
            raise ValueError(f"no split {op!r} at node {self.node}; splits: {', '.join(self.ops)}")
        return f"fewshot:{self.node}={op}"

    def split_of(self, arch: Any) -> str:
        """The split ``arch`` belongs to (its op at the node)."""
        return split_of(arch, self.node)

    def sample(self, rng: random.Random, op: str) -> Any:
        """One training draw of split ``op``: the space's own draw conditioned on the split."""
        if type(self.space) is NB101Space and op == NO_OP:
            # cells with fewer than `node` interior vertices: uniform over them, drawn directly
            # (by rejection they can be 1 in 423,624)
            return NB101Arch(draw_cell(rng, max_vertices=self.node + 1))
        for _ in range(_MAX_MISSES):
            arch = self.space.sample(rng)
            if split_of(arch, self.node) == op:
                return arch
        raise ValueError(f"few-shot split {self.node}={op} of {self.space!r}: none of {_MAX_MISSES:,} training "
                         f"draws lies in it (it is empty or too rare); splits at node {self.node}: "
                         f"{', '.join(self.ops)}")

    def combine(self, tables: Mapping[str, "pd.DataFrame"], *, name_column: str = "name") -> "pd.DataFrame":
        """One score table from the sub-supernets' tables (:func:`combine_scores`)."""
        return combine_scores(tables, self, name_column=name_column)


def combine_scores(tables: Mapping[str, "pd.DataFrame"], splitting: Splitting, *,
                   name_column: str = "name") -> "pd.DataFrame":
    """Each candidate scored by the sub-supernet of its own split.

    ``tables``: split op -> that sub-supernet's score table (a report's ``scores.csv``: one row
    per candidate, its arch name in ``name_column``). Returns one table with, for every
    candidate that appears in any table, the row of its own split's table plus a ``split``
    column; candidates in the order they first appear (table by table, in ``tables`` order).
    ValueError: a key that is not a split, a table without ``name_column`` or with a name twice,
    or a candidate whose split's table is missing or lacks it.
    """
    import pandas as pd  # only here: the training path imports this module for its splits

    unknown = [k for k in tables if k not in splitting.ops]
    if unknown:
        raise ValueError(f"few-shot tables for {unknown}: not splits at node {splitting.node} "
                         f"(splits: {', '.join(splitting.ops)})")
    order: list[str] = []
    rows: dict[str, dict[str, Any]] = {}  # split -> name -> row
    for op, table in tables.items():
        if name_column not in table.columns:
            raise ValueError(f"few-shot table of split {op!r} has no {name_column!r} column")
        names = table[name_column].astype(str)
        dup = names[names.duplicated()]
        if len(dup):
            raise ValueError(f"few-shot table of split {op!r} lists {dup.iloc[0]!r} twice")
        rows[op] = dict(zip(names, table.to_dict("records")))
        order.extend(names)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in order:
        if name in seen:
            continue
        seen.add(name)
        op = splitting.split_of(splitting.space.arch_from_name(name))
        row = rows.get(op, {}).get(name)
        if row is None:
            missing.append(f"{name} (split {op})")
            continue
        out.append({**row, "split": op})
    if missing:
        raise ValueError(f"{len(missing)} candidate(s) have no score from their own split's sub-supernet, e.g. "
                         f"{', '.join(missing[:5])}; give every split's table (splits: {', '.join(splitting.ops)})")
    columns = list(dict.fromkeys([c for t in tables.values() for c in t.columns] + ["split"]))
    return pd.DataFrame(out, columns=columns)
