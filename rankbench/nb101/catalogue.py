"""The NB101 catalogue: hash -> spec of every one of NAS-Bench-101's 423,624 cells (no metrics).

``open_catalogue()`` reads the bundled ``data/nb101-catalogue.npz`` (~3.9 MB), built by
``data/scripts/build_nb101_catalogue.py`` from rankbench's own enumeration of NB101's cells
(:func:`rankbench.spaces.nb101.canonical_cells`) and nasbench-pytorch's
``graph_util.hash_module``. Each spec is in **NB101's own numbering**: the labelling NB101's
generator met first and stored (smallest adjacency bits, then smallest op labels). That
numbering matters beyond names: NB101's channel rule gives remainder channels to the first
vertices, so isomorphic numberings can have different weight counts; with the catalogue's
numbering NB101's ``trainable_parameters`` come out exactly (checked on all 30,001 bundled
cells with a stored count: ``tests/test_nb101_catalogue.py``).

File format (``np.load``; ``format = "rankbench-nb101-catalogue"``, ``format_version = 1``)::

    hash_prefix (8, N) uint8   byte planes of the first 8 bytes (16 hex digits) of each cell's
                               hash, most significant byte first; columns sorted ascending,
                               all distinct
    spec        (4, N) uint32 code as byte planes, least significant byte first:
                               bits 0-20   adjacency: edge x -> y is bit x + y(y-1)/2 (NB101's
                                           ``gen_is_edge_fn``), output = vertex n-1
                               bits 21-30  op label of interior vertex v = 1..5 at bit
                                           21 + 2(v-1): 0 conv3x3, 1 conv1x1, 2 maxpool3x3,
                                           3 no such vertex (n = 2 + vertices present)
    format, format_version, num_cells, description, made_by, nasbench_pytorch   (0-d)

Only the first half of each hash is stored (the full one would double the file): a lookup
matches those 16 hex digits (unique among NB101's cells), then recomputes the hash of the
spec it found and compares all 32 digits, so a hash that is no NB101 cell (a typo in its
second half included) is reported, never answered with another cell.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np
from tqdm import tqdm

from rankbench._io import atomic_path
from rankbench._paths import bundled_file
from rankbench.nb101.spec import CODE_TO_OP, MAX_VERTICES, ModelSpec
from rankbench.nb101.store import FORMAT as STORE_FORMAT

__all__ = ["Catalogue", "UnknownCellError", "open_catalogue", "CATALOGUE_NAME", "FORMAT", "FORMAT_VERSION",
           "pack_specs", "unpack_specs", "hash_prefixes", "write_catalogue", "spec_arrays_hash", "fill_store_specs"]

CATALOGUE_NAME = "nb101-catalogue.npz"
FORMAT = "rankbench-nb101-catalogue"
FORMAT_VERSION = 1
_PAIRS = tuple((x, y) for y in range(MAX_VERTICES) for x in range(y))  # bit p <-> edge _PAIRS[p]
_OPS_SHIFT = len(_PAIRS)  # 21
_ABSENT = 3
_PAD_OP = -3


class UnknownCellError(KeyError):
    """A hash that is none of NAS-Bench-101's cells."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def hash_prefixes(hashes: Iterable[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first 16 hex digits of each hash as uint64, ok): ``ok`` is False for anything that is
    not 32 hex digits (case-insensitive); its prefix is then 0."""
    if isinstance(hashes, np.ndarray) and hashes.dtype.kind in "SU":
        raw = hashes.ravel().tolist()
    else:
        raw = list(hashes)
    q = [(h.decode("ascii", "replace") if isinstance(h, bytes) else str(h)).strip().lower() for h in raw]
    ok = np.array([len(h) == 32 and all(c in "0123456789abcdef" for c in h) for h in q], bool)
    prefix = np.array([int(h[:16], 16) if good else 0 for h, good in zip(q, ok.tolist())], np.uint64)
    return prefix, ok


def pack_specs(num_vertices: np.ndarray, adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Store layout (``(N,)`` vertices, ``(N, 7, 7)`` adjacency top-left, ``(N, 7)`` op codes)
    -> the catalogue's uint32 codes."""
    nv = np.asarray(num_vertices, np.int64)
    adj = np.asarray(adjacency)
    ops = np.asarray(ops, np.int64)
    code = np.zeros(len(nv), np.uint64)
    for p, (x, y) in enumerate(_PAIRS):
        code |= (adj[:, x, y].astype(np.uint64) & 1) << np.uint64(p)
    for v in range(1, MAX_VERTICES - 1):
        present = v < nv - 1
        label = np.where(present, ops[:, v], _ABSENT).astype(np.uint64)
        code |= label << np.uint64(_OPS_SHIFT + 2 * (v - 1))
    return code.astype(np.uint32)


def unpack_specs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint32 codes -> store layout: (num_vertices int8, adjacency (N, 7, 7) uint8 in the
    top-left corner, op codes (N, 7) int8: -1 input, 0..2 ops, -2 output, -3 padding)."""
    c = np.asarray(codes, np.uint32).astype(np.int64)
    n = len(c)
    labels = np.stack([(c >> (_OPS_SHIFT + 2 * (v - 1))) & 3 for v in range(1, MAX_VERTICES - 1)], axis=1)
    nv = 2 + (labels != _ABSENT).sum(axis=1)
    adj = np.zeros((n, MAX_VERTICES, MAX_VERTICES), np.uint8)
    for p, (x, y) in enumerate(_PAIRS):
        adj[:, x, y] = (c >> p) & 1
    ops = np.full((n, MAX_VERTICES), _PAD_OP, np.int8)
    ops[:, 0] = -1
    ops[:, 1:MAX_VERTICES - 1] = np.where(labels == _ABSENT, _PAD_OP, labels)
    ops[np.arange(n), nv - 1] = -2
    return nv.astype(np.int8), adj, ops


def spec_arrays_hash(n: int, adjacency: np.ndarray, ops: np.ndarray) -> str:
    """NB101's hash (nasbench-pytorch's ``graph_util.hash_module`` on the NumPy matrix) of one
    cell in store layout."""
    from nasbench_pytorch.model import graph_util  # imports torch (~2 s): only when a hash is computed

    return graph_util.hash_module(np.asarray(adjacency)[:n, :n].astype(np.int64), [int(o) for o in ops[:n]])


def _spec(n: int, adjacency: np.ndarray, ops: np.ndarray, h: str | None = None) -> ModelSpec:
    spec = ModelSpec(adjacency[:n, :n], [CODE_TO_OP[int(o)] for o in ops[:n]])
    if h is not None:
        spec.__dict__["hash"] = h  # checked by the caller: seed ModelSpec.hash's cache
    return spec


class Catalogue:
    """Read access to the catalogue file (see the module docstring). Arrays are read on the
    first lookup (~0.1 s)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._prefix: np.ndarray | None = None
        self._codes: np.ndarray | None = None
        with np.load(self.path, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z.files else None
            if fmt != FORMAT:
                raise ValueError(f"{self.path} is not an NB101 catalogue (format {fmt!r}); rebuild it with "
                                 f"python data/scripts/build_nb101_catalogue.py")
            version = int(z["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"{self.path} has catalogue format {version}; this rankbench reads up to "
                                 f"{FORMAT_VERSION}: upgrade rankbench")
            self.num_cells = int(z["num_cells"])

    def __len__(self) -> int:
        return self.num_cells

    def __repr__(self) -> str:
        return f"<NB101 Catalogue {str(self.path)!r}: {self.num_cells:,} cells>"

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._prefix is None:
            with np.load(self.path, allow_pickle=False) as z:
                planes = z["hash_prefix"]
                spec = z["spec"]
            self._prefix = np.ascontiguousarray(planes.T).view(">u8").ravel().astype(np.uint64)
            self._codes = np.ascontiguousarray(spec.T).view("<u4").ravel().astype(np.uint32)
            if len(self._prefix) != self.num_cells or len(self._codes) != self.num_cells:
                raise ValueError(f"{self.path} is damaged: {len(self._prefix)} hashes and {len(self._codes)} "
                                 f"specs for {self.num_cells} cells; rebuild it")
        return self._prefix, self._codes  # type: ignore[return-value]

    def rows(self, hashes: Iterable[Any] | np.ndarray) -> np.ndarray:
        """Row of each hash's cell (int64), -1 where no cell has its first 16 hex digits (or it
        is not 32 hex digits). Only the first half is compared: :meth:`lookup` checks the rest."""
        prefix, _ = self._load()
        q, ok = hash_prefixes(hashes)
        if not len(q):
            return np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(prefix, q), len(prefix) - 1)
        return np.where(ok & (prefix[pos] == q), pos, -1).astype(np.int64)

    def spec_arrays(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Specs of catalogue ``rows`` in store layout (see :func:`unpack_specs`)."""
        _, codes = self._load()
        return unpack_specs(codes[np.asarray(rows, np.int64)])

    def lookup(self, hashes: Sequence[str], *, progress: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Verified specs of many hashes: (found bool, num_vertices, adjacency, ops) in store
        layout, rows where ``found`` is False zero/padding. A hash is found when its cell's
        recomputed hash equals it in all 32 digits (~0.35 ms per cell)."""
        hashes = [str(h).strip().lower() for h in hashes]
        rows = self.rows(hashes)
        nv, adj, ops = self.spec_arrays(np.maximum(rows, 0))
        found = rows >= 0
        idx = np.flatnonzero(found)
        for i in tqdm(idx.tolist(), desc="check hashes", unit="cell", disable=not progress, mininterval=0.5):
            found[i] = spec_arrays_hash(int(nv[i]), adj[i], ops[i]) == hashes[i]
        nv[~found], adj[~found] = 0, 0
        ops[~found] = _PAD_OP
        return found, nv, adj, ops

    def spec(self, h: str) -> ModelSpec:
        """The spec of NB101 cell ``h`` in NB101's numbering; :class:`UnknownCellError` if no
        NB101 cell has that hash."""
        key = str(h).strip().lower()
        found, nv, adj, ops = self.lookup([key])
        if not found[0]:
            raise UnknownCellError(f"{h!r} is not the hash of any of NAS-Bench-101's {self.num_cells:,} cells "
                                   f"(NB101 hashes are 32 hex digits, e.g. 00005c142e6f48ac74fdcf73e3439874)")
        return _spec(int(nv[0]), adj[0], ops[0], key)

    def __contains__(self, h: object) -> bool:
        return isinstance(h, str) and bool(self.lookup([h])[0][0])

    def all_specs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every cell, in hash order: (hash prefixes uint64, num_vertices, adjacency, ops)."""
        prefix, codes = self._load()
        return (prefix.copy(),) + unpack_specs(codes)


def open_catalogue(path: str | os.PathLike | None = None) -> Catalogue:
    """The catalogue at ``path``, else the bundled ``data/nb101-catalogue.npz``."""
    p = Path(path).expanduser() if path is not None else bundled_file(CATALOGUE_NAME)
    if not p.exists():
        raise FileNotFoundError(f"no NB101 catalogue at {p}; build it with "
                                f"python data/scripts/build_nb101_catalogue.py --out {p}")
    return Catalogue(p)


def write_catalogue(path: str | os.PathLike, hashes: Sequence[str], num_vertices: np.ndarray,
                    adjacency: np.ndarray, ops: np.ndarray, **meta: str) -> int:
    """Write a catalogue (atomically) from full hashes and specs in store layout; returns the
    number of cells. Sorts by hash; the 16-digit prefixes must be distinct."""
    prefix, ok = hash_prefixes(hashes)
    if not ok.all():
        raise ValueError(f"not an NB101 hash: {list(np.asarray(hashes)[~ok][:1])}")
    order = np.argsort(prefix, kind="stable")
    prefix = prefix[order]
    if len(prefix) > 1 and not (prefix[1:] > prefix[:-1]).all():
        raise ValueError("two hashes share their first 16 hex digits; the catalogue format needs them distinct")
    codes = pack_specs(np.asarray(num_vertices)[order], np.asarray(adjacency)[order], np.asarray(ops)[order])
    arrays = {
        "hash_prefix": np.ascontiguousarray(prefix.astype(">u8").view(np.uint8).reshape(-1, 8).T),
        "spec": np.ascontiguousarray(codes.astype("<u4").view(np.uint8).reshape(-1, 4).T),
        "format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION),
        "num_cells": np.array(len(prefix)),
    }
    arrays.update({k: np.array(str(v)) for k, v in meta.items()})
    with atomic_path(Path(path), suffix=".npz") as tmp:
        # np.savez_compressed's layout with fixed timestamps: a rebuild is byte-identical
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
    return len(prefix)


def fill_store_specs(src: str | os.PathLike, out: str | os.PathLike | None = None, *,
                     catalogue: Catalogue | None = None, progress: bool = False) -> tuple[int, int]:
    """Write a copy of store ``src`` to ``out`` (default: ``src`` itself, replaced atomically)
    in which every cell without a spec takes its spec from the catalogue (hash-checked). Every
    other dataset and attribute is copied unchanged. Returns (specs filled, cells the
    catalogue does not know: they keep no spec)."""
    src = Path(src)
    out = Path(out) if out is not None else src
    cat = catalogue or open_catalogue()
    with h5py.File(src, "r") as f:
        if f.attrs.get("format") != STORE_FORMAT:
            raise ValueError(f"{src} is not a rankbench NB101 store")
        hashes = [h.decode() for h in f["hash"][...].tolist()]
        nv, adj, ops = f["num_vertices"][...], f["adjacency"][...], f["ops"][...]
    need = np.flatnonzero(nv <= 0)
    found, fnv, fadj, fops = cat.lookup([hashes[i] for i in need.tolist()], progress=progress)
    rows = need[found]
    nv[rows], adj[rows], ops[rows] = fnv[found], fadj[found], fops[found]
    with atomic_path(out, suffix=".h5") as tmp:  # both files closed before the rename
        with h5py.File(src, "r") as f, h5py.File(tmp, "w", track_order=False) as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            for name in f:
                if name not in ("num_vertices", "adjacency", "ops"):
                    f.copy(f[name], g, name=name)
            for name, data in (("num_vertices", nv), ("adjacency", adj), ("ops", ops)):
                d = f[name]
                g.create_dataset(name, data=data, chunks=d.chunks, compression=d.compression,
                                 compression_opts=d.compression_opts, shuffle=d.shuffle, track_times=False)
            if len(rows):
                note = f"{len(rows)} cells: rankbench's NB101 catalogue (rankbench data fill-specs)"
                old = g.attrs.get("spec_sources")
                g.attrs["spec_sources"] = f"{old}; {note}" if old else note
    return int(len(rows)), int(len(need) - len(rows))
