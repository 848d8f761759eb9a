"""The full NAS-Bench-101 cell space: every valid NB101 cell (at most 7 vertices, 9 edges).

**Archs.** An arch is one NB101 cell up to isomorphism, held in NB101's own labelling: the one
NB101's generator (``generate_graphs.py``) met first and stored, with the smallest adjacency
``bits`` in its numbering (``gen_is_edge_fn``: edge x -> y is bit ``x + y(y-1)/2``), then the
smallest op labels in ``itertools.product`` order (conv3x3 < conv1x1 < maxpool3x3). The labelling
matters beyond names: NB101's channel rule gives the remainder channels to the first vertices,
so isomorphic labellings of a cell can have different weight counts (3,824 of the 30,031 bundled
cells have labellings with different counts); the stored one is the network NB101 trained and
counted. (Checked: every one of the 1,030 specs in the source files is its cell's smallest
labelling by this rule, and this labelling gives NB101's ``trainable_parameters`` for all 30,031
bundled cells: ``tests/test_nb101_catalogue.py``.) :func:`canonical_cells` enumerates every cell in
this labelling; the NB101 catalogue (:mod:`rankbench.nb101.catalogue`) is built from it.

``arch.name`` is the interior ops ("3" conv3x3, "1" conv1x1, "m" maxpool3x3, in vertex order),
"_", and ``bits`` in hexadecimal: ``"3m_25"`` is input -> conv3x3 -> maxpool3x3 -> output,
``"_1"`` input -> output. Isomorphic specs give the same arch (same name, same weights in the
supernet, whose interior vertex ``i`` runs the arch's vertex ``i``); names are unique within the
space and reversible (:meth:`NB101Space.arch_from_name`).

**Training distribution.** :meth:`NB101Space.sample` draws *uniformly over the 423,624 distinct
cells* of NB101 (the reference: eval-nas samples unique hashes), without the benchmark's data.
It proposes a labelled cell uniformly from the 1,293,208 NB101's generator enumerates (a size
with probability proportional to its number of labelled cells, one of that size's valid
matrices, random ops) and accepts it with probability ``1/k``, ``k`` the number of distinct
labellings of that cell (counted exactly by relabelling). A cell with ``k`` labellings is
proposed ``k`` times as often, so every distinct cell is equally likely; 3.05 proposals per arch
on average (1,293,208 / 423,624). Plain rejection sampling of random matrices (no ``1/k``) favours
cells with many isomorphic labellings: ``k`` ranges from 1 (186,244 cells) to 60 (9 cells), so
such a sampler draws some cells 60 times as often as others, and 7-vertex cells 90.1% of the
time instead of their 84.8% share (6-vertex: 9.7% instead of 14.6%). ``tests/
test_nb101_supernet.py`` checks the uniformity (exactly, on all 2,532 cells of up to 5 vertices)
and that the plain sampler fails the same check.

**Candidates.** The cells whose spec the NB101 store holds, in hash order (the bundled sample:
all 30,031), or a seeded sample of ``n`` of them (``score.candidates``). The store is the one
``truth.store`` names (:meth:`NB101Space.from_config`), else :func:`rankbench.nb101.open`'s choice.
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Iterator, Sequence

import numpy as np

from rankbench.nb101.spec import (CONV1X1, CONV3X3, INPUT, MAX_EDGES, MAX_VERTICES, MAXPOOL3X3, OUTPUT,
                                  InvalidSpecError, ModelSpec)
from rankbench.spaces import register_space
from rankbench.spaces.base import Scalar, SearchSpace, SpaceMixin

__all__ = ["NB101Arch", "NB101Space", "OP_CHAR", "canonical_name", "count_cells", "labelled_cell_counts",
           "survey", "Survey", "canonical_cells", "draw_cell", "propose_cell", "NUM_CELLS"]

#: op -> one-character code in arch names (as S4's codes)
OP_CHAR = {CONV3X3: "3", CONV1X1: "1", MAXPOOL3X3: "m"}
CHAR_OP = {v: k for k, v in OP_CHAR.items()}
#: op characters -> NB101's op labels as digits ("0" conv3x3, "1" conv1x1, "2" maxpool): the
#: order of NB101's enumeration (itertools.product over the labels)
_TO_LABEL = str.maketrans("31m", "012")
#: distinct cells in NAS-Bench-101 (its paper; :func:`count_cells` recomputes it)
NUM_CELLS = 423_624


# -- codes -------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _pairs(n: int) -> tuple[tuple[int, int], ...]:
    """The upper-triangle positions (x, y), x < y, of an n-vertex adjacency in bit order:
    NB101's ``gen_is_edge_fn`` (edge x -> y is bit ``x + y (y - 1) / 2``, column by column)."""
    return tuple((x, y) for y in range(n) for x in range(y))


def _bit(x: int, y: int) -> int:
    return x + y * (y - 1) // 2


def _hex_digits(n: int) -> int:
    return max(1, -(-len(_pairs(n)) // 4))


def _bits_of(matrix: np.ndarray) -> int:
    """The adjacency as NB101's generator numbers it (``gen_is_edge_fn``'s ``bits``)."""
    out = 0
    for x, y in zip(*np.nonzero(matrix)):
        out |= 1 << _bit(int(x), int(y))
    return out


def _matrix_of(n: int, bits: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int8)
    for p, (x, y) in enumerate(_pairs(n)):
        if bits >> p & 1:
            m[x, y] = 1
    return m


def _code(ops: str, n: int, bits: int) -> str:
    return f"{ops}_{bits:0{_hex_digits(n)}x}"


def _parse(name: str) -> tuple[str, int, int]:
    """name -> (interior op chars, n, bits); ValueError saying what is wrong."""
    if not isinstance(name, str) or name.count("_") != 1:
        raise ValueError(f"nb101 arch name {name!r}: expected '<ops>_<hex adjacency>', e.g. '3m_3b'")
    ops, hexbits = name.split("_")
    bad = set(ops) - set(CHAR_OP)
    if bad:
        raise ValueError(f"nb101 arch name {name!r}: unknown op character(s) {sorted(bad)}; use 3, 1 or m")
    n = len(ops) + 2
    if n > MAX_VERTICES:
        raise ValueError(f"nb101 arch name {name!r}: {len(ops)} interior vertices; NB101 cells have at most "
                         f"{MAX_VERTICES - 2}")
    try:
        bits = int(hexbits, 16)
    except ValueError:
        raise ValueError(f"nb101 arch name {name!r}: {hexbits!r} is not a hexadecimal adjacency") from None
    if len(hexbits) != _hex_digits(n) or bits >> len(_pairs(n)):
        raise ValueError(f"nb101 arch name {name!r}: a {n}-vertex cell's adjacency has {len(_pairs(n))} bits "
                         f"({_hex_digits(n)} hex digits)")
    return ops, n, bits


# -- canonical labelling -----------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _relabellings(n: int, bits: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Every ordering of the interior vertices that keeps the cell upper-triangular:
    (``order``: the old interior vertex at each new position 1..n-2, the new bits)."""
    edges = [xy for p, xy in enumerate(_pairs(n)) if bits >> p & 1]
    out = []
    for order in itertools.permutations(range(1, n - 1)):
        pos = [0] * n
        pos[n - 1] = n - 1
        for new, old in enumerate(order, start=1):
            pos[old] = new
        if all(pos[x] < pos[y] for x, y in edges):
            out.append((order, sum(1 << _bit(pos[x], pos[y]) for x, y in edges)))
    return tuple(out)


def _canonical(ops: str, n: int, bits: int) -> tuple[str, int]:
    """(canonical name, number of distinct labellings) of a labelled cell. Canonical: the
    labelling NB101's generator meets first, the smallest (bits, op labels)."""
    forms = {(nb, "".join(ops[o - 1] for o in order)) for order, nb in _relabellings(n, bits)}
    nb, best = min(forms, key=lambda f: (f[0], f[1].translate(_TO_LABEL)))
    return _code(best, n, nb), len(forms)


@lru_cache(maxsize=None)
def _label_table(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every op labelling of ``k`` interior vertices in ``itertools.product`` order, and the
    base-3 weights that number them in that order."""
    labels = np.array(list(itertools.product(range(3), repeat=k)), dtype=np.int64).reshape(3 ** k, k)
    return labels, 3 ** np.arange(k - 1, -1, -1, dtype=np.int64)


@lru_cache(maxsize=65536)
def _min_keys(n: int, bits: int) -> np.ndarray:
    """For each op labelling (by its ``itertools.product`` index) of the adjacency ``bits``: the
    smallest key ``bits' * 3^k + labelling index`` over its relabellings, i.e. NB101's labelling."""
    k = n - 2
    labels, weights = _label_table(k)
    keys = [nb * 3 ** k + labels[:, [o - 1 for o in order]] @ weights for order, nb in _relabellings(n, bits)]
    return np.min(np.stack(keys, axis=1), axis=1)


def _canonical_name(ops: str, n: int, bits: int) -> str:
    """The canonical name of a labelled cell (as :func:`_canonical`, from a cached table)."""
    k = n - 2
    key = int(_min_keys(n, bits)[int(ops.translate(_TO_LABEL), 3) if k else 0])
    nb, index = divmod(key, 3 ** k)
    chars = "".join("31m"[index // 3 ** (k - 1 - i) % 3] for i in range(k))
    return _code(chars, n, nb)


def _labelled(spec: ModelSpec) -> tuple[str, int, int]:
    ops = "".join(OP_CHAR[o] for o in spec.ops[1:-1])
    return ops, spec.num_vertices, _bits_of(spec.matrix)


def canonical_name(spec: ModelSpec) -> str:
    """The nb101 arch name of a (pruned) NB101 spec; equal for isomorphic specs."""
    return _canonical_name(*_labelled(spec))


# -- the labelled cells NB101 enumerates ---------------------------------------------------------
@lru_cache(maxsize=None)
def _valid_bits(n: int) -> np.ndarray:
    """Adjacency bits of every n-vertex upper-triangular DAG NB101 enumerates: at most 9 edges,
    every vertex on an input -> output path (every vertex but the input has an in-edge and every
    vertex but the output an out-edge, which in a DAG is the same). Ascending."""
    pairs = _pairs(n)
    bits = np.arange(1 << len(pairs), dtype=np.int64)
    ok = np.bitwise_count(bits) <= MAX_EDGES
    for v in range(n):
        into = sum(1 << p for p, (x, y) in enumerate(pairs) if y == v)
        out_of = sum(1 << p for p, (x, y) in enumerate(pairs) if x == v)
        if v > 0:
            ok &= (bits & into) != 0
        if v < n - 1:
            ok &= (bits & out_of) != 0
    return bits[ok]


def labelled_cell_counts(max_vertices: int = MAX_VERTICES) -> dict[int, int]:
    """Labelled cells (valid matrix x interior ops) per number of vertices, as NB101 enumerates
    them before removing isomorphic copies."""
    return {n: int(len(_valid_bits(n))) * 3 ** (n - 2) for n in range(2, max_vertices + 1)}


@dataclass(frozen=True)
class Survey:
    """What enumerating every labelled cell of up to ``max_vertices`` vertices finds.

    ``cells``: distinct cells per number of vertices; ``fan_ins[v]`` / ``pred_sets[v]``: the
    fan-ins and the sets of summed inputs (0 = the cell input) that a conv vertex ``v`` has in
    some cell, in the canonical labelling (what shadow BN needs statistics for)."""

    cells: dict[int, int]
    fan_ins: dict[int, frozenset[int]]
    pred_sets: dict[int, frozenset[tuple[int, ...]]]


def canonical_cells(max_vertices: int = MAX_VERTICES) -> Iterator[tuple[int, int, np.ndarray]]:
    """Every distinct cell of up to ``max_vertices`` vertices in NB101's own labelling, in the
    order NB101's generator meets them: ``(n, bits, labels)`` per valid adjacency (ascending
    ``n``, then ``bits``), ``labels`` the ``(rows, n - 2)`` interior op labels (0 conv3x3,
    1 conv1x1, 2 maxpool3x3) of the cells whose canonical labelling has that adjacency, in
    ``itertools.product`` order (possibly no rows). 423,624 rows in all for 7 vertices."""
    for n in range(2, max_vertices + 1):
        k = n - 2
        labels, _ = _label_table(k)
        own = np.arange(3 ** k, dtype=np.int64)
        for b in _valid_bits(n).tolist():
            # NB101's order: adjacency bits first, then the op labels (0 conv3x3, 1 conv1x1, 2 maxpool)
            yield n, b, labels[_min_keys(n, b) == b * 3 ** k + own]


@lru_cache(maxsize=None)
def survey(max_vertices: int = MAX_VERTICES) -> Survey:
    """Enumerate every labelled cell NB101 enumerates and keep the canonical ones (a few
    seconds for 7 vertices: 1,293,208 labelled cells, 423,624 distinct)."""
    cells: dict[int, int] = {}
    fan_ins: dict[int, set[int]] = {v: set() for v in range(1, max_vertices - 1)}
    pred_sets: dict[int, set[tuple[int, ...]]] = {v: set() for v in range(1, max_vertices - 1)}
    for n, b, canonical in canonical_cells(max_vertices):
        cells[n] = cells.get(n, 0) + len(canonical)
        m = _matrix_of(n, b)
        for v in range(1, n - 1):
            if (canonical[:, v - 1] < 2).any():  # some canonical cell has a conv at v
                preds = tuple(int(u) for u in np.flatnonzero(m[:, v]))
                fan_ins[v].add(len(preds))
                pred_sets[v].add(preds)
    return Survey(cells, {v: frozenset(f) for v, f in fan_ins.items()},
                  {v: frozenset(p) for v, p in pred_sets.items()})


def count_cells(max_vertices: int = MAX_VERTICES) -> dict[int, int]:
    """Distinct cells per number of vertices (NB101's 423,624 for 7), by :func:`survey`."""
    return dict(survey(max_vertices).cells)


@lru_cache(maxsize=None)
def _proposal_table(max_vertices: int) -> tuple[list[int], list[int], list[np.ndarray]]:
    sizes = list(range(2, max_vertices + 1))
    counts = labelled_cell_counts(max_vertices)
    return sizes, list(itertools.accumulate(counts[n] for n in sizes)), [_valid_bits(n) for n in sizes]


def propose_cell(rng: random.Random, max_vertices: int = MAX_VERTICES) -> tuple[str, int, int]:
    """One labelled cell drawn uniformly from those NB101 enumerates (1,293,208 for 7 vertices):
    (interior op chars, number of vertices, adjacency bits)."""
    sizes, cum, bits = _proposal_table(max_vertices)
    i = bisect.bisect_right(cum, rng.randrange(cum[-1]))
    b = int(bits[i][rng.randrange(len(bits[i]))])
    return "".join(rng.choice("31m") for _ in range(sizes[i] - 2)), sizes[i], b


def draw_cell(rng: random.Random, max_vertices: int = MAX_VERTICES, *, uniform: bool = True) -> str:
    """The canonical name of a random cell. ``uniform``: every distinct cell equally likely
    (a proposal with ``k`` labellings is accepted with probability ``1/k``); else plain rejection
    sampling, where a cell's probability is proportional to its number of labellings."""
    while True:
        ops, n, bits = propose_cell(rng, max_vertices)
        name, k = _canonical(ops, n, bits)
        if not uniform or k == 1 or rng.random() * k < 1.0:
            return name


# -- archs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NB101Arch:
    """One NB101 cell in its canonical labelling. Build with :meth:`NB101Space.arch_from_spec` or
    :meth:`NB101Space.arch_from_name`; equal (and hashed) by ``name``."""

    name: str

    def __post_init__(self):
        ops, n, bits = _parse(self.name)
        if _canonical(ops, n, bits)[0] != self.name:
            raise ValueError(f"{self.name!r} is not a canonical nb101 name; use NB101Space.arch_from_name")

    @cached_property
    def spec(self) -> ModelSpec:
        """The canonical, pruned NB101 spec."""
        ops, n, bits = _parse(self.name)
        spec = ModelSpec(_matrix_of(n, bits), [INPUT] + [CHAR_OP[c] for c in ops] + [OUTPUT])
        if spec.num_vertices != n:
            raise InvalidSpecError(f"{self.name!r} has vertices off every input -> output path")
        if self.__dict__.get("_hash") is not None:
            spec.__dict__["hash"] = self.__dict__["_hash"]  # known (from a store): seed the cache
        return spec

    @property
    def hash(self) -> str:
        """NB101's graph hash."""
        known = self.__dict__.get("_hash")
        return known if known is not None else self.spec.hash

    @property
    def num_vertices(self) -> int:
        return len(_parse(self.name)[0]) + 2

    @property
    def fan_ins(self) -> tuple[int, ...]:
        """Inputs summed at each interior vertex (the input's projection counts)."""
        return tuple(int(v) for v in self.spec.matrix[:, 1:-1].sum(axis=0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB101Arch) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("nb101", self.name))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"NB101Arch({self.name!r})"


def _arch(name: str, spec: ModelSpec | None = None, hash_: str | None = None) -> NB101Arch:
    """An arch from a name known to be canonical (no re-check); ``hash_`` is trusted."""
    a = object.__new__(NB101Arch)
    object.__setattr__(a, "name", name)
    if hash_ is not None:
        a.__dict__["_hash"] = hash_  # the spec is built only when asked for
        if spec is not None:
            spec.__dict__["hash"] = hash_  # ModelSpec.hash is a cached_property: seed the cache
    if spec is not None:
        a.__dict__["spec"] = spec
    return a


@register_space("nb101")
class NB101Space(SpaceMixin):
    """Every NAS-Bench-101 cell (423,624), drawn uniformly; candidates: the store's cells with a spec.

    No settings (see the module docstring). ``store``: the NB101 store whose cells with a spec
    are the candidates (a path or an open :class:`~rankbench.nb101.NB101Store`); None:
    ``rankbench.nb101.open()``'s choice (``$RANKBENCH_DATA``, the imported store, else the
    bundled sample). Training draws do not read it.
    """

    name = "nb101"
    #: the descriptive column figures group by ("accuracy by ..."): the largest number of inputs
    #: summed at one vertex, what shadow BN by fan-in keys on
    group_column = "max_fan_in"

    def __init__(self, store: Any = None):
        self._store_arg = store
        self._store = None
        self._archs: dict[str, NB101Arch] = {}

    def __repr__(self) -> str:
        return "NB101Space()" if self._store_arg is None else f"NB101Space(store={self._store_arg!r})"

    def settings(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, cfg) -> SearchSpace:
        """The space of a RunConfig: its ``[space]`` settings, and candidates from the store
        ``truth.store`` names (``""``: :func:`rankbench.nb101.open`'s search)."""
        from rankbench.spaces import create_space

        store = getattr(getattr(cfg, "truth", None), "store", "") or None
        return create_space(cfg.space.name, **cfg.space.settings(), store=store)

    # -- archs --------------------------------------------------------------------------------
    def _arch(self, ops: str, n: int, bits: int, spec: ModelSpec | None = None, hash_: str | None = None) -> NB101Arch:
        name = _canonical_name(ops, n, bits)
        a = self._archs.get(name)
        if a is None:
            same = spec is not None and _code(ops, n, bits) == name
            a = self._archs[name] = _arch(name, spec if same else None, hash_)
        return a

    def arch_from_spec(self, spec: ModelSpec) -> NB101Arch:
        """The arch of a (pruned) NB101 spec; every isomorphic spec gives the same arch. An
        invalid cell fails when its :class:`~rankbench.nb101.ModelSpec` is built
        (:class:`~rankbench.nb101.InvalidSpecError` says why)."""
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"expected a rankbench.nb101.ModelSpec, got {type(spec).__name__}: build one with "
                            f"ModelSpec(matrix, ops) (it validates and prunes the cell)")
        return self._arch(*_labelled(spec), spec=spec, hash_=spec.__dict__.get("hash"))

    def arch_from_name(self, name: str) -> NB101Arch:
        """The arch called ``name``. The code of any labelling is accepted; the arch is canonical."""
        a = self._archs.get(name)
        if a is not None:
            return a
        ops, n, bits = _parse(name)
        spec = ModelSpec(_matrix_of(n, bits), [INPUT] + [CHAR_OP[c] for c in ops] + [OUTPUT])
        if spec.num_vertices != n:
            raise InvalidSpecError(f"nb101 arch name {name!r}: some vertices are on no input -> output path "
                                   f"(NB101 cells are pruned)")
        return self.arch_from_spec(spec)

    # -- candidates: the store's cells with a spec ---------------------------------------------
    def store(self):
        """The NB101 store the candidates come from (opened on first use)."""
        if self._store is None:
            from rankbench import nb101

            arg = self._store_arg
            self._store = arg if hasattr(arg, "hashes") else nb101.open(arg)
        return self._store

    def candidates(self, n: int = 0, seed: int = 0) -> list[NB101Arch]:
        """The cells whose spec the store holds, in hash order (bundled sample: 30,031), or ``n``
        of them drawn with ``seed`` (kept in hash order; only those are read)."""
        if n < 0:
            raise ValueError(f"the number of candidates must be >= 0, got {n}")
        store = self.store()
        hashes, nv, adj, ops = store.spec_columns()  # bulk reads: one decompression, not one per cell
        if not len(hashes):
            raise ValueError(f"the NB101 store {store.path} holds no cell specs, so no nb101 candidates; "
                             f"import one with specs (rankbench data import)")
        rows: Sequence[int] = range(len(hashes))
        if n and n < len(hashes):
            rows = sorted(random.Random(seed).sample(range(len(hashes)), n))
        out = []
        for r in rows:
            k = int(nv[r])
            chars = "".join(_LABEL_CHAR[int(c)] for c in ops[r, 1:k - 1])
            out.append(self._arch(chars, k, _bits_of(adj[r, :k, :k]), hash_=hashes[r]))
        return out

    # -- training draws: uniform over all 423,624 cells -------------------------------------------
    def sample(self, rng: random.Random) -> NB101Arch:
        """A cell drawn uniformly from NB101's 423,624 distinct cells (see the module docstring)."""
        name = draw_cell(rng)
        return self._archs.get(name) or _arch(name)  # not kept: training visits ~all cells

    # -- description ---------------------------------------------------------------------------
    def describe(self, arch: NB101Arch) -> dict[str, Scalar]:
        """Descriptive columns: size, fan-ins (inputs summed at each interior vertex, the input's
        projection included: ``max_fan_in``, ``mean_fan_in`` and ``fan_in_k``, the number of
        vertices with fan-in k), ops, depth (edges on the longest input -> output path) and how
        the output is fed (``output_fan_in`` vertices concatenated, ``input_to_output``)."""
        spec = arch.spec
        m, n = spec.matrix, spec.num_vertices
        fan = arch.fan_ins
        depth = [0] * n
        for j in range(1, n):
            depth[j] = 1 + max(depth[i] for i in range(j) if m[i, j])
        ops = spec.ops[1:-1]
        d: dict[str, Scalar] = {
            "num_vertices": n,
            "num_edges": spec.num_edges,
            "max_fan_in": max(fan, default=0),
            "mean_fan_in": round(float(np.mean(fan)), 4) if fan else 0.0,
        }
        d.update({f"fan_in_{k}": sum(1 for f in fan if f == k) for k in range(1, MAX_VERTICES - 2)})
        d.update({
            "num_conv3x3": ops.count(CONV3X3),
            "num_conv1x1": ops.count(CONV1X1),
            "num_maxpool": ops.count(MAXPOOL3X3),
            "depth": depth[-1],
            "output_fan_in": int(m[1:-1, -1].sum()),
            "input_to_output": int(m[0, -1]),
        })
        return d


#: NB101's op labels -> name characters
_LABEL_CHAR = {0: "3", 1: "1", 2: "m"}
