"""``rankbench spaces``: list search spaces and show every distinct subnet of one."""
from __future__ import annotations

import argparse
import json

from rankbench.cli import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spaces", help="search spaces: list them, show every subnet of one")
    ssub = p.add_subparsers(dest="spaces_command", metavar="SUBCOMMAND", required=True)
    ls = ssub.add_parser("list", help="registered search spaces")
    ls.set_defaults(func=_list)
    show = ssub.add_parser("show", help="every distinct subnet of a space with its NB101 spec, hash, parameters")
    show.add_argument("space", help="space name (see `rankbench spaces list`)")
    show.add_argument("--m", type=int, default=4, help="maximum number of active paths (default 4)")
    show.add_argument("--width", type=int, default=128,
                      help="stem channels for the parameter count (default 128, NB101's)")
    show.add_argument("--json", action="store_true", help="print a JSON list of objects")
    show.set_defaults(func=_show)


def _list(args) -> int:
    from rankbench.spaces import SPACES

    for name, doc in SPACES.describe().items():
        print(f"{name:8s} {doc}")
    return 0


def subnet_table(space_name: str, m: int, width: int = 128) -> list[dict]:
    """One dict per distinct subnet: code, active nodes, ops, NB101 adjacency/ops/hash, params.

    ``params`` is the NB101 network's trainable parameters at ``width`` (equal to the weights
    the subnet uses in a ``bn`` supernet; the tests check this against nasbench-pytorch).
    """
    from rankbench.spaces import create_space
    from rankbench.supernet import create_supernet

    try:
        space = create_space(space_name, m=m)
    except (KeyError, ValueError) as e:
        raise CLIError(str(e.args[0] if isinstance(e, KeyError) else e)) from None
    net = create_supernet(space, "bn", width=width)
    params: dict[str, int] = {}
    classes = space.hash_classes()
    class_index = {h: i for i, h in enumerate(classes)}
    rows = []
    for s in space.subnets():
        if s.hash not in params:
            params[s.hash] = net.param_count(s)
        rows.append({
            "subnet": s.code,
            "num_paths": s.num_paths,
            "active_nodes": [i + 1 for i in s.active],
            "node_ops": [op for op in s.ops],
            "adjacency": s.spec.adjacency_string,
            "ops": list(s.spec.ops),
            "hash": s.hash,
            "hash_class": class_index[s.hash],
            "params": params[s.hash],
        })
    return rows


def _show(args) -> int:
    rows = subnet_table(args.space, args.m, args.width)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    n_classes = len({r["hash"] for r in rows})
    print(f"{args.space} m={args.m}: {len(rows)} distinct subnets, {n_classes} NB101 hash classes "
          f"(params at width {args.width})")
    print(f"{'subnet':7s} {'paths':>5s} {'class':>5s} {'params':>10s}  {'hash':32s}  ops")
    for r in rows:
        ops = ",".join(o.replace("-bn-relu", "") for o in r["ops"][1:-1])
        print(f"{r['subnet']:7s} {r['num_paths']:5d} {r['hash_class']:5d} {r['params']:10d}  {r['hash']}  {ops}")
    return 0
