"""Write tests/assets/nb101_30.tfrecord (official nasbench_only108 format) and nb101_30.json.

Source: the 30 full NB101 records of naslib-nb101-30-full.pkl (NAS-Bench-101 release,
Apache-2.0, google-research/nasbench, as republished by NASLib). Every value is copied, none
is made up. The official records hold three EvaluationData per run (at init, halfway, final);
the pkl has no at-init entry, so each fixture record holds two: halfway (current_epoch 54.0)
and final (current_epoch 108.0). ``total_time`` is not in the pkl and is left unset.
Records are written repeat-major (all cells' first repeat, then the second, ...), so an
importer must group repeats by hash rather than rely on adjacency in the file.

    python tests/assets/make_nb101_fixture.py [--source ../shared/data/nb101]
"""
from __future__ import annotations

import argparse
import base64
import json
import pickle
from pathlib import Path

import numpy as np

from rankbench.nb101.metrics_proto import EvaluationData, ModelMetrics, encode_model_metrics
from rankbench.nb101.spec import ModelSpec
from rankbench.nb101.tfrecord import write_records

HERE = Path(__file__).resolve().parent
PKL = "naslib-nb101-30-full.pkl"
KINDS = ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time")


def load(source: Path) -> dict:
    with open(source / PKL, "rb") as f:
        raw = pickle.load(f)
    cells = {}
    for h in sorted(raw):
        fixed, computed = raw[h]
        adj = np.asarray(fixed["module_adjacency"]).astype(int)
        ops = list(fixed["module_operations"])
        spec = ModelSpec(adj, ops)
        assert spec.hash == h, f"{h}: recomputed hash {spec.hash} differs"
        assert (spec.matrix == adj).all(), f"{h}: stored adjacency is not pruned"
        cells[h] = {
            "adjacency": "".join(str(int(v)) for v in adj.ravel()),
            "ops": ops,
            "trainable_parameters": int(fixed["trainable_parameters"]),
            "epochs": {str(e): [{k: float(v) for k, v in rep.items()} for rep in reps]
                       for e, reps in computed.items()},
        }
    return cells


def records(cells: dict):
    n_rep = max(len(reps) for c in cells.values() for reps in c["epochs"].values())
    for r in range(n_rep):
        for h, c in cells.items():
            for e, reps in c["epochs"].items():
                if r >= len(reps):
                    continue
                rep = reps[r]
                evs = [EvaluationData(current_epoch=int(e) / 2, **{k: rep[f"halfway_{k}"] for k in KINDS}),
                       EvaluationData(current_epoch=float(e), **{k: rep[f"final_{k}"] for k in KINDS})]
                mm = ModelMetrics(evaluation_data=evs, trainable_parameters=c["trainable_parameters"])
                b64 = base64.b64encode(encode_model_metrics(mm)).decode("ascii")
                yield json.dumps([h, int(e), c["adjacency"], ",".join(c["ops"]), b64]).encode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb101",
                    help="folder holding naslib-nb101-30-full.pkl")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    cells = load(args.source)
    n = write_records(args.out / "nb101_30.tfrecord", records(cells))
    doc = {
        "source": f"{PKL} (NAS-Bench-101, Apache-2.0, google-research/nasbench, via NASLib)",
        "made_by": "tests/assets/make_nb101_fixture.py",
        "records": n,
        "cells": cells,
    }
    (args.out / "nb101_30.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {n} records for {len(cells)} cells to {args.out}")


if __name__ == "__main__":
    main()
