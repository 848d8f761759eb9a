"""One training step, and what it needs: device, optimizer, schedule, training batches."""
from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rankbench import distributed
from rankbench.config import RunConfig, TrainConfig

__all__ = ["resolve_device", "describe_device", "param_groups", "make_optimizer", "make_scheduler",
           "make_train_loader", "train_step"]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available here; use auto or cpu")
    return dev


def describe_device(device: torch.device) -> str:
    """A human-readable device name for versions.json, e.g. ``cuda:0 (NVIDIA H100)``."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two SGD groups: weights of conv / linear layers get ``weight_decay``; everything else
    (BatchNorm gamma / beta, biases, any other parameter) gets none."""
    decay_ids: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)) and mod.weight is not None:
            decay_ids.add(id(mod.weight))
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if id(p) in decay_ids else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, tcfg: TrainConfig) -> torch.optim.SGD:
    """SGD(lr, momentum, nesterov=False) over :func:`param_groups`."""
    return torch.optim.SGD(param_groups(model, tcfg.weight_decay), lr=tcfg.lr, momentum=tcfg.momentum,
                           nesterov=False)


def make_scheduler(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from ``lr`` to 0 over ``epochs``, stepped once per epoch."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=0.0)


def make_train_loader(images_set, cfg: RunConfig, device: torch.device):
    """The training BatchLoader: shuffled, augmented per ``cfg.data``, seeded by ``cfg.train.seed``;
    on CUDA the uint8 images live on the GPU and are augmented there."""
    from rankbench.data import BatchLoader

    d = cfg.data
    cuda = device.type == "cuda"
    return BatchLoader(images_set.images, images_set.labels, d.batch_size, shuffle=True, augment=True,
                       crop_padding=d.crop_padding, flip=d.flip, cutout=d.cutout, seed=cfg.train.seed,
                       drop_last=False, device=device, pin_memory=cuda, preload=cuda)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, arch: Any,
               *, grad_clip: float = 0.0, autocast: contextlib.AbstractContextManager | None = None,
               params: list[nn.Parameter] | None = None, loss_scale: float = 1.0,
               used: list[nn.Parameter] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``arch`` on a batch, backward, clip, SGD step. Returns (loss, number correct)
    as detached 0-d tensors (no host sync). Unused parameters keep ``grad = None``.

    ``loss_scale`` multiplies the loss before backward only (a data-parallel rank's weight).
    ``used``: the parameters ``arch`` uses (a supernet's ``used_parameters``). Then only they
    are zeroed, clipped and stepped (and, under :func:`~rankbench.distributed.wrap_ddp`,
    all-reduced), and their gradients are released after the step: the
    same update, but its cost no longer grows with the supernet's unused parameter tensors
    (spos with 9 cells has ~5,600; iterating them costs ~15 ms per step)."""
    if used is None:
        optimizer.zero_grad(set_to_none=True)
    else:
        for p in used:
            p.grad = None
    reducer = distributed.grad_reducer(model)
    if reducer is not None:  # under DDP: all-reduce only the gradients of ``used``
        reducer.set_used(used)
    with autocast if autocast is not None else contextlib.nullcontext():
        logits = model(x, arch)
    loss = F.cross_entropy(logits.float(), y)
    (loss * loss_scale if loss_scale != 1.0 else loss).backward()
    if grad_clip > 0:
        clip = used if used is not None else params if params is not None else model.parameters()
        torch.nn.utils.clip_grad_norm_(clip, grad_clip)
    if used is None:
        optimizer.step()
    else:
        _step_only(optimizer, used)
        for p in used:
            p.grad = None
    correct = (logits.detach().argmax(1) == y).sum()
    return loss.detach(), correct


_GROUP_OF: "weakref.WeakKeyDictionary[torch.optim.Optimizer, dict[int, int]]" = weakref.WeakKeyDictionary()


def _step_only(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    """``optimizer.step()`` over ``params`` only: each group's list is narrowed for the call
    and put back (the optimizer's state is per parameter, so nothing else changes)."""
    group_of = _GROUP_OF.get(optimizer)
    n = sum(len(g["params"]) for g in optimizer.param_groups)
    if group_of is None or len(group_of) != n:
        group_of = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
        _GROUP_OF[optimizer] = group_of
    narrowed: list[list[nn.Parameter]] = [[] for _ in optimizer.param_groups]
    for p in params:
        i = group_of.get(id(p))
        if i is not None:
            narrowed[i].append(p)
    full = [g["params"] for g in optimizer.param_groups]
    try:
        for g, ps in zip(optimizer.param_groups, narrowed):
            g["params"] = ps
        optimizer.step()
    finally:
        for g, ps in zip(optimizer.param_groups, full):
            g["params"] = ps
