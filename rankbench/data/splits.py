"""The CIFAR-10 splits a run uses: one place for training, scoring and truth.

:func:`load_splits` reads ``DataConfig`` (source, subset sizes, split seed) and, when
``resolution`` is below 32, average-pools every image to ``resolution`` x ``resolution``
(the quick preset trains at 16x16). Pooling happens once, on the uint8 images, so every
stage sees exactly the same pixels.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from rankbench.data.cifar10 import CIFAR10Splits, ImageSet, load_cifar10

__all__ = ["load_splits", "downsample", "VALID_RESOLUTIONS"]

#: sides that divide CIFAR-10's 32 pixels evenly (pooling windows of 1, 2, 4, ... pixels)
VALID_RESOLUTIONS = (32, 16, 8, 4, 2, 1)


def downsample(images: torch.Tensor, resolution: int, *, chunk: int = 4096) -> torch.Tensor:
    """uint8 [N, 3, 32, 32] -> uint8 [N, 3, R, R]: the mean of each (32/R)x(32/R) block,
    rounded to the nearest integer (ties to even). Works in chunks to bound memory."""
    side = int(images.shape[-1])
    if resolution not in VALID_RESOLUTIONS or side % resolution:
        raise ValueError(f"data.resolution must divide {side} (one of "
                         f"{', '.join(map(str, VALID_RESOLUTIONS))}), got {resolution}")
    if resolution == side:
        return images
    k = side // resolution
    out = torch.empty((images.shape[0], images.shape[1], resolution, resolution), dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        block = images[i:i + chunk].to(torch.float32)
        out[i:i + chunk] = F.avg_pool2d(block, k).round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_splits(data_cfg, *, progress: bool = True) -> CIFAR10Splits:
    """train / valid / test for a :class:`rankbench.config.DataConfig`.

    ``load_cifar10(source, train/valid/test_size, split_seed)``, then, if ``resolution`` is
    not 32, every split average-pooled to ``resolution`` (a ValueError for a side that does
    not divide 32). The provenance (``describe()``) is that of the 32x32 source; the
    resolution is ``data_cfg.resolution``.
    """
    res = int(data_cfg.resolution)
    if res not in VALID_RESOLUTIONS:
        raise ValueError(f"data.resolution must divide 32 (one of "
                         f"{', '.join(map(str, VALID_RESOLUTIONS))}), got {res}")
    splits = load_cifar10(data_cfg.source, train_size=data_cfg.train_size,
                          valid_size=data_cfg.valid_size, test_size=data_cfg.test_size,
                          split_seed=data_cfg.split_seed, order=getattr(data_cfg, "order", "mixed"),
                          progress=progress)
    if res == 32:
        return splits
    train, valid, test = (ImageSet(downsample(s.images, res), s.labels)
                          for s in (splits.train, splits.valid, splits.test))
    return dataclasses.replace(splits, train=train, valid=valid, test=test)
