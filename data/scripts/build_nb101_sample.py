"""Build data/nb101-sample.h5, the bundled NB101 store, from the real NB101 subsets.

Inputs (NAS-Bench-101 release, Apache-2.0, google-research/nasbench, as republished):

- nasbench-vis-20k.json, nasbench-vis-10k.json: per cell ONE training repeat (which one is
  unknown) of the final validation accuracy after 4, 12, 36 and 108 epochs, the final training
  time (kept at 108 epochs, in the same repeat slot) and trainable_parameters; no spec.
- nasbench-vis-1k-specs.json: the first 1,000 cells of the 20k file again, adding adjacency
  and op codes (-3 pads cells with fewer than 7 vertices; the padding is dropped here).
- naslib-nb101-30-full.pkl: 30 further cells with their spec and all three repeats of
  halfway/final train/validation/test accuracy and training time at 108 epochs.

Cells are merged by hash (the sources overlap only where the 1k file repeats the 20k); values
that two sources both give must agree, and every spec's recomputed hash must equal its key.
The 29,001 cells whose source gives no spec take theirs from the NB101 catalogue
(data/nb101-catalogue.npz, built by build_nb101_catalogue.py from rankbench's enumeration; NB101's
own numbering): each one's hash is recomputed and must equal its key. No value is changed.

    python data/scripts/build_nb101_sample.py [--source ../shared/data/nb101] [--out data/nb101-sample.h5]
"""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import h5py
import numpy as np

from rankbench._io import atomic_path
from rankbench.nb101.catalogue import open_catalogue
from rankbench.nb101.spec import MAX_VERTICES, OP_CODES, ModelSpec
from rankbench.nb101.store import PAD_OP, StoreWriter

REPO = Path(__file__).resolve().parents[2]
VIS = ("nasbench-vis-20k.json", "nasbench-vis-10k.json")
SPECS = "nasbench-vis-1k-specs.json"
PKL = "naslib-nb101-30-full.pkl"
VIS_EPOCHS = (4, 12, 36, 108)
PKL_FIELDS = ("halfway_train_accuracy", "halfway_validation_accuracy", "halfway_test_accuracy",
              "halfway_training_time", "final_train_accuracy", "final_validation_accuracy",
              "final_test_accuracy", "final_training_time")


class Cell:
    __slots__ = ("params", "spec", "metrics")

    def __init__(self):
        self.params = None
        self.spec = None  # (n, n x n 0/1 matrix, op codes)
        self.metrics: dict[int, dict[str, list[float]]] = {}


def _set(cell: Cell, h: str, attr: str, value) -> None:
    old = getattr(cell, attr)
    if old is not None and not _same(old, value):
        raise SystemExit(f"{h}: sources disagree on {attr}: {old!r} vs {value!r}")
    setattr(cell, attr, value)


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return a[0] == b[0] and np.array_equal(a[1], b[1]) and list(a[2]) == list(b[2])
    return a == b


def _set_metrics(cell: Cell, h: str, epochs: int, values: dict[str, list[float]]) -> None:
    old = cell.metrics.get(epochs)
    if old is not None and old != values:
        raise SystemExit(f"{h}: sources disagree on {epochs}-epoch metrics: {old} vs {values}")
    cell.metrics[epochs] = values


def _spec(h: str, matrix: np.ndarray, ops: list) -> tuple:
    spec = ModelSpec(matrix, ops)
    if spec.hash != h:
        raise SystemExit(f"{h}: the spec hashes to {spec.hash}")
    if spec.num_vertices != len(ops):
        raise SystemExit(f"{h}: the stored spec is not pruned")
    return (len(ops), np.asarray(matrix, np.uint8), [OP_CODES[o] for o in spec.ops])


def collect(source: Path) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for name in VIS + (SPECS,):
        cols = json.loads((source / name).read_text())
        n = len(cols["key"])
        for i in range(n):
            h = cols["key"][i]
            c = cells.setdefault(h, Cell())
            _set(c, h, "params", int(cols["trainable_parameters"][i]))
            for e in VIS_EPOCHS:
                vals = {"final_validation_accuracy": [float(cols[f"{e}_final_validation_accuracy"][i])]}
                if e == 108:
                    vals["final_training_time"] = [float(cols["final_training_time"][i])]
                _set_metrics(c, h, e, vals)
            if "adjacency" in cols:
                ops = [int(o) for o in cols["operations"][i]]
                nv = len(ops) - ops.count(PAD_OP)
                m = np.asarray(cols["adjacency"][i], dtype=float)
                if ops[nv:] != [PAD_OP] * (len(ops) - nv) or m[nv:].any() or m[:, nv:].any():
                    raise SystemExit(f"{h}: unexpected -3 padding")
                _set(c, h, "spec", _spec(h, m[:nv, :nv].astype(np.int64), ops[:nv]))
        print(f"{name}: {n} cells")
    with open(source / PKL, "rb") as f:
        raw = pickle.load(f)
    for h, (fixed, computed) in raw.items():
        c = cells.setdefault(h, Cell())
        _set(c, h, "params", int(fixed["trainable_parameters"]))
        m = np.asarray(fixed["module_adjacency"]).astype(np.int64)
        _set(c, h, "spec", _spec(h, m, list(fixed["module_operations"])))
        for e, reps in computed.items():
            _set_metrics(c, h, int(e), {k: [float(r[k]) for r in reps] for k in PKL_FIELDS})
    print(f"{PKL}: {len(raw)} cells")
    return cells


def fill_from_catalogue(cells: dict[str, Cell]) -> int:
    """Give every cell without a spec its spec from the NB101 catalogue (hash-checked)."""
    missing = sorted(h for h, c in cells.items() if c.spec is None)
    found, nv, adj, ops = open_catalogue().lookup(missing, progress=True)
    if not found.all():
        raise SystemExit(f"{int((~found).sum())} cells are not in the NB101 catalogue, e.g. "
                         f"{missing[int(np.flatnonzero(~found)[0])]}")
    for i, h in enumerate(missing):
        k = int(nv[i])
        cells[h].spec = (k, adj[i, :k, :k].astype(np.uint8), [int(o) for o in ops[i, :k]])
    print(f"nb101-catalogue.npz: specs for {len(missing)} cells")
    return len(missing)


def write(cells: dict[str, Cell], out: Path) -> None:
    hashes = sorted(cells)
    n = len(hashes)
    params = np.array([-1 if cells[h].params is None else cells[h].params for h in hashes], np.int64)
    nv = np.zeros(n, np.int8)
    adj = np.zeros((n, MAX_VERTICES, MAX_VERTICES), np.uint8)
    ops = np.full((n, MAX_VERTICES), PAD_OP, np.int8)
    for i, h in enumerate(hashes):
        if cells[h].spec is not None:
            k, m, codes = cells[h].spec
            nv[i], adj[i, :k, :k], ops[i, :k] = k, m, codes
    epochs = sorted({e for c in cells.values() for e in c.metrics})
    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            w = StoreWriter(f, compression_level=9)
            w.write_cells(np.array(hashes, dtype="S32"), params, nv, adj, ops)
            for e in epochs:
                per = [cells[h].metrics.get(e, {}) for h in hashes]
                counts = np.array([max((len(v) for v in p.values()), default=0) for p in per], np.int8)
                r = int(counts.max())
                fields = {}
                for name in sorted({k for p in per for k in p}):
                    values = np.full((n, r), np.nan)
                    for i, p in enumerate(per):
                        if name in p:
                            values[i, :len(p[name])] = p[name]
                    fields[name] = values
                w.write_epoch(e, counts, fields)
            w.finish(
                is_sample=True,
                reproducible=True,
                source=", ".join(VIS + (SPECS, PKL)),
                spec_sources="1030 cells: the source files; 29001 cells: data/nb101-catalogue.npz",
                description=(
                    "rankbench's bundled NAS-Bench-101 sample: 30,031 real cells. 30,001 (the vis "
                    "20k+10k files) hold ONE unknown repeat of final validation accuracy at 4/12/36/108 "
                    "epochs and of final training time at 108; 30 (NASLib) hold 3 repeats of "
                    "halfway/final train/validation/test accuracy and training time at 108. Every cell "
                    "holds its spec: 1,030 from the source files, 29,001 from rankbench's NB101 "
                    "catalogue (data/nb101-catalogue.npz, NB101's numbering, hash-checked). Built by "
                    "data/scripts/build_nb101_sample.py. Not enough for S4 ground truth: import "
                    "nasbench_only108.tfrecord for that."),
                license="Apache-2.0 (NAS-Bench-101 data, google-research/nasbench)",
                made_by="data/scripts/build_nb101_sample.py",
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb101",
                    help="folder holding the four NB101 subset files")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "nb101-sample.h5")
    args = ap.parse_args()
    cells = collect(args.source)
    fill_from_catalogue(cells)
    write(cells, args.out)
    print(f"wrote {len(cells)} cells to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
