"""Supernet training step vs. the stand-alone NB101 network of the same subnet.

For every variant: forward + backward + SGD step of the supernet on a sampled subnet, timed
side by side (interleaved) with nasbench-pytorch's Network for that subnet's spec at the same
width, depth and batch. Target: supernet <= 1.15x the stand-alone network.

    python bench/bench_supernet.py [--width 32] [--batch 64] [--steps 10] [--subnets 6]

Ends with one line per variant: ``ratio step_<variant>_vs_standalone VALUE``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn

from rankbench.nb101.network import build_network
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet, list_variants


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)


def _step(model, opt, x, y, arch=None) -> None:
    opt.zero_grad(set_to_none=True)
    out = model(x) if arch is None else model(x, arch)
    nn.functional.cross_entropy(out, y).backward()
    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], 5.0)
    opt.step()


def _time(fn, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--stacks", type=int, default=3)
    ap.add_argument("--cells-per-stack", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--subnets", type=int, default=6)
    ap.add_argument("--variants", nargs="*", default=list_variants())
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    space = create_space("s4", m=4)
    rng = random.Random(0)
    subnets = [space.sample(rng) for _ in range(args.subnets)]
    x = torch.randn(args.batch, 3, args.resolution, args.resolution, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    size = dict(width=args.width, stacks=args.stacks, cells_per_stack=args.cells_per_stack)
    print(f"device {dev}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.resolution}x{args.resolution}, {size}, subnets {[s.code for s in subnets]}")
    standalone = {}
    for s in subnets:
        if s.hash not in standalone:
            net = build_network(s.spec, stem_channels=args.width, num_stacks=args.stacks,
                                cells_per_stack=args.cells_per_stack).to(dev)
            standalone[s.hash] = (net, _sgd(net))
    ratios = {}
    for variant in args.variants:
        torch.manual_seed(0)
        sn = create_supernet(space, variant, **size).to(dev)
        sopt = _sgd(sn)
        t_super, t_alone = [], []
        for s in subnets:
            net, opt = standalone[s.hash]
            for _ in range(2):  # warm-up both
                _step(sn, sopt, x, y, s)
                _step(net, opt, x, y)
            for _ in range(3):  # interleave so drift hits both alike
                t_super.append(_time(lambda: _step(sn, sopt, x, y, s), args.steps))
                t_alone.append(_time(lambda: _step(net, opt, x, y), args.steps))
        ms_s, ms_a = statistics.median(t_super) * 1e3, statistics.median(t_alone) * 1e3
        ratios[variant] = ms_s / ms_a
        print(f"{variant:6s} supernet {ms_s:7.2f} ms/step   stand-alone {ms_a:7.2f} ms/step   "
              f"x{ratios[variant]:.3f}   ({sn.param_count() / 1e6:.2f}M params in the supernet)")
    for variant, r in ratios.items():
        print(f"ratio step_{variant}_vs_standalone {r:.4f}")


if __name__ == "__main__":
    main()
