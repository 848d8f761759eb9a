"""An in-memory CIFAR-10 batch loader with whole-batch augmentation in torch.

CIFAR-10 fits in memory as uint8 (60k images = 184 MB), so there are no worker processes:
batches are gathered by index and augmented as one tensor (random crop with zero padding,
horizontal flip, cutout), on the CPU or on the training device. Everything random comes from
generators seeded by (seed, epoch, batch), so a resumed run sees exactly the same batches and
the CPU and GPU paths give the same pixels.
"""
from __future__ import annotations

import hashlib
import math
from typing import Iterator

import numpy as np
import torch

from rankbench.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, ImageSet

__all__ = ["BatchLoader", "augment_batch", "normalize"]

_CONST_CACHE: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def _norm_consts(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    key = (device, dtype)
    if key not in _CONST_CACHE:
        mean = torch.tensor(CIFAR10_MEAN, dtype=torch.float64)
        std = torch.tensor(CIFAR10_STD, dtype=torch.float64)
        # uint8 -> (x / 255 - mean) / std as one multiply-add: x * scale - shift
        scale = (1.0 / (255.0 * std)).to(dtype).view(3, 1, 1).to(device)
        shift = (mean / std).to(dtype).view(3, 1, 1).to(device)
        _CONST_CACHE[key] = (scale, shift)
    return _CONST_CACHE[key]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 images [..., 3, H, W] (or floats in [0, 1]) -> float32 standardised with the
    CIFAR-10 channel mean/std. Returns a new tensor on the same device."""
    if x.dtype == torch.uint8:
        scale, shift = _norm_consts(x.device, torch.float32)
        return x.to(torch.float32).mul_(scale).sub_(shift)
    if not x.is_floating_point():
        raise TypeError(f"normalize expects uint8 or float images, got {x.dtype}")
    scale, shift = _norm_consts(x.device, x.dtype)
    return (x * (scale * 255.0)).sub_(shift)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    crop_padding: int = 4,
    flip: bool = True,
    cutout: int = 16,
) -> torch.Tensor:
    """Augment a uint8 batch [B, 3, H, W] and return it normalised (float32, same device).

    Random crop of the image zero-padded by ``crop_padding``, horizontal flip with p = 1/2,
    then normalisation, then cutout (DeVries & Taylor 2017): a ``cutout`` x ``cutout`` square
    whose centre is uniform over the image, clipped at the borders, set to 0 (the mean pixel,
    as in their code and in DARTS/MixPath, which cut out after normalising). The random
    parameters are drawn from ``generator`` on the CPU in a fixed order (5 per image), so a
    batch gets the same augmentation on any device.
    """
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise TypeError(f"augment_batch expects a uint8 [B, C, H, W] batch, got {x.dtype} {list(x.shape)}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError("crop_padding and cutout must be >= 0")
    b, c, h, w = x.shape
    p = int(crop_padding)
    g = generator
    # draw everything, always, so the stream does not depend on which options are on
    oy = torch.randint(0, 2 * p + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * p + 1, (b,), generator=g)
    fl = torch.rand(b, generator=g) < 0.5
    cy = torch.randint(0, h, (b,), generator=g)
    cx = torch.randint(0, w, (b,), generator=g)
    params = torch.stack([oy, ox, fl.long(), cy, cx]).to(x.device, non_blocking=True)
    oy, ox, fl, cy, cx = params.unbind(0)

    dev = x.device
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    if p > 0 or flip:
        # source row/column of every output pixel in the padded image (crop, then mirror)
        rows = oy[:, None] + ar_h[None, :]  # [B, H]
        cols = ox[:, None] + ar_w[None, :]  # [B, W]
        if flip:
            cols = torch.where(fl[:, None].bool(), ox[:, None] + (w - 1 - ar_w)[None, :], cols)
        xp = torch.nn.functional.pad(x, (p, p, p, p)) if p > 0 else x
        hp, wp = h + 2 * p, w + 2 * p
        # one gather over the flattened padded planes: index = row * wp + col
        flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
        x = torch.gather(xp.reshape(b, c, hp * wp), 2, flat).reshape(b, c, h, w)
    out = normalize(x)
    if cutout > 0:
        half = cutout // 2
        y1, y2 = (cy - half).clamp(0, h), (cy + half).clamp(0, h)
        x1, x2 = (cx - half).clamp(0, w), (cx + half).clamp(0, w)
        in_y = (ar_h[None, :] >= y1[:, None]) & (ar_h[None, :] < y2[:, None])  # [B, H]
        in_x = (ar_w[None, :] >= x1[:, None]) & (ar_w[None, :] < x2[:, None])  # [B, W]
        keep = ~(in_y[:, :, None] & in_x[:, None, :])  # [B, H, W]
        out.mul_(keep[:, None].to(out.dtype))
    return out


def _seed(*key: int) -> int:
    """A 63-bit seed from integers, stable across platforms and library versions."""
    d = hashlib.blake2b(repr(tuple(int(k) for k in key)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "little") & ((1 << 63) - 1)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether tensors on ``a`` are already on ``b``: ``cuda`` (no index) means the current
    CUDA device, so ``cuda:0`` and ``cuda`` are the same there."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    cur = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else cur) == (b.index if b.index is not None else cur)


class BatchLoader:
    """Yields ``(images, labels)``: float32 [B, 3, 32, 32] normalised, int64 [B], on ``device``.

    Call :meth:`set_epoch` before each epoch (as with ``DistributedSampler``): the order
    (``shuffle``) and the augmentation (``augment``) are functions of (seed, epoch, batch)
    only, so the same epoch always gives the same batches, and :meth:`batches` can start
    mid-epoch. On a CUDA ``device`` each uint8 batch is copied (pinned if ``pin_memory``,
    non-blocking) and augmented there; ``preload`` keeps the whole uint8 set on the device.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        crop_padding: int = 4,
        flip: bool = True,
        cutout: int = 16,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        pin_memory: bool = False,
        preload: bool = False,
    ):
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        if labels.dim() != 1 or len(labels) != len(images):
            raise ValueError(f"labels must be [{len(images)}], got {list(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(images) == 0:
            raise ValueError("cannot batch an empty image set")
        self.device = torch.device(device)
        self.pin_memory = bool(pin_memory) and self.device.type == "cuda"
        self.preload = bool(preload) and self.device.type != "cpu"
        images, labels = images.contiguous(), labels.to(torch.int64).contiguous()
        if self.preload:
            images, labels = images.to(self.device), labels.to(self.device)
        self.images, self.labels = images, labels
        self.batch_size = int(batch_size)
        self.shuffle, self.augment = bool(shuffle), bool(augment)
        self.crop_padding, self.flip, self.cutout = int(crop_padding), bool(flip), int(cutout)
        self.seed, self.drop_last = int(seed), bool(drop_last)
        self.epoch = 0

    @classmethod
    def from_set(cls, data: ImageSet, batch_size: int, **kw) -> "BatchLoader":
        """A loader over an :class:`ImageSet` (same keyword arguments as the constructor)."""
        return cls(data.images, data.labels, batch_size, **kw)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        """Images yielded per epoch."""
        return len(self) * self.batch_size if self.drop_last else len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Reseed order and augmentation from (seed, epoch)."""
        self.epoch = int(epoch)

    def order(self) -> torch.Tensor:
        """This epoch's sample order (CPU int64)."""
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, 0))
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches from batch ``start`` on (to resume mid-epoch)."""
        order = self.order()
        if self.preload:
            order = order.to(self.device)
        bs = self.batch_size
        for i in range(int(start), len(self)):
            idx = order[i * bs:(i + 1) * bs]
            x, y = self.images[idx], self.labels[idx]
            if not same_device(x.device, self.device):
                if self.pin_memory:
                    x, y = x.pin_memory(), y.pin_memory()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
            if self.augment:
                g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, 1, i))
                x = augment_batch(x, g, crop_padding=self.crop_padding, flip=self.flip,
                                  cutout=self.cutout)
            else:
                x = normalize(x)
            yield x, y

    def __repr__(self) -> str:
        return (f"BatchLoader(n={len(self.labels)}, batch_size={self.batch_size}, "
                f"batches={len(self)}, shuffle={self.shuffle}, augment={self.augment}, "
                f"device={self.device}, epoch={self.epoch})")
