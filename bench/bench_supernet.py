"""Supernet training step vs. the stand-alone NB101 network of the same subnet.

For every variant: rankbench's training step (``rankbench.train.train_step`` with
``make_optimizer``: forward, backward, gradient clipping, SGD with momentum and weight decay;
for the supernet over the subnet's ``used_parameters``, as ``fit`` does) on a sampled subnet,
timed side by side (interleaved) with the same step of nasbench-pytorch's Network for that
subnet's spec at the same width, depth and batch, both in ``train.channels_last``'s memory
format. Target: supernet <= 1.15x the stand-alone network. ``--all-params`` steps the
supernet over all its parameters instead (the cost of iterating unused tensors: spos).

    python bench/bench_supernet.py [--width 32] [--batch 64] [--steps 10] [--subnets 6] [--reps 3]
                                   [--cells-per-stack 1] [--all-params] [--threads N]

Per variant: mean over the subnets of the fastest interleaved segment (ms/step) for each
model (the medians' ratio beside it).

Ends with one line per variant: ``ratio step_<variant>_vs_standalone VALUE``.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn

from rankbench.config import TrainConfig
from rankbench.nb101.network import build_network
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet, list_variants
from rankbench.train import make_optimizer, train_step

TCFG = TrainConfig()


class _Standalone(nn.Module):
    """A plain network under fit's ``model(x, arch)`` convention (arch ignored)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, arch):
        return self.net(x)


class _Trainer:
    """One model with its optimizer and parameter list, stepped as ``fit`` steps it."""

    def __init__(self, model: nn.Module, dev, used_only: bool):
        self.model = model.to(dev)
        if TCFG.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.opt = make_optimizer(self.model, TCFG)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.used_of = getattr(self.model, "used_parameters", None) if used_only else None

    def step(self, x, y, arch=None) -> None:
        used = [p for _, p in self.used_of(arch) if p.requires_grad] if self.used_of is not None else None
        train_step(self.model, self.opt, x, y, arch, grad_clip=TCFG.grad_clip, params=self.params, used=used)


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
    ap.add_argument("--reps", type=int, default=3, help="interleaved timed segments per subnet and model")
    ap.add_argument("--all-params", action="store_true", help="step the supernet over all its parameters")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    space = create_space("s4", m=4)
    rng = random.Random(0)
    subnets = [space.sample(rng) for _ in range(args.subnets)]
    x = torch.randn(args.batch, 3, args.resolution, args.resolution, device=dev)
    if TCFG.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    size = dict(width=args.width, stacks=args.stacks, cells_per_stack=args.cells_per_stack)
    over = "all its" if args.all_params else "the subnet's"
    print(f"device {dev}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.resolution}x{args.resolution}, {size}, channels-last {TCFG.channels_last}, supernet stepped over "
          f"{over} parameters, subnets {[s.code for s in subnets]}")
    standalone = {}
    for s in subnets:
        if s.hash not in standalone:
            net = build_network(s.spec, stem_channels=args.width, num_stacks=args.stacks,
                                cells_per_stack=args.cells_per_stack)
            standalone[s.hash] = _Trainer(_Standalone(net), dev, used_only=False)
    ratios = {}
    for variant in args.variants:
        torch.manual_seed(0)
        sn = create_supernet(space, variant, **size)
        sup = _Trainer(sn, dev, used_only=not args.all_params)
        best_s, best_a, med_s, med_a = [], [], [], []
        for s in subnets:
            alone = standalone[s.hash]
            for _ in range(2):  # warm-up both
                sup.step(x, y, s)
                alone.step(x, y)
            t_super, t_alone = [], []
            for _ in range(args.reps):  # interleave so drift hits both alike
                t_super.append(_time(lambda: sup.step(x, y, s), args.steps))
                t_alone.append(_time(lambda: alone.step(x, y), args.steps))
            best_s.append(min(t_super))
            best_a.append(min(t_alone))
            med_s.append(statistics.median(t_super))
            med_a.append(statistics.median(t_alone))
        # other processes only add time: the fastest of the interleaved segments is the
        # estimate least disturbed by a shared machine; the median is shown beside it
        ms_s, ms_a = 1e3 * sum(best_s) / len(subnets), 1e3 * sum(best_a) / len(subnets)
        ratios[variant] = ms_s / ms_a
        print(f"{variant:6s} supernet {ms_s:7.2f} ms/step   stand-alone {ms_a:7.2f} ms/step   "
              f"x{ratios[variant]:.3f} (medians: x{sum(med_s) / sum(med_a):.3f})   ({sn.param_count() / 1e6:.2f}M "
              f"params in {sum(1 for _ in sn.parameters())} tensors in the supernet)")
    for variant, r in ratios.items():
        print(f"ratio step_{variant}_vs_standalone {r:.4f}")


if __name__ == "__main__":
    main()
