"""NAS-Bench-1Shot1's three search spaces (Zela, Siems & Hutter, ICLR 2020) as NB101 subspaces.

NAS-Bench-1Shot1 (github.com/automl/nasbench-1shot1, ``nasbench_analysis/search_spaces/
search_space_{1,2,3}.py``) restricts NB101's cell to *choice blocks* ``1..k`` and the output, each
with a fixed number of parents chosen among the vertices before it (vertex 0 is the input; block
1's one parent is always the input). Every block takes one of NB101's three ops:

| space | blocks | parents of blocks 1..k, then the output | parent choices | NB101 cells |
|---|---|---|---|---|
| ``nb1shot1-1`` | 4 | 1, 2, 2, 2; 2 | 180 | 2,685 |
| ``nb1shot1-2`` | 4 | 1, 1, 2, 2; 3 | 360 | 7,773 |
| ``nb1shot1-3`` | 5 | 1, 1, 1, 2, 2; 2 | 5,400 | 55,854 |

(Spaces 1 and 2 add an unused fifth vertex to reach NB101's 7-vertex format; NB101 prunes it.)
A block whose output reaches nothing (a *loose end*) is removed by NB101's pruning, as is
everything only it feeds; what remains has every kept vertex with its full number of parents.

**Counts.** The paper gives 6,240 / 29,160 / 363,648 architectures. Those count NB-1Shot1's
configurations, not NB101 cells: for spaces 1 and 3 they are, exactly, the sum over the parent
choices of ``3^b``, ``b`` the number of blocks with an outgoing edge (:func:`count_architectures`
``["paper_rule"]``); for space 2 the same rule gives 16,632 and the paper's 29,160 is every
parent choice times every op choice (360 x 3^4, ``["configurations"]``). The distinct NB101 cells
(isomorphic configurations and pruned loose ends merged; the last column above) are what this
module's spaces hold: :func:`space_cells`, checked in ``tests/test_nb1shot1.py``.

**Archs** are NB101 cells in NB101's own numbering, exactly as in the ``nb101`` space
(:class:`~rankbench.spaces.nb101.NB101Arch`, same names, same supernet cell: the NB101 cell with
NB101's channel rule, not NB-1Shot1's own one-shot model, which concatenates every block at full
width). **Training draws** are uniform over the space's distinct cells. **Candidates**: the NB101
store's cells with a spec that belong to the space (bundled sample: ~7% of each space), in hash
order; the store is ``truth.store``'s, as for ``nb101``.
"""
from __future__ import annotations

import itertools
import random
from functools import lru_cache
from typing import Any

import numpy as np

from rankbench.nb101.spec import ModelSpec
from rankbench.spaces import register_space
from rankbench.spaces.nb101 import (_LABEL_CHAR, NB101Arch, NB101Space, _arch, _bit, _canonical_name, _code,
                                    _label_table, _min_keys)

__all__ = ["NB1Shot1Space", "PARENTS", "PAPER_COUNTS", "space_cells", "count_architectures", "parent_choices"]

#: number of parents of choice blocks 1..k and (last) the output, per NB-1Shot1 search space
PARENTS = {1: (1, 2, 2, 2, 2), 2: (1, 1, 2, 2, 3), 3: (1, 1, 1, 2, 2, 2)}
#: architectures per space as NAS-Bench-1Shot1's paper gives them (see the module docstring)
PAPER_COUNTS = {1: 6_240, 2: 29_160, 3: 363_648}


def parent_choices(number: int):
    """Every parent choice of space ``number``: tuples ``(parents of block 1, ..., of the output)``,
    each a tuple of vertices before it (block 1: the input only)."""
    parents = PARENTS[number]
    per_vertex = [[(0,)] if v == 1 else list(itertools.combinations(range(v), p))
                  for v, p in enumerate(parents, start=1)]
    return itertools.product(*per_vertex)


def _pruned(choice: tuple[tuple[int, ...], ...]) -> tuple[int, int]:
    """(vertices, NB101 adjacency bits) of a parent choice after NB101's pruning: the vertices
    on an input -> output path, renumbered in order."""
    out = len(choice)
    feeds = {v: set(ps) for v, ps in enumerate(choice, start=1)}
    useful = {out}  # vertices that reach the output
    for v in range(out, 0, -1):
        if v in useful:
            useful |= feeds[v]
    keep = sorted(useful)  # every kept vertex reaches the input (block 1's parent is the input)
    pos = {v: i for i, v in enumerate(keep)}
    bits = 0
    for v in keep[1:]:
        for u in feeds[v]:
            bits |= 1 << _bit(pos[u], pos[v])
    return len(keep), bits


def count_architectures(number: int) -> dict[str, int]:
    """Sizes of space ``number``: ``parent_choices``; ``configurations`` (parent choices x
    3^blocks); ``paper_rule`` (sum over parent choices of 3^(blocks with an outgoing edge));
    ``cells`` (distinct NB101 cells)."""
    blocks = len(PARENTS[number]) - 1
    n_choices = paper = 0
    for choice in parent_choices(number):
        n_choices += 1
        used = {u for ps in choice for u in ps if u > 0}
        paper += 3 ** len(used)
    return {"parent_choices": n_choices, "configurations": n_choices * 3 ** blocks, "paper_rule": paper,
            "cells": len(space_cells(number))}


@lru_cache(maxsize=None)
def space_cells(number: int) -> tuple[str, ...]:
    """The canonical nb101 names of every NB101 cell in space ``number``, sorted."""
    graphs = {_pruned(c) for c in parent_choices(number)}
    names: set[str] = set()
    for n, bits in sorted(graphs):
        k = n - 2
        for key in np.unique(_min_keys(n, bits)).tolist():
            nb, index = divmod(int(key), 3 ** k)
            chars = "".join("31m"[d] for d in _label_table(k)[0][index].tolist())
            names.add(_code(chars, n, nb))
    return tuple(sorted(names))


class NB1Shot1Space(NB101Space):
    """A NAS-Bench-1Shot1 search space: the NB101 cells its choice blocks can form (module docstring)."""

    number: int = 0

    def __init__(self, store: Any = None):
        super().__init__(store)
        self._pool: list[NB101Arch] | None = None

    def __repr__(self) -> str:
        cls = type(self).__name__
        return f"{cls}()" if self._store_arg is None else f"{cls}(store={self._store_arg!r})"

    @property
    def cells(self) -> tuple[str, ...]:
        """Canonical names of the space's distinct NB101 cells, sorted."""
        return space_cells(self.number)

    @property
    def _members(self) -> frozenset[str]:
        return _member_set(self.number)

    def _check(self, a: NB101Arch) -> NB101Arch:
        if a.name not in self._members:
            parents = PARENTS[self.number]
            raise ValueError(
                f"cell {a.name} is not in search space {self.name} (NAS-Bench-1Shot1 space {self.number}: "
                f"{len(self.cells):,} NB101 cells whose choice blocks have {', '.join(map(str, parents[:-1]))} "
                f"parents and the output {parents[-1]})")
        return a

    def arch_from_spec(self, spec: ModelSpec) -> NB101Arch:
        """The arch of an NB101 cell of this space (ValueError for a cell outside it)."""
        return self._check(super().arch_from_spec(spec))

    def arch_from_name(self, name: str) -> NB101Arch:
        return self._check(super().arch_from_name(name))

    def candidates(self, n: int = 0, seed: int = 0) -> list[NB101Arch]:
        """The store's cells with a spec that belong to this space, in hash order, or ``n`` of
        them drawn with ``seed`` (kept in hash order)."""
        if n < 0:
            raise ValueError(f"the number of candidates must be >= 0, got {n}")
        if self._pool is None:
            self._pool = self._store_members()
            if not self._pool:
                raise ValueError(f"the NB101 store {self.store().path} holds no cell of search space "
                                 f"{self.name} with a spec; import one (rankbench data import) or fill in specs "
                                 f"(rankbench data fill-specs)")
        if n and n < len(self._pool):
            return [self._pool[i] for i in sorted(random.Random(seed).sample(range(len(self._pool)), n))]
        return list(self._pool)

    def _store_members(self) -> list[NB101Arch]:
        """The store's cells with a spec that are in this space, in hash order (names from
        bulk columns; archs built only for members)."""
        hashes, nv, adj, ops = self.store().spec_columns()
        bits = np.zeros(len(hashes), np.int64)
        for x, y in itertools.combinations(range(adj.shape[1]), 2):
            bits |= adj[:, x, y].astype(np.int64) << _bit(x, y)
        out = []
        for r, h in enumerate(hashes):
            k = int(nv[r])
            chars = "".join(_LABEL_CHAR[int(c)] for c in ops[r, 1:k - 1])
            if _canonical_name(chars, k, int(bits[r])) in self._members:
                out.append(self._arch(chars, k, int(bits[r]), hash_=h))
        return out

    def sample(self, rng: random.Random) -> NB101Arch:
        """A cell drawn uniformly from the space's distinct NB101 cells."""
        name = self.cells[rng.randrange(len(self.cells))]
        return self._archs.get(name) or _arch(name)


@lru_cache(maxsize=None)
def _member_set(number: int) -> frozenset[str]:
    return frozenset(space_cells(number))


def _register(number: int) -> type[NB1Shot1Space]:
    name = f"nb1shot1-{number}"
    parents = PARENTS[number]
    doc = (f"NAS-Bench-1Shot1 search space {number}: NB101 cells of {len(parents) - 1} choice blocks with "
           f"{', '.join(map(str, parents[:-1]))} parents, output {parents[-1]}")
    cls = type(f"NB1Shot1Space{number}", (NB1Shot1Space,),
               {"number": number, "name": name, "__doc__": doc, "__module__": __name__})
    return register_space(name, doc)(cls)


NB1Shot1Space1, NB1Shot1Space2, NB1Shot1Space3 = (_register(k) for k in sorted(PARENTS))
