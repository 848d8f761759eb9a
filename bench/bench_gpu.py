"""Training throughput of the paper preset's supernet step: real data through BatchLoader vs
synthetic tensors already on the device, on the same model, and the wall time of an epoch.

On CUDA it runs the ``paper`` preset as ``rankbench train`` would: bf16 autocast
(``train.amp``), channels-last (``train.channels_last``; on a CPU too), the uint8 training set
preloaded on the GPU and augmented there, optionally ``--compile``. On a CPU it runs a tiny
size (width 8, one cell per stack, 16x16 images, batch 32) unless ``--size paper``. Same
subnets (a seeded sampler) in both; real and synthetic timed in alternating rounds so drift
hits both alike.

    python bench/bench_gpu.py [--size auto|tiny|paper] [--steps 50] [--rounds 3] [--variant lsbn]
                              [--compile] [--no-amp] [--no-channels-last] [--threads N]

Prints images/s with real and with synthetic data, the data pipeline alone, and one epoch's
wall time extrapolated from the measured step (at the preset's training-set size, 40,000
images for NB101's split when the full data set is not here). Ends with ``ratio`` lines:
``real_vs_synthetic`` (1.0: the data pipeline costs nothing) and ``data_vs_step`` (how many
times faster the loader alone is than the training step).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import random
import statistics
import time

import torch

from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import load_splits
from rankbench.supernet import supernet_from_config
from rankbench.train import make_optimizer, make_train_loader, train_step

TINY = {"model.width": 8, "model.cells_per_stack": 1, "data.resolution": 16, "data.batch_size": 32,
        "data.source": "bundled"}
NB101_TRAIN = 40_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cycle(loader):
    """Batches of the loader, epoch after epoch."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader.batches()
        epoch += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("auto", "tiny", "paper"), default="auto",
                    help="auto: paper on CUDA, tiny on a CPU")
    ap.add_argument("--variant", default=None, help="supernet variant (default: the preset's)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round (default 50 CUDA, 10 CPU)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 20 CUDA, 3 CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile the supernet (CUDA)")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    size = args.size if args.size != "auto" else ("paper" if cuda else "tiny")
    steps = args.steps or (50 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (20 if cuda else 3)

    cfg = load_preset("paper")
    if size == "tiny":
        cfg = apply_overrides(cfg, TINY)
    if args.variant:
        cfg = apply_overrides(cfg, {"model.variant": args.variant})
    cfg = apply_overrides(cfg, {"train.device": str(device), "train.amp": not args.no_amp,
                                "train.channels_last": not args.no_channels_last, "train.compile": args.compile})
    note = ""
    try:
        splits = load_splits(cfg.data, progress=False)
    except (FileNotFoundError, ValueError) as e:  # full CIFAR-10 not here: same images per step from the sample
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="bundled"))
        splits = load_splits(cfg.data, progress=False)
        note = f" (data.source {load_preset('paper').data.source!r} unavailable: {str(e).splitlines()[0][:80]}...)"
    tc, dc = cfg.train, cfg.data
    n_train = len(splits.train.labels)
    epoch_images = n_train if dc.source != "bundled" or size == "tiny" else NB101_TRAIN

    torch.manual_seed(tc.seed)
    net = supernet_from_config(cfg.model).to(device)
    channels_last = tc.channels_last  # as fit: on CPU too
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(net, tc)
    model = torch.compile(net) if cuda and tc.compile else net
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and tc.amp else None
    params = [p for p in net.parameters() if p.requires_grad]
    net.train()
    b, res = dc.batch_size, dc.resolution
    print(f"device {device}{' ' + torch.cuda.get_device_name(device) if cuda else ''}, threads "
          f"{torch.get_num_threads()}; size {size}: {cfg.model.variant} m={cfg.model.m} width {cfg.model.width}, "
          f"{cfg.model.stacks}x{cfg.model.cells_per_stack} cells, {net.param_count() / 1e6:.2f}M params, "
          f"batch {b}, {res}x{res}; amp {'bf16' if autocast else 'off'}, channels-last {channels_last}, "
          f"compile {bool(cuda and tc.compile)}; data {dc.source}, {n_train} training images{note}")

    loader = make_train_loader(splits.train, cfg, device)
    real = _cycle(loader)
    g = torch.Generator(device="cpu").manual_seed(0)
    xs = torch.randn(b, 3, res, res, generator=g).to(device)
    if channels_last:
        xs = xs.contiguous(memory_format=torch.channels_last)
    ys = torch.randint(0, 10, (b,), generator=g).to(device)
    per_cell = tc.sampling == "per_cell"

    def archs(seed: int, n: int) -> list:
        """The subnets of one round: real and synthetic data train the same ones."""
        rng = random.Random(seed)
        return [net.space.sample_arch(rng, net.num_cells, per_cell) for _ in range(n)]

    def step(x, y, a) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, _ = train_step(model, opt, x, y, a, grad_clip=tc.grad_clip, autocast=autocast, params=params)
        return loss

    def timed(fn, arch_list: list) -> float:
        _sync(device)
        t = time.perf_counter()
        losses = [fn(a) for a in arch_list]
        torch.stack(losses).sum().item()  # one host sync, as fit's loss check
        _sync(device)
        return (time.perf_counter() - t) / len(arch_list)

    def real_step(a):
        x, y = next(real)
        return step(x, y, a)

    def synth_step(a):
        return step(xs, ys, a)

    def data_only(a):
        x, _ = next(real)
        return x.view(-1)[0].float()

    if warmup:
        timed(real_step, archs(tc.seed, warmup))
        timed(synth_step, archs(tc.seed, warmup))
    t_real, t_synth, t_data = [], [], []
    for r in range(args.rounds):
        round_archs = archs(tc.seed + 1 + r, steps)
        t_real.append(timed(real_step, round_archs))
        t_synth.append(timed(synth_step, round_archs))
        t_data.append(timed(data_only, round_archs))
    s_real, s_synth, s_data = (statistics.median(t) for t in (t_real, t_synth, t_data))
    steps_epoch = math.ceil(epoch_images / b)
    print(f"real data (BatchLoader): {1e3 * s_real:8.2f} ms/step  {b / s_real:9.1f} images/s")
    print(f"synthetic tensors:       {1e3 * s_synth:8.2f} ms/step  {b / s_synth:9.1f} images/s")
    print(f"data pipeline alone:     {1e3 * s_data:8.2f} ms/batch {b / s_data:9.1f} images/s")
    epoch_s = steps_epoch * s_real
    print(f"one epoch ({epoch_images} images, {steps_epoch} steps) ~ {epoch_s:.1f} s; {tc.epochs} epochs "
          f"~ {epoch_s * tc.epochs / 3600:.2f} h (extrapolated from {args.rounds}x{steps} steps)")
    if cuda:
        with contextlib.suppress(Exception):
            print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(f"ratio real_vs_synthetic {s_synth / s_real:.4f}")
    print(f"ratio data_vs_step {s_real / s_data:.4f}")


if __name__ == "__main__":
    main()
