"""Data pipeline throughput: BatchLoader (whole-batch augmentation in torch) vs a naive
per-image Python loop (what per-image transforms in a worker-less DataLoader amount to),
side by side on the same real images, plus CIFAR-10 sample decode time (first vs cached).

    python bench/bench_data.py [--batch-size 96] [--epochs 3] [--threads N] [--device cuda]

Ends with ``ratio loader_vs_naive VALUE`` lines (images/s of the loader over the naive loop).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from rankbench.data import CIFAR10_MEAN, CIFAR10_STD, BatchLoader, load_cifar10


def naive_epoch(images: torch.Tensor, labels: torch.Tensor, batch_size: int, rng: np.random.Generator,
                pad: int = 4, cutout: int = 16) -> int:
    """Shuffle, then crop/flip/normalise/cutout one image at a time, then stack batches."""
    x_all = images.numpy()
    mean = np.asarray(CIFAR10_MEAN, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(CIFAR10_STD, dtype=np.float32).reshape(3, 1, 1)
    order = rng.permutation(len(x_all))
    seen = 0
    for start in range(0, len(order), batch_size):
        batch = []
        for i in order[start:start + batch_size]:
            a = np.pad(x_all[i], ((0, 0), (pad, pad), (pad, pad)))
            oy, ox = rng.integers(0, 2 * pad + 1, 2)
            a = a[:, oy:oy + 32, ox:ox + 32]
            if rng.random() < 0.5:
                a = a[:, :, ::-1]
            a = (a.astype(np.float32) / 255.0 - mean) / std
            cy, cx = rng.integers(0, 32, 2)
            a[:, max(cy - cutout // 2, 0):min(cy + cutout // 2, 32),
              max(cx - cutout // 2, 0):min(cx + cutout // 2, 32)] = 0.0
            batch.append(a)
        xb = torch.from_numpy(np.stack(batch))
        yb = labels[torch.from_numpy(order[start:start + batch_size])]
        assert len(yb) == len(xb)
        seen += len(xb)
    return seen


def loader_epochs(ld: BatchLoader, epochs: int) -> tuple[int, float]:
    seen = 0
    t = time.perf_counter()
    for e in range(epochs):
        ld.set_epoch(e)
        for xb, yb in ld:
            seen += len(yb)
        if ld.device.type == "cuda":
            torch.cuda.synchronize(ld.device)
    return seen, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--device", default="auto", help="also time the loader on this device (auto: cuda if present)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, cpu threads {torch.get_num_threads()}, os cpus {os.cpu_count()}")

    with tempfile.TemporaryDirectory() as home:  # fresh cache: the first load decodes the JPEGs
        os.environ["RANKBENCH_HOME"] = home
        t = time.perf_counter()
        splits = load_cifar10("bundled", progress=False)
        first = time.perf_counter() - t
        t = time.perf_counter()
        load_cifar10("bundled", progress=False)
        cached = time.perf_counter() - t
    print(f"seconds decode_bundled_first {first:.3f}")
    print(f"seconds decode_bundled_cached {cached:.3f}")

    x, y = splits.train.images, splits.train.labels
    print(f"images: bundled train split, {len(x)} real CIFAR-10 images, batch {args.batch_size}, "
          f"augmentation crop(pad 4) + flip + cutout 16")

    ld = BatchLoader(x, y, args.batch_size, shuffle=True, augment=True, seed=0)
    loader_epochs(ld, 1)  # warm-up
    n, dt = loader_epochs(ld, args.epochs)
    loader_cpu = n / dt
    print(f"images_per_s loader_cpu {loader_cpu:.0f}")

    rng = np.random.default_rng(0)
    naive_epoch(x, y, args.batch_size, rng)  # warm-up
    t = time.perf_counter()
    n = sum(naive_epoch(x, y, args.batch_size, rng) for _ in range(args.epochs))
    naive = n / (time.perf_counter() - t)
    print(f"images_per_s naive_cpu {naive:.0f}")

    ratios = {"loader_vs_naive": loader_cpu / naive}
    device = ("cuda" if torch.cuda.is_available() else "") if args.device == "auto" else args.device
    if device and device != "cpu":
        for name, kw in (("pinned", {"pin_memory": True}), ("preload", {"preload": True})):
            ldd = BatchLoader(x, y, args.batch_size, shuffle=True, augment=True, seed=0, device=device, **kw)
            loader_epochs(ldd, 1)
            n, dt = loader_epochs(ldd, args.epochs)
            print(f"images_per_s loader_{device}_{name} {n / dt:.0f}")
            ratios[f"loader_{device}_{name}_vs_naive"] = n / dt / naive
    for k, v in ratios.items():
        print(f"ratio {k} {v:.2f}")


if __name__ == "__main__":
    main()
