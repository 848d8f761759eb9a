"""Write tests/assets/nb101_1k_specs.json from nasbench-vis-1k-specs.json (real NB101 cells).

Each row: the cell's adjacency as a row-major 0/1 string and its op codes with the -3
padding of cells under 7 vertices removed, its NB101 key and trainable_parameters, copied
from the source (NAS-Bench-101 release, Apache-2.0, google-research/nasbench, as republished).

    python tests/assets/make_nb101_1k_specs.py [--source ../shared/data/nb101]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = "nasbench-vis-1k-specs.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb101",
                    help="folder holding nasbench-vis-1k-specs.json")
    ap.add_argument("--out", type=Path, default=HERE / "nb101_1k_specs.json")
    args = ap.parse_args()
    src = json.loads((args.source / SRC).read_text())
    rows = []
    for adj, ops, key, params in zip(src["adjacency"], src["operations"], src["key"],
                                     src["trainable_parameters"]):
        ops = [int(o) for o in ops]
        n = len(ops) - ops.count(-3)
        assert ops[n:] == [-3] * (len(ops) - n), f"{key}: padding is not at the end"
        m = np.asarray(adj, dtype=float)
        assert not m[n:].any() and not m[:, n:].any(), f"{key}: padded vertices have edges"
        rows.append({"key": key, "adjacency": "".join(str(int(v)) for v in m[:n, :n].ravel()),
                     "ops": ops[:n], "trainable_parameters": int(params)})
    lines = ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    header = json.dumps({"source": f"{SRC} (NAS-Bench-101, Apache-2.0, google-research/nasbench)",
                         "made_by": "tests/assets/make_nb101_1k_specs.py"})[:-1]
    args.out.write_text(f'{header}, "cells": [\n{lines}\n]}}\n')
    print(f"wrote {len(rows)} cells to {args.out}")


if __name__ == "__main__":
    main()
