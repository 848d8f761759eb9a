"""Import NB101's official tfrecord files (nasbench_only108 / nasbench_full) into a store.

No TensorFlow: :mod:`rankbench.nb101.tfrecord` checks the framing, each record's JSON row
``[hash, epochs, adjacency 0/1 string, "op,op,...", base64 ModelMetrics]`` is parsed here and
the protobuf by :mod:`rankbench.nb101.metrics_proto`. Records are streamed into compact typed
buffers (about 100 bytes per record, 150 per cell), so memory stays bounded by the data kept,
not by Python objects; the store is written atomically, after the whole file has checked out.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from rankbench._io import atomic_path
from rankbench.nb101.metrics_proto import ProtoDecodeError, decode_raw
from rankbench.nb101.spec import MAX_VERTICES, OP_CODES
from rankbench.nb101.store import FIELDS, FORMAT, PAD_OP, StoreWriter, default_path, small_store_warning
from rankbench.nb101.tfrecord import CorruptRecordError, read_records

__all__ = ["ImportSummary", "import_tfrecord", "resolve_destination", "NotNB101Error", "StoreExistsError",
           "NB101_REPEATS"]

_NAN = float("nan")
_HEX = frozenset("0123456789abcdef")
_N_FIELDS = len(FIELDS)
#: training records NB101 holds per cell and epoch budget
NB101_REPEATS = 3


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_tfrecord` wrote."""

    path: Path
    records: int
    cells: int
    epochs: tuple[int, ...]
    max_repeats: int
    seconds: float
    source_bytes: int
    #: epochs -> number of cells with fewer than NB101's 3 records at that budget
    short_cells: dict[int, int] = field(default_factory=dict)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else math.inf

    @property
    def warning(self) -> str | None:
        """Set when the store holds far fewer cells than NB101 (a partial or test file)."""
        return small_store_warning(self.path, self.cells, shadows_sample=_same_file(self.path, default_path()))

    @property
    def repeats_warning(self) -> str | None:
        """Set when some cells have fewer than NB101's 3 training records at an epoch budget:
        NB101 always has 3, so the file is incomplete (e.g. cut at a record boundary)."""
        if not self.short_cells:
            return None
        parts = ", ".join(f"{n:,} of {self.cells:,} cells at {e} epochs" for e, n in sorted(self.short_cells.items()))
        return (f"fewer than {NB101_REPEATS} records per cell: {parts}. NB101 trained every cell "
                f"{NB101_REPEATS} times, so the file is incomplete (cut at a record boundary, e.g. by an "
                f"interrupted download) and those cells' truth is the mean of fewer repeats. Download the "
                f"file again and re-import it with --force")


class StoreExistsError(ValueError):
    """The destination already holds a store and replacing it was not asked for (``force``)."""


class NotNB101Error(CorruptRecordError):
    """A TFRecord file whose first record is not an NB101 row: another dataset, not a bad download."""


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _same_file(a: Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def resolve_destination(out: str | os.PathLike | None, *, force: bool = False) -> Path:
    """The store file an import into ``out`` writes, checked before the (long) import starts.

    ``None``: ``data_home()/nb101.h5``; an existing folder (or a path ending in a separator):
    ``nb101.h5`` inside it; else a file name ending in ``.h5``. An existing store there is
    replaced (atomically) only with ``force`` (else :class:`StoreExistsError`); any other
    existing file never is. The nearest existing folder must be writable. Raises ValueError
    saying what to change.
    """
    if out is None:
        p = default_path()
    else:
        raw = os.fspath(out)
        p = Path(raw).expanduser()
        if p.is_dir() or raw.endswith((os.sep, "/")):
            p = p / "nb101.h5"
        elif p.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"--out {raw}: give an existing folder (the store goes in as nb101.h5) or a "
                             f"file name ending in .h5")
    if p.exists():
        if not p.is_file():
            raise ValueError(f"{p} exists and is not a file; give another --out")
        if not _is_store(p):
            raise ValueError(f"{p} exists and is not a rankbench NB101 store; refusing to overwrite it: give "
                             f"another --out, or move that file away")
        if not force:
            raise StoreExistsError(f"{p} already holds an NB101 store ({_describe_store(p)}); refusing to replace "
                                   f"it: add --force to replace it, or give another --out")
    parent = next(a for a in p.parents if a.exists())  # the filesystem root always exists
    if not parent.is_dir():
        raise ValueError(f"cannot write {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {p}: no write permission in {parent}; give another --out")
    return p


def _describe_store(p: Path) -> str:
    try:
        with h5py.File(p, "r") as f:
            a = f.attrs
            n = int(a.get("num_cells", 0))
            recs = a.get("source_records")
            src = a.get("source")
            return f"{n:,} cells" + (f", {int(recs):,} records" if recs is not None else "") + \
                (f", from {src}" if src is not None else "")
    except (OSError, ValueError, TypeError):
        return "unreadable attributes"


def _is_store(p: Path) -> bool:
    with p.open("rb") as f:
        if f.read(8) != _HDF5_SIGNATURE:
            return False
    try:
        with h5py.File(p, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def _metrics_tuple(evals: list[list], total: float | None) -> tuple[float, ...]:
    """The 9 stored fields (store.FIELDS order): halfway = second-to-last evaluation, final = last.

    Evaluations are ordered by ``current_epoch`` when all have one (the official records hold
    at-init, halfway, final; the committed fixture only halfway and final).
    """
    if not evals:
        raise ValueError("ModelMetrics has no evaluation_data")
    if len(evals) > 1 and all(e[1] is not None for e in evals):
        evals = sorted(evals, key=lambda e: e[1])
    f = evals[-1]
    nan = _NAN
    out = (
        nan, nan, nan, nan,
        nan if f[3] is None else f[3], nan if f[4] is None else f[4],
        nan if f[5] is None else f[5], nan if f[2] is None else f[2],
        nan if total is None else total,
    )
    if len(evals) > 1:
        h = evals[-2]
        out = (nan if h[3] is None else h[3], nan if h[4] is None else h[4],
               nan if h[5] is None else h[5], nan if h[2] is None else h[2]) + out[4:]
    return out


def _parse(data: bytes) -> tuple[str, int, str, str, list, int | None, float | None]:
    """One record's JSON row -> (hash, epochs, adjacency, ops, evaluations, params, total_time).

    Raises ValueError (saying what is wrong) for anything that is not an NB101 row.
    """
    try:
        row = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"record is not a UTF-8 JSON row ({e})") from None
    if type(row) is not list or len(row) != 5:
        raise ValueError("record is not NB101's 5-element JSON row [hash, epochs, adjacency, ops, metrics]")
    h, epochs, adj, ops, b64 = row
    if type(h) is not str or len(h) != 32 or not _HEX.issuperset(h):
        raise ValueError(f"hash {h!r} is not 32 lower-case hex digits")
    if type(epochs) is not int or not 0 < epochs < 32768:
        raise ValueError(f"epochs {epochs!r} is not a positive integer")
    if type(adj) is not str or type(ops) is not str or type(b64) is not str:
        raise ValueError("adjacency, ops and metrics must be strings")
    try:
        raw = _b64decode(b64)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"metrics are not valid base64 ({e})") from None
    try:
        evals, params, total = decode_raw(raw)
    except ProtoDecodeError as e:
        raise ValueError(f"ModelMetrics protobuf: {e}") from None
    return h, epochs, adj, ops, evals, params, total


try:  # strict base64 in C (Python 3.11+), else the stdlib's validating decoder
    binascii.a2b_base64(b"", strict_mode=True)
    _b64decode = functools.partial(binascii.a2b_base64, strict_mode=True)
except TypeError:  # pragma: no cover - Python 3.10
    _b64decode = functools.partial(base64.b64decode, validate=True)

_TO_BITS = bytes.maketrans(b"01", b"\x00\x01")
_OP_BYTE = {op: code & 0xFF for op, code in OP_CODES.items()}
_PAD_BYTE = PAD_OP & 0xFF


def _cell_bytes(adj: str, ops: str) -> tuple[int, bytes, bytes]:
    """(vertices, 7x7 uint8 adjacency bytes, 7 int8 op-code bytes) of a row's cell."""
    n = math.isqrt(len(adj))
    if n * n != len(adj) or not 2 <= n <= MAX_VERTICES or adj.count("0") + adj.count("1") != len(adj):
        raise ValueError(f"adjacency {adj!r} is not an n*n 0/1 string with 2 <= n <= {MAX_VERTICES}")
    names = ops.split(",")
    if len(names) != n:
        raise ValueError(f"{len(names)} ops for a {n}-vertex adjacency")
    try:
        codes = bytes(_OP_BYTE[o] for o in names)
    except KeyError as e:
        raise ValueError(f"unknown op {e.args[0]!r}") from None
    bits = adj.encode("ascii").translate(_TO_BITS)
    if n < MAX_VERTICES:
        pad = b"\x00" * (MAX_VERTICES - n)
        bits = b"".join(bits[i * n:(i + 1) * n] + pad for i in range(n))
        bits += b"\x00" * (MAX_VERTICES * (MAX_VERTICES - n))
        codes += bytes([_PAD_BYTE]) * (MAX_VERTICES - n)
    return n, bits, codes


def _check_specs(nv: np.ndarray, adj: np.ndarray, ops: np.ndarray, where: np.ndarray, src: Path) -> None:
    """NB101's cell rules, vectorised over all cells: a strictly upper-triangular DAG of at most
    9 edges, input first, output last, NB101 ops in between (a cell breaking them is corrupt)."""
    n_cells = len(nv)
    rows = np.arange(n_cells)
    last = ops[rows, np.maximum(nv.astype(np.int64) - 1, 0)]
    inner = np.arange(MAX_VERTICES)[None, :]
    interior = (inner > 0) & (inner < nv[:, None] - 1)
    checks = (
        (np.tril(adj).reshape(n_cells, -1).any(axis=1), "adjacency is not strictly upper-triangular"),
        (adj.reshape(n_cells, -1).sum(axis=1) > 9, "more than 9 edges"),
        (ops[:, 0] != OP_CODES["input"], "first op is not 'input'"),
        (last != OP_CODES["output"], "last op is not 'output'"),
        ((interior & (ops < 0)).any(axis=1), "an interior vertex is 'input' or 'output'"),
    )
    for bad, what in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CorruptRecordError(f"invalid NB101 cell: {what}", index=int(where[i, 0]),
                                     offset=int(where[i, 1]), path=src)


def import_tfrecord(src: str | os.PathLike, out: str | os.PathLike | None = None, *,
                    progress: bool = True, compression_level: int = 4, force: bool = False) -> ImportSummary:
    """Convert an official NB101 tfrecord file into a store at ``out`` (default
    ``data_home()/nb101.h5``). Keeps every repeat and epoch budget found.

    ``out`` may be a folder (``nb101.h5`` inside it); it is checked first
    (:func:`resolve_destination`, a ValueError; an existing store is replaced only with
    ``force``). Cells with fewer than NB101's 3 records at an epoch budget are counted in
    ``ImportSummary.short_cells`` (a truncated file). Raises
    :class:`~rankbench.nb101.tfrecord.CorruptRecordError` (naming record and byte offset) for a
    corrupt, truncated or malformed file, its subclasses
    :class:`~rankbench.nb101.tfrecord.NotTFRecordError` for a file that is no TFRecord at all and
    :class:`NotNB101Error` for a TFRecord of something else; ``out`` is then left as it was.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"no such tfrecord file: {src}")
    out = resolve_destination(out, force=force)
    size = src.stat().st_size
    t0 = time.perf_counter()

    cell_id: dict[str, int] = {}
    c_params, c_nv, c_adj, c_ops = array("q"), array("b"), bytearray(), bytearray()
    c_where = array("q")  # first record index and byte offset of each cell, for error messages
    r_cell, r_epochs, r_metrics = array("i"), array("h"), array("d")

    from tqdm import tqdm

    bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
               desc=f"import {src.name}", mininterval=0.5)
    done = n_records = 0
    try:
        for index, offset, data in read_records(src):
            try:
                h, epochs, adj, ops, evals, params, total = _parse(data)
                cid = cell_id.get(h)
                if cid is None:
                    n, m, codes = _cell_bytes(adj, ops)
                    cid = cell_id[h] = len(cell_id)
                    c_params.append(-1 if params is None else params)
                    c_nv.append(n)
                    c_adj += m
                    c_ops += codes
                    c_where.extend((index, offset))
                r_metrics.extend(_metrics_tuple(evals, total))
            except ValueError as e:
                if index == 0:  # the framing checked out: a TFRecord, but not of NB101
                    raise NotNB101Error(f"a TFRecord file, but not NAS-Bench-101's: {e}", index=index,
                                        offset=offset, path=src) from None
                raise CorruptRecordError(str(e), index=index, offset=offset, path=src) from None
            r_cell.append(cid)
            r_epochs.append(epochs)
            n_records += 1
            if n_records & 4095 == 0:
                bar.update(offset + 16 + len(data) - done)
                done = offset + 16 + len(data)
        bar.update(size - done)
    finally:
        bar.close()
    if n_records == 0:
        raise CorruptRecordError("the file holds no records", path=src)

    nv = np.frombuffer(c_nv, np.int8)
    adjacency = np.frombuffer(bytes(c_adj), np.uint8).reshape(-1, MAX_VERTICES, MAX_VERTICES)
    ops_codes = np.frombuffer(bytes(c_ops), np.int8).reshape(-1, MAX_VERTICES)
    _check_specs(nv, adjacency, ops_codes, np.frombuffer(c_where, np.int64).reshape(-1, 2), src)

    # sort cells by hash; records by (cell, epochs, file order) -> repeat index
    hashes = np.array(list(cell_id), dtype="S32")
    del cell_id
    order = np.argsort(hashes, kind="stable")
    new_id = np.empty(len(order), np.int64)
    new_id[order] = np.arange(len(order))
    rc = new_id[np.frombuffer(r_cell, np.int32)]
    re = np.frombuffer(r_epochs, np.int16).astype(np.int64)
    metrics = np.frombuffer(r_metrics, np.float64).reshape(-1, _N_FIELDS)
    rec_order = np.lexsort((re, rc))
    rc, re = rc[rec_order], re[rec_order]
    starts = np.ones(len(rc), bool)
    starts[1:] = (rc[1:] != rc[:-1]) | (re[1:] != re[:-1])
    start_pos = np.maximum.accumulate(np.where(starts, np.arange(len(rc)), 0))
    rep = np.arange(len(rc)) - start_pos
    epochs_present = sorted(int(e) for e in np.unique(re))
    n_cells = len(hashes)
    short: dict[int, int] = {}

    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            w = StoreWriter(f, compression_level=compression_level)
            w.write_cells(hashes[order], np.frombuffer(c_params, np.int64)[order], nv[order],
                          adjacency[order], ops_codes[order])
            max_rep = 0
            for epoch in epochs_present:
                sel = np.flatnonzero(re == epoch)
                rows, reps = rc[sel], rep[sel]
                n_rep = int(reps.max()) + 1
                if n_rep > 127:
                    raise CorruptRecordError(f"{n_rep} repeats of one cell at {epoch} epochs; NB101 has 3",
                                             path=src)
                max_rep = max(max_rep, n_rep)
                counts = np.bincount(rows, minlength=n_cells)
                n_short = int((counts < NB101_REPEATS).sum())
                if n_short:
                    short[epoch] = n_short
                w.write_epoch(epoch, counts, {})
                src_rows = rec_order[sel]
                for j, name in enumerate(FIELDS):
                    col = metrics[src_rows, j]
                    if np.isnan(col).all():
                        continue  # per-field presence: absent from every record
                    values = np.full((n_cells, n_rep), np.nan)
                    values[rows, reps] = col
                    w.write_field(epoch, name, values)
                    del values
            w.finish(
                is_sample=False,
                source=src.name,
                source_bytes=size,
                source_records=n_records,
                description=("NAS-Bench-101 (Ying et al., ICML 2019), imported from the official "
                             f"{src.name} by rankbench data import"),
                license="Apache-2.0 (NAS-Bench-101 data, google-research/nasbench)",
            )
    return ImportSummary(path=out, records=n_records, cells=n_cells, epochs=tuple(epochs_present),
                         max_repeats=max_rep, seconds=time.perf_counter() - t0, source_bytes=size,
                         short_cells=short)
