"""``rankbench spaces``: list search spaces and show every candidate of one."""
from __future__ import annotations

import argparse
import json

from rankbench.cli import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spaces", help="search spaces: list them, show every candidate of one")
    ssub = p.add_subparsers(dest="spaces_command", metavar="SUBCOMMAND", required=True)
    ls = ssub.add_parser("list", help="registered search spaces")
    ls.set_defaults(func=_list)
    show = ssub.add_parser("show", help="every candidate of a space with its NB101 spec, hash, parameters")
    show.add_argument("space", help="space name (see `rankbench spaces list`)")
    show.add_argument("--m", type=int, default=None, help="S4: maximum number of active paths (default 4)")
    show.add_argument("--width", type=int, default=128,
                      help="stem channels for the parameter count (default 128, NB101's)")
    show.add_argument("--json", action="store_true", help="print a JSON list of objects")
    show.set_defaults(func=_show)


def _list(args) -> int:
    from rankbench.spaces import SPACES
    from rankbench.supernet import list_variants

    for name, doc in SPACES.describe().items():
        print(f"{name:8s} {doc} (variants: {', '.join(list_variants(space=name))})")
    return 0


def arch_table(space_name: str, settings: dict | None = None, width: int = 128) -> list[dict]:
    """One dict per candidate of the space: name, the space's descriptive columns, the NB101
    adjacency/ops/hash, its hash class and ``params``: the NB101 network's trainable parameters
    at ``width`` (3 stacks x 3 cells; equal to the weights the arch uses in a ``bn`` supernet,
    which the tests check against nasbench-pytorch)."""
    from rankbench.references import NetworkSize, network_cost
    from rankbench.spaces import create_space

    try:
        space = create_space(space_name, **(settings or {}))
    except (KeyError, ValueError, TypeError) as e:
        raise CLIError(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    size = NetworkSize(stem_channels=width)
    classes: dict[str, int] = {}
    rows = []
    for a in space.candidates():
        spec = a.spec
        classes.setdefault(a.hash, len(classes))
        rows.append({"name": a.name, **space.describe(a), "adjacency": spec.adjacency_string,
                     "ops": list(spec.ops), "hash": a.hash, "hash_class": classes[a.hash],
                     "params": network_cost(spec.matrix, list(spec.ops), size)[0]})
    return rows


def _show(args) -> int:
    settings = {"m": args.m} if args.m is not None else {}
    rows = arch_table(args.space, settings, args.width)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    n_classes = len({r["hash"] for r in rows})
    what = " ".join([args.space] + [f"{k}={v}" for k, v in settings.items()])
    print(f"{what}: {len(rows)} candidates, {n_classes} NB101 hash classes (params at width {args.width})")
    print(f"{'name':14s} {'class':>5s} {'params':>10s}  {'hash':32s}  ops")
    for r in rows:
        ops = ",".join(o.replace("-bn-relu", "") for o in r["ops"][1:-1])
        print(f"{r['name']:14s} {r['hash_class']:5d} {r['params']:10d}  {r['hash']}  {ops}")
    return 0
