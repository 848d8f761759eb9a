"""Data-parallel supernet step: DDP's own all-reduce of every gradient vs rankbench's hook that
all-reduces only the gradients of the step's subnet (``distributed.UsedGradientReducer``).

Two ranks (gloo on the CPU; ``--backend nccl`` with one GPU per rank) train two copies of the
same supernet from the same initial weights on the same batches and subnets, alternating step
by step (so that a shared machine's drift hits both alike): one wrapped with
``wrap_ddp(used_only=False)`` (plain DDP with ``find_unused_parameters``), one with
``wrap_ddp()`` (the hook). It prints the gradient elements all-reduced per step and the time
per step of each, checks that both copies end with identical weights, and ends with
``ratio NAME VALUE`` lines.

    python bench/bench_ddp.py [--variant lsbn] [--width 32] [--stacks 3] [--cells-per-stack 1]
                              [--batch 32] [--resolution 16] [--steps 30] [--backend gloo]
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cuda = args.backend == "nccl"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend, rank=rank, world_size=world)

    from rankbench import distributed
    from rankbench.config import TrainConfig
    from rankbench.spaces import create_space
    from rankbench.supernet import create_supernet
    from rankbench.train import make_optimizer, train_step

    space = create_space("s4", m=4)
    nets, opts, ddps = [], [], []
    for used_only in (False, True):
        torch.manual_seed(0)
        net = create_supernet(space, args.variant, width=args.width, stacks=args.stacks,
                              cells_per_stack=args.cells_per_stack).to(device)
        nets.append(net)
        opts.append(make_optimizer(net, TrainConfig()))
        ddps.append(distributed.wrap_ddp(net, used_only=used_only))
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(args.batch // world, 3, args.resolution, args.resolution, generator=g).to(device)
    y = torch.randint(0, 10, (args.batch // world,), generator=g).to(device)
    rng = random.Random(0)  # the same subnets on every rank
    times: list[list[float]] = [[], []]
    for step in range(args.steps + 2):
        arch = space.sample(rng)
        for k in (0, 1):
            used = [p for _, p in nets[k].used_parameters(arch)]
            dist.barrier()
            t = time.perf_counter()
            train_step(ddps[k], opts[k], x, y, arch, grad_clip=5.0, used=used)
            if cuda:
                torch.cuda.synchronize()
            if step >= 2:  # warm-up
                times[k].append(time.perf_counter() - t)
    same = all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    reducer = distributed.grad_reducer(ddps[1])
    n_params = sum(p.numel() for p in nets[0].parameters())
    if rank == 0:
        full = n_params
        sent = reducer.sent / (args.steps + 2)
        t_full, t_used = (1e3 * statistics.median(t) for t in times)
        print(f"{args.variant} supernet width {args.width}, {args.stacks}x{args.cells_per_stack} cells, "
              f"{n_params / 1e6:.2f}M params; {world} ranks ({args.backend}), global batch {args.batch}, "
              f"{args.resolution}x{args.resolution}, {args.steps} steps")
        print(f"all-reduced per step: DDP {full / 1e6:.3f}M gradient elements, used-only hook "
              f"{sent / 1e6:.3f}M ({100 * sent / full:.0f}%)")
        print(f"median step: DDP {t_full:.1f} ms   used-only hook {t_used:.1f} ms   x{t_full / t_used:.2f}; "
              f"identical weights after {args.steps + 2} steps: {same}")
        print(f"ratio allreduce_elements_full_vs_used {full / sent:.4f}")
        print(f"ratio ddp_step_full_vs_used_only {t_full / t_used:.4f}")
    dist.destroy_process_group()
    if not same:
        raise SystemExit("the two copies differ: the hook changed the update")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="lsbn")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--stacks", type=int, default=3)
    ap.add_argument("--cells-per-stack", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="global batch (split over the ranks)")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(args.world, port, args), nprocs=args.world)


if __name__ == "__main__":
    main()
