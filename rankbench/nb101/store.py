"""The NAS-Bench-101 store: one HDF5 file, opened lazily, queried by hash or spec.

``rankbench.nb101.open()`` finds the store (argument, ``$RANKBENCH_DATA``, ``data_home()/nb101.h5``,
then the bundled sample) and returns an :class:`NB101Store`. Opening reads only the root
attributes; the sorted hash index is read on the first lookup, a metric column on its first use.

Store format (``format = "rankbench-nb101"``, ``format_version = 1``)::

    /                      attrs: format, format_version, num_cells, epochs (int array),
                           max_repeats, is_sample, source, description, license, created,
                           rankbench_version (+ free-form provenance attrs)
    /hash                  (N,)     S32    NB101 keys, lower-case hex, unique, sorted ascending
    /trainable_parameters  (N,)     int64  -1 = unknown
    /num_vertices          (N,)     int8   vertices of the pruned cell; 0 = spec unknown
    /adjacency             (N,7,7)  uint8  pruned adjacency in the top-left corner, zero padded
    /ops                   (N,7)    int8   -1 input, -2 output, 0 conv3x3, 1 conv1x1, 2 maxpool3x3,
                                           -3 padding
    /epochs/<E>/num_repeats (N,)    int8   repeats stored for the cell at E epochs (0 = none)
    /epochs/<E>/<field>    (N,R_E)  float64 one column per repeat, repeats left-aligned,
                                           NaN = not available; group attr ``fields``

A field dataset exists only when at least one cell has it (per-field presence); a cell that
lacks it holds NaN. Fields: ``halfway_`` and ``final_`` x ``train_accuracy``,
``validation_accuracy``, ``test_accuracy``, ``training_time``; and ``total_time``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, cast

import h5py
import numpy as np

from rankbench._paths import bundled_file, data_home
from rankbench.nb101.spec import CODE_TO_OP, MAX_VERTICES, ModelSpec

__all__ = [
    "FORMAT", "FORMAT_VERSION", "FIELDS", "METRICS", "NB101Store", "Coverage", "NotInStoreError",
    "MissingDataError", "StoreWriter", "open", "default_path", "DOWNLOAD_HINT", "NB101_NUM_CELLS",
    "small_store_warning",
]

FORMAT = "rankbench-nb101"
FORMAT_VERSION = 1
SAMPLE_NAME = "nb101-sample.h5"
PAD_OP = -3
#: distinct cells (unique graphs) in NAS-Bench-101
NB101_NUM_CELLS = 423_624
#: per-repeat fields, in the order the importer keeps them
FIELDS = (
    "halfway_train_accuracy", "halfway_validation_accuracy", "halfway_test_accuracy",
    "halfway_training_time",
    "final_train_accuracy", "final_validation_accuracy", "final_test_accuracy", "final_training_time",
    "total_time",
)
#: metric names accepted by :meth:`NB101Store.query` -> stored field
METRICS = {f: f for f in FIELDS}
METRICS.update({f[len("final_"):]: f for f in FIELDS if f.startswith("final_")})

DOWNLOAD_HINT = (
    "download nasbench_only108.tfrecord (~499 MB) from "
    "https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord (see "
    "https://github.com/google-research/nasbench), then run: "
    "rankbench data import nasbench_only108.tfrecord"
)


class NotInStoreError(KeyError):
    """A cell (hash) that the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDataError(KeyError):
    """The store holds the cell but not the asked-for data (epoch budget, metric or spec)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Coverage:
    """How many of the asked (distinct) cells the store holds."""

    asked: int
    found: int
    missing: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.found / self.asked if self.asked else 1.0

    def __str__(self) -> str:
        return f"{self.found}/{self.asked} cells in the store ({100 * self.fraction:.1f}%)"


def default_path() -> Path:
    """Where ``rankbench data import`` writes and :func:`open` looks: ``data_home()/nb101.h5``."""
    return data_home() / "nb101.h5"


#: how :func:`open` found a store when it takes the place of the bundled sample
_SHADOWING = ("$RANKBENCH_DATA", "the default location")


def small_store_warning(path: str | os.PathLike, num_cells: int, *, shadows_sample: bool) -> str | None:
    """A warning for an imported store with fewer cells than NAS-Bench-101 (a partial or test
    import), or None. ``shadows_sample``: :func:`open` finds it before the bundled sample."""
    if num_cells >= NB101_NUM_CELLS:
        return None
    msg = f"{path} holds only {num_cells:,} cells; NAS-Bench-101 has {NB101_NUM_CELLS:,}"
    if shadows_sample:
        msg += (". rankbench.nb101.open() (and truth.source = nb101) finds it before the bundled sample, "
                "so it shadows the sample: move it away to use the sample again")
    return msg + f". For the full benchmark: {DOWNLOAD_HINT}"


def _resolve(path: str | os.PathLike | None) -> tuple[Path, str]:
    if path is not None:
        return Path(path).expanduser(), "the path argument"
    env = os.environ.get("RANKBENCH_DATA")
    if env:
        p = Path(env).expanduser()
        return (p / "nb101.h5" if p.is_dir() else p), "$RANKBENCH_DATA"
    p = default_path()
    if p.exists():
        return p, "the default location"
    return bundled_file(SAMPLE_NAME), "the bundled sample"


def open(path: str | os.PathLike | None = None) -> "NB101Store":  # noqa: A001 - NATS-Bench style
    """Open the NB101 store: ``path``, else ``$RANKBENCH_DATA`` (a file, or a folder holding
    ``nb101.h5``), else ``data_home()/nb101.h5``, else the bundled 30k-cell sample.

    ``store.path`` / ``store.is_sample`` / ``store.resolved_from`` say which one was used.
    """
    p, how = _resolve(path)
    if not p.exists():
        raise FileNotFoundError(
            f"no NB101 store at {p} (given by {how}). To create it, {DOWNLOAD_HINT} --out {p}. "
            f"Or open the bundled sample (30k cells, mostly one repeat of validation accuracy) "
            f"with rankbench.nb101.open() and neither a path nor $RANKBENCH_DATA."
        )
    return NB101Store(p, resolved_from=how)


def _as_hash(item: Any) -> str:
    if isinstance(item, ModelSpec):
        return item.hash
    if isinstance(item, bytes):
        item = item.decode("ascii", "replace")
    if isinstance(item, str):
        return item.strip().lower()
    raise TypeError(f"expected an NB101 hash (str) or a ModelSpec, got {type(item).__name__}")


_HEXCHAR = np.zeros(256, bool)
_HEXCHAR[np.frombuffer(b"0123456789abcdefABCDEF", np.uint8)] = True


def _lower_and_high(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S32``/``S33`` hashes -> (lower-cased ``S32``, first 16 hex digits as uint64, too long).

    The uint64 sorts like the hex strings do (for hex input; anything else fails the final
    whole-string comparison anyway)."""
    width = a.dtype.itemsize
    u8 = a.view(np.uint8).reshape(-1, width)
    head = u8[:, :32] | 0x20  # 'A'-'F' -> 'a'-'f'; digits unchanged
    too_long = cast(np.ndarray, u8[:, 32:].any(axis=1)) if width > 32 else np.zeros(len(u8), bool)
    h16 = head[:, :16]
    nib = (h16 & 0x0F) + 9 * (h16 >> 6)
    packed = np.ascontiguousarray((nib[:, 0::2] << 4) | (nib[:, 1::2] & 0x0F))
    high = packed.view(">u8").ravel().astype(np.uint64)
    return head.view("S32").ravel(), high, too_long


class NB101Store:
    """Read access to one store file; see the module docstring for the format.

    Use as a context manager or call :meth:`close`. Lookups are vectorised: the sorted hash
    array is searched with ``np.searchsorted``.
    """

    def __init__(self, path: str | os.PathLike, *, resolved_from: str = "the path argument"):
        self.path = Path(path)
        self.resolved_from = resolved_from
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise ValueError(f"{self.path} is not an HDF5 file ({e}); create a store with: "
                             f"rankbench data import nasbench_only108.tfrecord") from None
        attrs = self._f.attrs
        if attrs.get("format") != FORMAT:
            self._f.close()
            raise ValueError(f"{self.path} is not a rankbench NB101 store (format attr "
                             f"{attrs.get('format')!r}); create one with rankbench data import")
        version = int(attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            self._f.close()
            raise ValueError(f"{self.path} has store format {version}; this rankbench reads up to "
                             f"{FORMAT_VERSION}: upgrade rankbench")
        self.format_version = version
        self.is_sample = bool(attrs.get("is_sample", False))
        self.num_cells = int(attrs["num_cells"])
        self.epochs = tuple(int(e) for e in attrs["epochs"])
        self._hashes: np.ndarray | None = None
        self._high_keys: np.ndarray | None = None
        self._cols: dict[tuple[int, str], np.ndarray] = {}
        self._cell_cols: dict[str, np.ndarray] = {}
        self._fieldsets: dict[int, tuple[str, ...]] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._f:
            self._f.close()

    def __enter__(self) -> "NB101Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.num_cells

    def __repr__(self) -> str:
        kind = "bundled sample" if self.is_sample else "store"
        return f"<NB101Store {kind} {str(self.path)!r}: {self.num_cells} cells, epochs {list(self.epochs)}>"

    @property
    def description(self) -> str:
        """One line naming the store, for messages and CLI output."""
        kind = "bundled sample" if self.is_sample else "imported store"
        via = "" if self.resolved_from == "the bundled sample" else f", found via {self.resolved_from}"
        return f"{self.path} ({kind}, {self.num_cells:,} cells{via})"

    @property
    def warning(self) -> str | None:
        """Why this store may not be what the user wants (an imported store far smaller than
        NB101, e.g. the 30-cell test fixture), or None; the bundled sample says so itself."""
        if self.is_sample:
            return None
        return small_store_warning(self.path, self.num_cells, shadows_sample=self.resolved_from in _SHADOWING)

    def _not_in_store(self, h: str) -> NotInStoreError:
        hint = (f"; for the full benchmark: {DOWNLOAD_HINT}" if self.is_sample or self.num_cells < NB101_NUM_CELLS
                else "")
        return NotInStoreError(f"cell {h} is not in this store ({self.path}, {self.num_cells:,} cells{hint})")

    # -- index -----------------------------------------------------------------------------
    @property
    def _index(self) -> np.ndarray:
        """The sorted ``S32`` hash array, read on first use."""
        if self._hashes is None:
            self._hashes = self._f["hash"][...]
        return self._hashes

    @property
    def _high(self) -> np.ndarray | None:
        """First 16 hex digits of each indexed hash as uint64 (sorted like the hashes), or
        None if two hashes share them (then lookups search the strings)."""
        if self._high_keys is None:
            _, high, _ = _lower_and_high(self._index)
            unique = high.size < 2 or bool((high[1:] > high[:-1]).all())
            self._high_keys = high if unique else np.zeros(0, np.uint64)
        return self._high_keys if self._high_keys.size or not self._index.size else None

    def rows(self, items: Iterable[Any] | np.ndarray) -> np.ndarray:
        """Row of each hash/spec in the store (int64), -1 where the store lacks it.

        Hashes match case-insensitively; vectorised (``np.searchsorted`` on the sorted index).
        """
        names: np.ndarray | list[Any]
        if isinstance(items, np.ndarray) and items.dtype.kind in "SU":
            names = items.ravel()
        else:
            items = list(items)
            names = items if all(type(x) is str for x in items) else [_as_hash(x) for x in items]
        try:
            q = np.asarray(names, dtype="S33")
        except UnicodeEncodeError:  # not ASCII, so not a hash: keep it unmatchable
            q = np.asarray([str(x).encode("ascii", "replace") for x in names], dtype="S33")
        idx = self._index
        if q.size == 0 or idx.size == 0:
            return np.full(q.shape, -1, dtype=np.int64)
        qs, qhigh, too_long = _lower_and_high(q)
        high = self._high
        if high is not None:
            pos = np.searchsorted(high, qhigh)
        else:  # pragma: no cover - needs two stored hashes sharing 16 hex digits
            pos = np.searchsorted(idx, qs)
        np.minimum(pos, idx.size - 1, out=pos)
        found = (idx[pos] == qs) & ~too_long
        u8 = q.view(np.uint8).reshape(len(q), -1)
        changed = np.flatnonzero(found & (np.ascontiguousarray(u8[:, :32]).view("S32").ravel() != qs))
        if changed.size:  # '|0x20' maps a few non-hex bytes onto hex digits: reject those
            found[changed[~_HEXCHAR[u8[changed, :32]].all(axis=1)]] = False
        return np.where(found, pos, -1).astype(np.int64)

    def _find(self, h: str) -> int:
        idx = self._index
        try:
            key = h.encode("ascii")
        except UnicodeEncodeError:
            return -1
        if len(key) != 32 or idx.size == 0:
            return -1
        pos = int(np.searchsorted(idx, key))
        return pos if pos < idx.size and idx[pos] == key else -1

    def row(self, spec_or_hash: Any) -> int:
        """Row of one cell; :class:`NotInStoreError` if the store lacks it."""
        h = _as_hash(spec_or_hash)
        r = self._find(h)
        if r < 0:
            raise self._not_in_store(h)
        return r

    def __contains__(self, spec_or_hash: Any) -> bool:
        return self._find(_as_hash(spec_or_hash)) >= 0

    def _cell_column(self, name: str) -> np.ndarray:
        col = self._cell_cols.get(name)
        if col is None:
            col = self._cell_cols[name] = self._f[name][...]
        return col

    def hashes(self, *, with_spec: bool = False) -> list[str]:
        """All hashes in the store (sorted); ``with_spec=True``: only cells whose spec is stored."""
        idx = self._index
        if with_spec:
            idx = idx[self._cell_column("num_vertices") > 0]
        return [h.decode() for h in idx.tolist()]

    # -- data ------------------------------------------------------------------------------
    def _field(self, epochs: int, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        epochs = int(epochs)
        if epochs not in self.epochs:
            raise MissingDataError(
                f"this store ({self.path}) has no {epochs}-epoch results; epochs present: "
                f"{list(self.epochs)} (4/12/36 need nasbench_full.tfrecord imported)")
        name = METRICS[metric]
        if name not in self.fields(epochs):
            raise MissingDataError(
                f"this store ({self.path}) has no {name} at {epochs} epochs; fields present: "
                f"{self.fields(epochs)}")
        return name

    def _column(self, epochs: int, name: str) -> np.ndarray:
        key = (int(epochs), name)
        col = self._cols.get(key)
        if col is None:
            col = self._cols[key] = self._f[f"epochs/{int(epochs)}/{name}"][...]
        return col

    def fields(self, epochs: int = 108) -> list[str]:
        """Metric fields stored at ``epochs`` (per-field presence)."""
        epochs = int(epochs)
        if epochs not in self.epochs:
            return []
        if epochs not in self._fieldsets:
            group = self._f[f"epochs/{epochs}"]
            self._fieldsets[epochs] = tuple(f for f in FIELDS if f in group)
        return list(self._fieldsets[epochs])

    def num_repeats(self, spec_or_hash: Any, epochs: int = 108) -> int:
        """How many training repeats the store holds for the cell at ``epochs``."""
        r = self.row(spec_or_hash)
        if int(epochs) not in self.epochs:
            return 0
        return int(self._column(epochs, "num_repeats")[r])

    def query(self, spec_or_hash: Any, epochs: int = 108, metric: str = "validation_accuracy",
              reduce: str = "mean", rng: np.random.Generator | int | None = None) -> float | np.ndarray:
        """One cell's ``metric`` after ``epochs``: the mean over repeats (``reduce="mean"``),
        every stored repeat (``"all"``, a NaN-free array) or one repeat at random (``"random"``,
        as NB101's own API does; ``rng`` a Generator or seed).

        ``metric``: validation_accuracy / test_accuracy / train_accuracy / training_time (final),
        their ``halfway_`` versions, or total_time. Raises :class:`NotInStoreError` for a cell
        the store lacks, :class:`MissingDataError` when the cell lacks that metric.
        """
        h = _as_hash(spec_or_hash)
        r = self.row(h)
        name = self._field(epochs, metric)
        vals = self._column(epochs, name)[r]
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            raise MissingDataError(f"cell {h} is in this store ({self.path}) but has no {name} "
                                   f"at {int(epochs)} epochs")
        if reduce == "mean":
            return float(vals.mean())
        if reduce == "all":
            return vals.copy()
        if reduce == "random":
            return float(np.random.default_rng(rng).choice(vals))
        raise ValueError(f"reduce must be 'mean', 'all' or 'random', got {reduce!r}")

    def query_many(self, items: Iterable[Any], epochs: int = 108, metric: str = "validation_accuracy",
                   reduce: str = "mean", rng: np.random.Generator | int | None = None,
                   missing: str = "nan") -> np.ndarray:
        """:meth:`query` for many cells at once: a float array, NaN where the store lacks the
        cell or its metric (``missing="raise"`` raises instead). ``reduce="all"`` gives an
        ``(n, repeats)`` array, NaN-padded."""
        if missing not in ("nan", "raise"):
            raise ValueError(f"missing must be 'nan' or 'raise', got {missing!r}")
        if reduce not in ("mean", "all", "random"):
            raise ValueError(f"reduce must be 'mean', 'all' or 'random', got {reduce!r}")
        items = items if isinstance(items, np.ndarray) else list(items)
        rows = self.rows(items)
        if missing == "raise" and (rows < 0).any():
            bad = int(np.flatnonzero(rows < 0)[0])
            raise self._not_in_store(_as_hash(items[bad]))
        name = self._field(epochs, metric)
        col = self._column(epochs, name)
        vals = col[np.maximum(rows, 0)]
        vals[rows < 0] = np.nan
        ok = ~np.isnan(vals)
        counts = ok.sum(axis=1)
        if missing == "raise" and (counts == 0).any():
            bad = int(np.flatnonzero(counts == 0)[0])
            raise MissingDataError(f"cell {_as_hash(items[bad])} is in this store ({self.path}) but "
                                   f"has no {name} at {int(epochs)} epochs")
        if reduce == "all":
            order = np.argsort(~ok, axis=1, kind="stable")  # left-align the present repeats
            return np.take_along_axis(vals, order, axis=1)
        if reduce == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(counts > 0, np.nansum(vals, axis=1) / np.maximum(counts, 1), np.nan)
        gen = np.random.default_rng(rng)
        order = np.argsort(~ok, axis=1, kind="stable")
        pick = np.floor(gen.random(len(rows)) * np.maximum(counts, 1)).astype(np.int64)
        out = np.take_along_axis(vals, np.take_along_axis(order, pick[:, None], axis=1), axis=1)[:, 0]
        out[counts == 0] = np.nan
        return out

    def params(self, spec_or_hash: Any) -> int:
        """NB101 ``trainable_parameters`` of the cell."""
        h = _as_hash(spec_or_hash)
        v = int(self._cell_column("trainable_parameters")[self.row(h)])
        if v < 0:
            raise MissingDataError(f"cell {h} is in this store ({self.path}) but its parameter count is not")
        return v

    def has_spec(self, spec_or_hash: Any) -> bool:
        """Whether the store holds the cell's adjacency and ops."""
        return bool(self._cell_column("num_vertices")[self.row(spec_or_hash)] > 0)

    def spec(self, spec_or_hash: Any) -> ModelSpec:
        """The cell's (pruned) :class:`ModelSpec`; :class:`MissingDataError` if the store holds
        the cell without its spec (most of the bundled sample: see :meth:`hashes`)."""
        h = _as_hash(spec_or_hash)
        r = self.row(h)
        n = int(self._cell_column("num_vertices")[r])
        if n <= 0:
            raise MissingDataError(
                f"cell {h} is in this store ({self.path}) but its spec is not; "
                f"store.hashes(with_spec=True) lists the cells that have one")
        matrix = self._cell_column("adjacency")[r][:n, :n]
        ops = [CODE_TO_OP[int(c)] for c in self._cell_column("ops")[r][:n]]
        return ModelSpec(matrix, ops)

    def spec_columns(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Every cell whose spec is stored, in hash order, as bulk columns (one read each, not
        one per cell): (hashes, num_vertices (N,), adjacency (N, 7, 7) 0/1, op codes (N, 7);
        vertex ``v < num_vertices`` is real, the rest padding). :meth:`spec` for one cell."""
        nv = self._cell_column("num_vertices")
        rows = np.flatnonzero(nv > 0)
        return ([h.decode() for h in self._index[rows].tolist()], nv[rows],
                self._cell_column("adjacency")[rows], self._cell_column("ops")[rows])

    def coverage(self, items: Iterable[Any]) -> Coverage:
        """How many of the distinct cells in ``items`` the store holds, and which are missing."""
        hs = list(dict.fromkeys(_as_hash(x) for x in items))
        rows = self.rows(hs)
        missing = [h for h, r in zip(hs, rows.tolist()) if r < 0]
        return Coverage(asked=len(hs), found=len(hs) - len(missing), missing=missing)

    def info(self) -> dict[str, Any]:
        """What the store holds: path, sample or not, cells, epochs, repeats, fields, provenance."""
        repeats, fields = {}, {}
        for e in self.epochs:
            counts = np.bincount(self._column(e, "num_repeats").astype(np.int64), minlength=1)
            repeats[e] = {int(k): int(v) for k, v in enumerate(counts) if v and k}
            fields[e] = self.fields(e)
        nv = self._cell_column("num_vertices")
        params = self._cell_column("trainable_parameters")
        skip = {"format", "format_version", "num_cells", "epochs", "is_sample", "max_repeats"}
        prov = {k: (v.tolist() if isinstance(v, np.ndarray) else (v.item() if hasattr(v, "item") else v))
                for k, v in self._f.attrs.items() if k not in skip}
        return {
            "path": str(self.path),
            "resolved_from": self.resolved_from,
            "is_sample": self.is_sample,
            "format": FORMAT,
            "format_version": self.format_version,
            "num_cells": self.num_cells,
            "epochs": list(self.epochs),
            "repeats_per_cell": repeats,
            "fields": fields,
            "cells_with_spec": int((nv > 0).sum()),
            "cells_with_params": int((params >= 0).sum()),
            "provenance": prov,
            "warning": self.warning,
        }


class StoreWriter:
    """Writes a store into an open, empty ``h5py.File`` (the importer and the sample script use it).

    Call :meth:`write_cells` once, then :meth:`write_epoch` per epoch budget; :meth:`finish`
    sets the root attributes. The caller makes the file atomic (``rankbench._io.atomic_path``).
    """

    def __init__(self, f: h5py.File, *, compression_level: int = 4, chunk_rows: int = 16384):
        self.f = f
        self.level = compression_level
        self.chunk_rows = chunk_rows
        self.n: int | None = None
        self.max_repeats = 0

    def _ds(self, name: str, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data)
        chunks = (max(1, min(len(data), self.chunk_rows)),) + data.shape[1:] if len(data) else None
        self.f.create_dataset(name, data=data, chunks=chunks, compression="gzip" if len(data) else None,
                              compression_opts=self.level if len(data) else None, shuffle=bool(len(data)),
                              track_times=False)

    def write_cells(self, hashes: np.ndarray, trainable_parameters: np.ndarray,
                    num_vertices: np.ndarray | None = None, adjacency: np.ndarray | None = None,
                    ops: np.ndarray | None = None) -> None:
        """Per-cell data; ``hashes`` must be unique, sorted, 32 lower-case hex characters each."""
        hashes = np.asarray(hashes, dtype="S32")
        n = len(hashes)
        if n > 1 and not (hashes[1:] > hashes[:-1]).all():
            raise ValueError("hashes must be unique and sorted ascending")
        if n:
            u8 = hashes.view(np.uint8).reshape(n, 32)
            hexok = ((u8 >= ord("0")) & (u8 <= ord("9"))) | ((u8 >= ord("a")) & (u8 <= ord("f")))
            if not hexok.all():
                bad = hashes[~hexok.all(axis=1)][0]
                raise ValueError(f"not an NB101 hash (32 lower-case hex digits): {bad!r}")
        self.n = n
        if num_vertices is None:
            num_vertices = np.zeros(n, np.int8)
        if adjacency is None:
            adjacency = np.zeros((n, MAX_VERTICES, MAX_VERTICES), np.uint8)
        if ops is None:
            ops = np.full((n, MAX_VERTICES), PAD_OP, np.int8)
        self._ds("hash", hashes)
        self._ds("trainable_parameters", np.asarray(trainable_parameters, np.int64))
        self._ds("num_vertices", np.asarray(num_vertices, np.int8))
        self._ds("adjacency", np.asarray(adjacency, np.uint8).reshape(n, MAX_VERTICES, MAX_VERTICES))
        self._ds("ops", np.asarray(ops, np.int8).reshape(n, MAX_VERTICES))

    def write_epoch(self, epochs: int, num_repeats: np.ndarray, fields: dict[str, np.ndarray]) -> None:
        """One epoch budget: per-cell repeat counts and ``(N, R)`` arrays per present field."""
        assert self.n is not None, "write_cells first"
        g = self.f.require_group(f"epochs/{int(epochs)}")
        self._ds(f"epochs/{int(epochs)}/num_repeats", np.asarray(num_repeats, np.int8))
        present = []
        for name in FIELDS:
            if name not in fields:
                continue
            self.write_field(epochs, name, fields[name])
            present.append(name)
        g.attrs["fields"] = present

    def write_field(self, epochs: int, name: str, values: np.ndarray) -> None:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}")
        values = np.asarray(values, np.float64)
        if values.ndim != 2 or values.shape[0] != self.n:
            raise ValueError(f"{name}: expected shape ({self.n}, repeats), got {values.shape}")
        self.max_repeats = max(self.max_repeats, values.shape[1])
        self._ds(f"epochs/{int(epochs)}/{name}", values)
        g = self.f.require_group(f"epochs/{int(epochs)}")
        g.attrs["fields"] = [f for f in FIELDS if f in g]

    def finish(self, *, is_sample: bool, reproducible: bool = False, **provenance: Any) -> None:
        """Root attributes; ``reproducible=True`` leaves out the creation time (same bytes on
        every rebuild, as for the bundled sample)."""
        from datetime import datetime, timezone

        from rankbench import __version__

        a = self.f.attrs
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        a["num_cells"] = int(self.n or 0)
        epochs = sorted(int(e) for e in self.f["epochs"]) if "epochs" in self.f else []
        a["epochs"] = np.asarray(epochs, dtype=np.int64)
        a["max_repeats"] = int(self.max_repeats)
        a["is_sample"] = bool(is_sample)
        a["rankbench_version"] = __version__
        if not reproducible:
            a["created"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for k, v in provenance.items():
            if v is not None:
                a[k] = v

