"""Benchmark the NB101 store: import throughput and peak memory, open time, lookup throughput.

The import runs on a LARGE tfrecord made by replicating the 90 real records of
tests/assets/nb101_30.tfrecord; every replica gets a distinct FAKE hash key (md5 of the real
key and the replica number), so the file is only good for timing. The import runs in a child
process so that its peak RSS (resource.getrusage) is its own.

    python bench/bench_nb101.py [--records 400000] [--lookups 200000] [--keep DIR]

Prints its figures, then ``ratio NAME VALUE`` lines.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests" / "assets" / "nb101_30.tfrecord"

_CHILD = r"""
import json, resource, sys, time
t = time.perf_counter()
from rankbench.nb101.importer import import_tfrecord
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t_imp = time.perf_counter() - t
s = import_tfrecord(sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({"records": s.records, "cells": s.cells, "seconds": s.seconds, "import_s": t_imp,
                  "base_kb": base, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_tfrecord(path: Path, n_records: int) -> tuple[int, float]:
    """Write ``n_records`` replicas of the real fixture records, each replica with a fake hash."""
    from rankbench.nb101.tfrecord import read_records, write_records

    rows = [json.loads(d) for _, _, d in read_records(SOURCE)]
    tails = [json.dumps(r[1:])[1:] for r in rows]  # everything after the hash, pre-serialised

    def gen():
        n = 0
        rep = 0
        while True:
            for r, tail in zip(rows, tails):
                if n == n_records:
                    return
                fake = hashlib.md5(f"{r[0]}:{rep}".encode()).hexdigest()
                yield f'["{fake}", {tail}'.encode()
                n += 1
            rep += 1

    t = time.perf_counter()
    n = write_records(path, gen())
    return n, time.perf_counter() - t


def rate(n: int, seconds: float) -> str:
    v = n / seconds
    return f"{v / 1e6:.2f}M/s" if v >= 1e6 else f"{v / 1e3:.1f}k/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=400_000, help="records in the synthetic tfrecord")
    ap.add_argument("--lookups", type=int, default=200_000, help="hashes per batched lookup")
    ap.add_argument("--keep", type=Path, default=None, help="keep the tfrecord and store in this folder")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    work = Path(tmp.name) if tmp else args.keep
    work.mkdir(parents=True, exist_ok=True)
    src, store_path = work / "bench.tfrecord", work / "bench.h5"

    n, t_write = make_tfrecord(src, args.records)
    size = src.stat().st_size
    print(f"source: the 90 real records of {SOURCE.relative_to(REPO)} replicated to {n:,} records, each "
          f"replica with a distinct FAKE hash key (timing only, not benchmark data)")
    print(f"tfrecord: {n:,} records, {size / 1e6:.1f} MB, written in {t_write:.1f} s")

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(store_path)], env=env,
                         capture_output=True, text=True, check=True)
    imp = json.loads(res.stdout.strip().splitlines()[-1])
    rps = imp["records"] / imp["seconds"]
    peak_mb, base_mb = imp["peak_kb"] / 1024, imp["base_kb"] / 1024
    print(f"import: {imp['records']:,} records -> {imp['cells']:,} cells in {imp['seconds']:.1f} s: "
          f"{rps:,.0f} records/s, {size / imp['seconds'] / 1e6:.1f} MB/s; peak RSS {peak_mb:.0f} MB "
          f"(of which {base_mb:.0f} MB after importing the modules); store {store_path.stat().st_size / 1e6:.1f} MB")

    import rankbench.nb101 as nb

    t = time.perf_counter()
    store = nb.open(store_path)
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    store.rows(["0" * 32])
    t_index = time.perf_counter() - t
    print(f"open: {t_open * 1e3:.2f} ms; first lookup (reads the sorted hash index of "
          f"{len(store):,} cells): {t_index * 1e3:.1f} ms")

    rng = np.random.default_rng(0)
    present = store.hashes()
    k = args.lookups
    absent = [hashlib.md5(f"absent:{i}".encode()).hexdigest() for i in range(k // 2)]
    queries = [present[i] for i in rng.integers(0, len(present), k - k // 2)] + absent
    rng.shuffle(queries)

    def best(fn, reps=3):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return min(times), out

    t_rows, rows = best(lambda: store.rows(queries))
    qarr = np.array(queries, dtype="S32")
    t_arr, _ = best(lambda: store.rows(qarr))
    t_build, d = best(lambda: {h: i for i, h in enumerate(present)}, reps=1)
    t_dict, drows = best(lambda: [d.get(h, -1) for h in queries])
    assert (rows == np.array(drows)).all(), "searchsorted and dict disagree"
    t_many, _ = best(lambda: store.query_many(queries))
    sub = queries[:20_000]
    t_loop, _ = best(lambda: [store.query(h) if h in store else None for h in sub], reps=1)
    print(f"lookups ({k:,} hashes, half present): batched searchsorted {rate(k, t_rows)} from a "
          f"list of str, {rate(k, t_arr)} from a numpy S32 array; "
          f"Python dict loop {rate(k, t_dict)} (+ {t_build * 1e3:.0f} ms to build the dict of {len(present):,})")
    print(f"query_many (mean validation accuracy): {rate(k, t_many)}; "
          f"query() loop: {rate(len(sub), t_loop)}")

    print(f"ratio lookup_vs_dict {(k / t_rows) / (k / t_dict):.3f}")
    print(f"ratio lookup_array_vs_dict {t_dict / t_arr:.3f}")
    print(f"ratio lookup_vs_dict_incl_build {(t_dict + t_build) / t_rows:.3f}")
    print(f"ratio query_many_vs_query_loop {(k / t_many) / (len(sub) / t_loop):.1f}")
    print(f"ratio import_peak_rss_vs_file_size {imp['peak_kb'] * 1024 / size:.3f}")
    print(f"ratio import_records_per_s {rps:.0f}")
    store.close()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
