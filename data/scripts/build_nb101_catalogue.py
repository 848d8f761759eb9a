"""Build data/nb101-catalogue.npz: hash -> spec of every one of NAS-Bench-101's 423,624 cells.

No benchmark data is read: the cells come from rankbench's own enumeration of NB101's cells
(``rankbench.spaces.nb101.canonical_cells``: every valid adjacency of up to 7 vertices and 9
edges, each cell in the numbering NB101's generator met first and stored) and each hash from
nasbench-pytorch's ``graph_util.hash_module`` on the NumPy matrix, NB101's own hash function.
The script checks that it finds exactly 423,624 distinct hashes and that their first 16 hex
digits are distinct (what the file stores). Format: ``rankbench/nb101/catalogue.py``.
About 1.5-2.5 minutes on one core (the hashing); a rebuild is byte-identical.

    python data/scripts/build_nb101_catalogue.py [--out data/nb101-catalogue.npz]
"""
from __future__ import annotations

import argparse
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from nasbench_pytorch.model import graph_util
from tqdm import tqdm

from rankbench.nb101.catalogue import open_catalogue, write_catalogue
from rankbench.nb101.spec import MAX_VERTICES
from rankbench.spaces.nb101 import NUM_CELLS, _matrix_of, canonical_cells

REPO = Path(__file__).resolve().parents[2]


def enumerate_cells() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, num_vertices, adjacency (N, 7, 7), op codes (N, 7)) of every NB101 cell."""
    hashes: list[str] = []
    nv, adj, ops = [], [], []
    bar = tqdm(total=NUM_CELLS, unit="cell", desc="hash cells", mininterval=1.0)
    for n, bits, labels in canonical_cells(MAX_VERTICES):
        m = _matrix_of(n, bits).astype(np.int64)
        padded = np.zeros((MAX_VERTICES, MAX_VERTICES), np.uint8)
        padded[:n, :n] = m
        for row in labels.tolist():
            codes = [-1] + row + [-2]
            hashes.append(graph_util.hash_module(m, codes))
            nv.append(n)
            adj.append(padded)
            ops.append(codes + [-3] * (MAX_VERTICES - n))
        bar.update(len(labels))
    bar.close()
    return hashes, np.array(nv, np.int8), np.stack(adj), np.array(ops, np.int8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "data" / "nb101-catalogue.npz")
    args = ap.parse_args()
    t0 = time.perf_counter()
    hashes, nv, adj, ops = enumerate_cells()
    distinct = len(set(hashes))
    if len(hashes) != NUM_CELLS or distinct != NUM_CELLS:
        raise SystemExit(f"enumerated {len(hashes):,} cells with {distinct:,} distinct hashes; NB101 has "
                         f"{NUM_CELLS:,}: nothing written")
    n = write_catalogue(
        args.out, hashes, nv, adj, ops,
        description=("NAS-Bench-101's 423,624 cells (Ying et al., ICML 2019): hash -> spec in the numbering "
                     "NB101's generator stored. Enumerated by rankbench, hashed with nasbench-pytorch's "
                     "graph_util.hash_module; no benchmark data."),
        made_by="data/scripts/build_nb101_catalogue.py",
        nasbench_pytorch=version("nasbench_pytorch"),
    )
    cat = open_catalogue(args.out)
    some = np.random.default_rng(0).choice(n, 200, replace=False)
    bad = [hashes[i] for i in some.tolist() if cat.spec(hashes[i]).hash != hashes[i]]
    if bad:
        raise SystemExit(f"read-back check failed for {len(bad)} of 200 cells, e.g. {bad[0]}")
    print(f"wrote {n:,} cells to {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, "
          f"{time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
