"""``rankbench data``: import the official NB101 tfrecord, describe a store, look a cell up, fill
in specs from the NB101 catalogue."""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from rankbench.cli import EXIT_INVALID, EXIT_NOT_FOUND, CLIError

__all__ = ["add_parser"]

_HASH = re.compile(r"^[0-9a-f]{32}$")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="NAS-Bench-101 data: import, info, query, fill-specs",
                              description="Import NAS-Bench-101 and look cells up in the store.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), EXIT_INVALID)[1])

    imp = sub.add_parser("import", help="convert nasbench_only108/nasbench_full .tfrecord into the store",
                         description="Read an official NB101 tfrecord (no TensorFlow needed) and write "
                                     "the HDF5 store rankbench.nb101.open() reads.")
    imp.add_argument("file", type=Path, help="nasbench_only108.tfrecord or nasbench_full.tfrecord")
    imp.add_argument("--out", default=None,
                     help="store file (.h5) or folder to write nb101.h5 into (default: $RANKBENCH_HOME/nb101.h5, "
                          "~/.cache/rankbench/nb101.h5); checked before the import starts")
    imp.add_argument("--force", action="store_true", help="replace the store already at --out")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    info = sub.add_parser("info", help="what a store holds", description="Describe the NB101 store.")
    _store_arg(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    q = sub.add_parser("query", help="look one cell up by hash or spec",
                       description="Print a cell's hash, spec, parameter count and stored metrics "
                                   "(every repeat and the mean). The spec of any NB101 hash is printed "
                                   "even when the store lacks the cell (from the NB101 catalogue); "
                                   "exit 3 when the store lacks the cell or its metrics.")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--hash", help="NB101 hash (32 hex digits)")
    g.add_argument("--adjacency", help="row-major 0/1 adjacency string, e.g. 49 digits for 7 vertices")
    q.add_argument("--ops", help="comma-joined ops, e.g. input,conv3x3-bn-relu,...,output (with --adjacency); "
                                 "short names conv3x3, conv1x1, maxpool3x3 are accepted")
    _store_arg(q)
    q.add_argument("--epochs", type=int, default=108, help="epoch budget (default 108)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_query)

    fs = sub.add_parser("fill-specs", help="give a store's cells without a spec theirs, from the NB101 catalogue",
                        description="Write the store with every cell that lacks its adjacency and ops "
                                    "given NB101's spec from rankbench's NB101 catalogue (all 423,624 "
                                    "cells, NB101's numbering; each hash re-checked). Metrics are copied "
                                    "unchanged.")
    _store_arg(fs)
    fs.add_argument("--out", type=Path, default=None,
                    help="write the result here (default: replace the store itself, atomically)")
    fs.add_argument("--force", action="store_true", help="replace an existing --out")
    fs.add_argument("--quiet", action="store_true", help="no progress bar")
    fs.set_defaults(func=cmd_fill_specs)

    c = sub.add_parser("cifar10", help="where CIFAR-10 is; --download fetches the official archive",
                       description="Show the CIFAR-10 location that presets with source = \"cifar10\" "
                                   "read, or download the official python archive there (md5-checked).")
    c.add_argument("--download", action="store_true", help="download cifar-10-python.tar.gz (163 MB)")
    c.add_argument("--dest", type=Path, default=None, help="folder (default: $RANKBENCH_HOME/cifar10)")
    c.set_defaults(func=cmd_cifar10)


def cmd_cifar10(args) -> int:
    from rankbench.data.cifar10 import ARCHIVE_NAME, default_dir, download_cifar10

    dest = args.dest or default_dir()
    if args.download:
        try:
            path = download_cifar10(dest)
        except OSError as e:  # ConnectionError, URLError, disk errors
            raise CLIError(f"could not download CIFAR-10 into {dest}: {e}. Download "
                           f"{ARCHIVE_NAME} by hand and put it in {dest}", 1) from None
        print(f"CIFAR-10 archive: {path} (md5 verified)")
        return 0
    path = Path(dest) / ARCHIVE_NAME
    state = "present" if path.exists() else "missing: run `rankbench data cifar10 --download`"
    print(f"CIFAR-10 archive: {path} ({state})")
    return 0 if path.exists() else EXIT_NOT_FOUND


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, default=None,
                   help="store file (default: $RANKBENCH_DATA, then ~/.cache/rankbench/nb101.h5, "
                        "then the bundled sample)")


def _open(path: Path | None):
    from rankbench.nb101.store import open as open_store

    try:
        return open_store(path)
    except (FileNotFoundError, ValueError) as e:  # a bad argument, not a cell the store lacks (3)
        raise CLIError(str(e), EXIT_INVALID) from None


def cmd_import(args: argparse.Namespace) -> int:
    from rankbench.nb101.importer import NotNB101Error, import_tfrecord, resolve_destination
    from rankbench.nb101.store import default_path
    from rankbench.nb101.tfrecord import CorruptRecordError, NotTFRecordError

    if not args.file.is_file():
        raise CLIError(f"no such file: {args.file}", EXIT_INVALID)
    try:  # before the import, which takes minutes on the real file
        out = resolve_destination(args.out, force=args.force)
    except ValueError as e:
        raise CLIError(str(e), EXIT_INVALID) from None
    try:
        s = import_tfrecord(args.file, out, progress=not args.quiet, force=args.force)
    except (NotTFRecordError, NotNB101Error) as e:
        raise CLIError(f"{e}. Nothing was written; give the official nasbench_only108.tfrecord (or "
                       f"nasbench_full.tfrecord) from https://github.com/google-research/nasbench",
                       EXIT_INVALID) from None
    except CorruptRecordError as e:
        raise CLIError(f"{e}. Nothing was written; download the file again.", EXIT_INVALID) from None
    print(f"wrote {s.path}: {s.cells:,} cells, {s.records:,} records, epochs {list(s.epochs)}, "
          f"up to {s.max_repeats} repeats per cell ({s.seconds:.1f} s, {s.records_per_second:,.0f} records/s)")
    if s.repeats_warning:
        print(f"\nWARNING: {s.repeats_warning}\n", file=sys.stderr)
    if s.warning:
        print(f"warning: {s.warning}", file=sys.stderr)
    if s.path.resolve() != default_path().resolve():
        print(f"rankbench.nb101.open() finds it with RANKBENCH_DATA={s.path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args.store) as st:
        info = st.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    kind = "bundled sample" if info["is_sample"] else "imported store"
    via = "" if info["resolved_from"] == "the bundled sample" else f", found via {info['resolved_from']}"
    print(f"store: {info['path']} ({kind}{via})")
    print(f"format: {info['format']} v{info['format_version']}")
    print(f"cells: {info['num_cells']:,} ({info['cells_with_spec']:,} with spec, "
          f"{info['cells_with_params']:,} with parameter count)")
    for e in info["epochs"]:
        reps = ", ".join(f"{n:,} cells x {k}" for k, n in sorted(info["repeats_per_cell"][e].items()))
        print(f"epochs {e}: repeats {reps}; fields {', '.join(info['fields'][e])}")
    for k, v in info["provenance"].items():
        print(f"{k}: {v}")
    if info["warning"]:
        print(f"warning: {info['warning']}", file=sys.stderr)
    return 0


def _catalogue_spec(h: str):
    """NB101's spec of hash ``h`` from the catalogue, or None (no such NB101 cell, or no catalogue)."""
    from rankbench.nb101.catalogue import UnknownCellError, open_catalogue

    try:
        return open_catalogue().spec(h)
    except (UnknownCellError, FileNotFoundError):
        return None


def cmd_query(args: argparse.Namespace) -> int:
    from rankbench.nb101.spec import InvalidSpecError, ModelSpec
    from rankbench.nb101.store import NB101_NUM_CELLS, MissingDataError

    given = None
    if args.adjacency is not None:
        if not args.ops:
            raise CLIError("--adjacency needs --ops (comma-joined op names, input first, output last)",
                           EXIT_INVALID)
        try:
            given = ModelSpec.from_string(args.adjacency, args.ops)
        except InvalidSpecError as e:
            raise CLIError(f"invalid spec: {e}", EXIT_INVALID) from None
        h = given.hash
    else:
        if args.ops:
            raise CLIError("--ops goes with --adjacency, not --hash", EXIT_INVALID)
        h = args.hash.strip().lower()
        if not _HASH.match(h):
            raise CLIError(f"{args.hash!r} is not an NB101 hash (32 hex digits)", EXIT_INVALID)
    params, stored_spec, n_rep, metrics = None, None, 0, {}
    with _open(args.store) as st:
        in_store = h in st
        if in_store:
            try:
                params = st.params(h)
            except MissingDataError:
                params = None
            stored_spec = st.spec(h) if st.has_spec(h) else None
            if args.epochs not in st.epochs:
                raise CLIError(f"this store ({st.path}) has no {args.epochs}-epoch results; epochs present: "
                               f"{list(st.epochs)}", EXIT_NOT_FOUND)
            n_rep = st.num_repeats(h, args.epochs)
            for name in st.fields(args.epochs):
                try:
                    vals = st.query(h, epochs=args.epochs, metric=name, reduce="all")
                except MissingDataError:
                    continue
                metrics[name] = {"repeats": [float(v) for v in vals], "mean": float(vals.mean())}
        store_doc = {"path": str(st.path), "is_sample": st.is_sample, "num_cells": st.num_cells,
                     "resolved_from": st.resolved_from}
        desc = st.description
        not_in = (f"cell {h} is not in this store ({st.path}, {st.num_cells:,} cells"
                  + ("; for the full benchmark run: rankbench data import nasbench_only108.tfrecord"
                     if st.is_sample or st.num_cells < NB101_NUM_CELLS else "") + ")")
    shown, source = stored_spec, "store"
    if shown is None:
        shown, source = _catalogue_spec(h), "catalogue"
    if shown is None:
        shown, source = given, "given"
    if not in_store and shown is None:
        raise CLIError(f"{not_in}; no NAS-Bench-101 cell has this hash either (none of its "
                       f"{NB101_NUM_CELLS:,})", EXIT_NOT_FOUND)
    pruned = None
    if given is not None and given.removed_vertices:
        pruned = {"removed_vertices": list(given.removed_vertices), "adjacency": given.adjacency_string,
                  "ops": list(given.ops)}
    out = {
        "store": store_doc,
        "hash": h,
        "in_store": in_store,
        "trainable_parameters": params,
        "spec": None if shown is None else {"adjacency": shown.adjacency_string, "ops": list(shown.ops)},
        "spec_source": None if shown is None else source,
        "pruned": pruned,
        "epochs": args.epochs,
        "num_repeats": n_rep,
        "metrics": metrics,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_query(out, desc, given, shown, source)
    if not in_store:
        print(not_in, file=sys.stderr)
        return EXIT_NOT_FOUND
    if not metrics:
        print(f"no metrics stored at {args.epochs} epochs", file=sys.stderr)
        return EXIT_NOT_FOUND
    return 0


def _print_query(out: dict, desc: str, given, shown, source: str) -> None:
    print(f"store: {desc}")
    print(f"hash: {out['hash']}")
    params = out["trainable_parameters"]
    print(f"trainable_parameters: {'unknown' if params is None else f'{params:,}'}")
    if out["pruned"] is not None:
        gone = out["pruned"]["removed_vertices"]
        print(f"pruned: vertex{'es' if len(gone) > 1 else ''} {', '.join(map(str, gone))} of the given spec "
              f"{'are' if len(gone) > 1 else 'is'} on no input -> output path and removed, as NB101 does; "
              f"the cell is adjacency {given.adjacency_string} ops {','.join(given.ops)}")
    if shown is None:
        print("spec: not stored")
    else:
        whence = {"store": "", "catalogue": " (from the NB101 catalogue: NB101's numbering)", "given": ""}[source]
        print(f"spec: adjacency {shown.adjacency_string} ops {','.join(shown.ops)}{whence}")
        if given is not None and source != "given" and (given.adjacency_string, given.ops) != (
                shown.adjacency_string, shown.ops):
            print("      (the same cell as the spec given, numbered as NB101 stores it)")
    metrics = out["metrics"]
    if not metrics:
        return
    epochs, n_rep = out["epochs"], out["num_repeats"]
    width = max(len(k) for k in metrics)
    n_cols = max(len(m["repeats"]) for m in metrics.values())
    print(f"metrics at {epochs} epochs ({n_rep} repeat{'s' if n_rep != 1 else ''} stored):")
    head = "".join(f"{'repeat ' + str(i + 1):>14}" for i in range(n_cols))
    print(f"  {'':<{width}}{head}{'mean':>14}")
    for name, m in metrics.items():
        cells = "".join(f"{_fmt(v):>14}" for v in m["repeats"]) + " " * 14 * (n_cols - len(m["repeats"]))
        print(f"  {name:<{width}}{cells}{_fmt(m['mean']):>14}")


def cmd_fill_specs(args: argparse.Namespace) -> int:
    from rankbench.nb101.catalogue import fill_store_specs, open_catalogue

    with _open(args.store) as st:
        src, missing, is_sample = st.path, st.num_cells - st.info()["cells_with_spec"], st.is_sample
    out = args.out or src
    if missing == 0:
        print(f"every cell of {src} already has its spec; nothing written")
        return 0
    if is_sample and args.out is None:
        raise CLIError(f"{src} is the bundled sample, part of the installation; give --out for a filled copy",
                       EXIT_INVALID)
    if args.out is not None and Path(args.out).exists() and not args.force and \
            Path(args.out).resolve() != Path(src).resolve():
        raise CLIError(f"{args.out} exists; refusing to replace it: add --force to replace it, or give another "
                       f"--out", EXIT_INVALID)
    try:
        cat = open_catalogue()
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e), EXIT_INVALID) from None
    filled, unknown = fill_store_specs(src, out, catalogue=cat, progress=not args.quiet)
    print(f"wrote {out}: {filled:,} specs filled in from the NB101 catalogue ({cat.path})"
          + (f"; {unknown:,} cells are none of NB101's cells and keep no spec" if unknown else ""))
    return 0


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.6f}" if abs(v) < 10 else f"{v:.2f}"
