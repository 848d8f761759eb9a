"""Data-parallel training and scoring over ``torchrun`` ranks: DDP with gloo (CPU) or NCCL (GPU).

Launch any training or ranking command under torchrun::

    torchrun --nproc_per_node 4 -m rankbench train --preset paper ...
    torchrun --nproc_per_node 4 -m rankbench run --calibrate ...

The commands call :func:`init_from_env`, which joins the process group when torchrun's
``WORLD_SIZE`` is above 1 (and does nothing otherwise); one GPU per rank (``LOCAL_RANK``).

What a distributed run means (:func:`rankbench.train.fit` does this when a process group is up):

- **global batch = ``data.batch_size``**. Global batch ``i`` of an epoch is exactly the batch a
  single process would draw (same order, same augmentation); rank ``r`` of ``W`` trains on
  its contiguous slice ``[b*r//W, b*(r+1)//W)``, and the losses are weighted so that the
  averaged gradient is the gradient of the mean loss over the whole global batch. So
  steps per epoch, learning rate and schedule are the config's, whatever ``W`` is, and a
  checkpoint can be resumed with another number of ranks. What differs: BatchNorm batch
  statistics are per rank (over ``b / W`` images, no SyncBN), and the running statistics
  saved are rank 0's. A last global batch with fewer images than ranks is skipped.
- **the same subnet on every rank**: the architecture sampler is seeded identically on all
  ranks, so every step trains one subnet on ``b`` images. DDP runs with
  ``find_unused_parameters=True``; parameters the subnet does not use are unused on every
  rank, DDP leaves their ``grad`` at None and SGD skips them (no momentum, no weight decay),
  as in a single process (tests/test_distributed.py checks it).
- rank 0 writes the run directory (config, log, checkpoints, weights); the others wait at a
  barrier. Loss and accuracy in the log are over the global batch. Ctrl-C / SIGTERM is
  agreed between ranks at the next loss check, so every rank stops at the same step and
  rank 0 writes one consistent checkpoint.
- **scoring** (:func:`gather_sharded`): the distinct candidates are dealt round robin; each
  rank scores its share (a candidate's score does not depend on which others were scored:
  BN state is restored in memory after each), rank 0 gathers them in the single-process
  order and writes the cache, so the scores are those of a single process.

Communication: DDP on its own all-reduces every gradient bucket each step, those of unused
parameters too (as zeros), so a step would move the whole supernet's gradient (paper preset:
lsbn 52.9M parameters, 212 MB in fp32, while a subnet uses 14M on average; spos 489M,
1.96 GB). :func:`wrap_ddp` installs a communication hook (:class:`UsedGradientReducer`) that
sends only the gradients of the step's subnet; DDP still keeps bucket copies of the whole
gradient in memory. With the paper's global batch of 96, N GPUs train on
96 / N images each, so the speed-up flattens quickly; to use more GPUs at full load, raise
``data.batch_size`` (and ``train.lr``) explicitly: both are in the training fingerprint.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "env_world_size", "is_distributed", "rank", "local_rank", "world_size", "is_main", "backend", "init_from_env",
    "cleanup", "barrier", "broadcast_object", "all_gather_objects", "all_reduce_sum", "main_first",
    "shard_bounds", "ShardedBatchLoader", "wrap_ddp", "grad_reducer", "UsedGradientReducer", "gather_sharded",
    "describe",
]


# -- who am I --------------------------------------------------------------------------------
def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_distributed() -> bool:
    """A process group with more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This rank's index on its machine (its GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0, or a single process: the one that writes files and prints."""
    return rank() == 0


def backend() -> str:
    """``"gloo"`` or ``"nccl"``; ``""`` for a single process."""
    return str(dist.get_backend()) if is_distributed() else ""


def describe() -> str:
    """``"2 ranks (gloo)"``, or ``""`` for a single process."""
    return f"{world_size()} ranks ({backend()})" if is_distributed() else ""


# -- set up / tear down ----------------------------------------------------------------------
def init_from_env(device: str | torch.device = "auto") -> bool:
    """Join the process group torchrun describes, when ``WORLD_SIZE`` > 1; returns whether
    this process is now one rank of several. Idempotent.

    ``device`` is the training device (``train.device``): on CUDA each rank takes GPU
    ``LOCAL_RANK`` and the backend is NCCL, else gloo. The group is destroyed at exit."""
    if env_world_size() <= 1:
        return False
    if dist.is_initialized():
        return is_distributed()
    dev = torch.device(device) if str(device) != "auto" else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        lr = int(os.environ.get("LOCAL_RANK", "0"))
        if lr >= n:
            raise ValueError(f"LOCAL_RANK {lr} but only {n} GPU(s) here: use --nproc_per_node <= {n}, "
                             f"or --device cpu (gloo)")
        torch.cuda.set_device(lr)
        dist.init_process_group("nccl", device_id=torch.device("cuda", lr))
    else:
        dist.init_process_group("gloo")
    atexit.register(cleanup)
    return True


def cleanup() -> None:
    """Leave the process group (registered at exit by :func:`init_from_env`)."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


# -- collectives (no-ops in a single process) ------------------------------------------------
def barrier() -> None:
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``src``'s ``obj`` on every rank (picklable objects)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place (on the backend's device: CPU for gloo, CUDA for NCCL)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. decodes and caches a data set), then the others."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


# -- training --------------------------------------------------------------------------------
def shard_bounds(n: int, rank_: int | None = None, world: int | None = None) -> tuple[int, int]:
    """This rank's contiguous slice ``[lo, hi)`` of ``n`` items (sizes differ by at most one)."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return n * r // w, n * (r + 1) // w


class ShardedBatchLoader:
    """This rank's slice of every global batch of a :class:`rankbench.data.BatchLoader`.

    Each rank draws the global batch exactly as a single process would (order and
    augmentation are functions of seed, epoch and batch index) and keeps its slice, so the
    ranks together see the single-process batch. ``len`` counts global batches (a last one
    smaller than the number of ranks is skipped). ``batches`` yields
    ``(images, labels, loss_scale)``: ``loss_scale = W * b_rank / b`` weights this rank's
    mean loss so that DDP's gradient average equals the global-batch mean.
    """

    def __init__(self, loader, rank_: int | None = None, world: int | None = None):
        self.loader = loader
        self.rank = rank() if rank_ is None else int(rank_)
        self.world = world_size() if world is None else int(world)
        if loader.batch_size < self.world:
            raise ValueError(f"data.batch_size ({loader.batch_size}) is the global batch: it must be at least the "
                             f"number of ranks ({self.world})")

    def __len__(self) -> int:
        n, bs = len(self.loader.labels), self.loader.batch_size
        full = len(self.loader)
        last = n - (full - 1) * bs if not self.loader.drop_last else bs
        return full - 1 if last < self.world else full

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.loader.epoch

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        stop = len(self)
        for i, (x, y) in enumerate(self.loader.batches(start), start=int(start)):
            if i >= stop:
                break
            b = int(y.shape[0])
            lo, hi = shard_bounds(b, self.rank, self.world)
            yield x[lo:hi], y[lo:hi], self.world * (hi - lo) / b

    def __iter__(self):
        return self.batches()


def wrap_ddp(model: nn.Module, *, used_only: bool = True) -> nn.Module:
    """``model`` in DistributedDataParallel for supernet training: ``find_unused_parameters``
    (a subnet uses a fraction of the weights), no buffer broadcast (BN running statistics
    stay per rank; rank 0's are saved). Inputs are expected on the model's device already.

    With ``used_only`` a :class:`UsedGradientReducer` replaces DDP's all-reduce: tell it the
    step's parameters (``train_step(..., used=...)`` does) and only their gradients travel."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model
    with warnings.catch_warnings():  # torch 2.13 deprecates broadcast_buffers; its successor
        # still syncs buffers at init, and torch < 2.13 lacks it: keep the flag, skip the notice
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        ddp = DistributedDataParallel(model, device_ids=None, find_unused_parameters=True, broadcast_buffers=False)
    if used_only:
        reducer = UsedGradientReducer()
        ddp.register_comm_hook(reducer, UsedGradientReducer.reduce)
        ddp.__dict__["rankbench_reducer"] = reducer  # what nn.Module.__setattr__ does; read by grad_reducer
    return ddp


def grad_reducer(model: nn.Module) -> "UsedGradientReducer | None":
    """The :class:`UsedGradientReducer` of a model wrapped by :func:`wrap_ddp` (also under
    ``torch.compile``), else None."""
    while model is not None:
        reducer = model.__dict__.get("rankbench_reducer")
        if reducer is not None:
            return reducer
        model = model.__dict__.get("_modules", {}).get("_orig_mod")
    return None


class UsedGradientReducer:
    """A DDP communication hook that averages only the gradients of the parameters in use.

    DDP all-reduces every gradient bucket each step; for parameters the subnet did not use it
    sends zeros (a supernet step uses about a quarter of an lsbn supernet's weights, and a
    tiny part of an spos one). Every rank trains the same subnet, so every rank knows the same
    used set: a bucket with no used parameter is not sent at all, a bucket with some is sent
    as one packed tensor of just their gradients, a bucket with only used ones as is. The
    unused slots keep their zeros, which is what averaging zeros gives; DDP still leaves
    unused parameters' ``grad`` at None. Call :meth:`set_used` before each backward; with no
    used set (``None``) it all-reduces everything, like DDP's default hook.

    ``sent`` and ``total`` count the gradient elements sent and those DDP would have sent.
    """

    def __init__(self) -> None:
        self.used: set[int] | None = None
        self.sent = 0
        self.total = 0

    def set_used(self, params: "Sequence[nn.Parameter] | None") -> None:
        self.used = None if params is None else {id(p) for p in params}

    def reduce(self, bucket):  # DDP calls hook(state, bucket): registered as (self, reduce)
        # no annotations: DDP compares them with the real classes
        buf = bucket.buffer()
        world = dist.get_world_size()
        self.total += buf.numel()
        grads = bucket.gradients()
        used = self.used
        sel = grads if used is None else [g for p, g in zip(bucket.parameters(), grads) if id(p) in used]
        if not sel:  # nothing in use: the zeros stay (the average of zeros)
            fut: torch.futures.Future = torch.futures.Future()
            fut.set_result(buf)
            return fut
        if len(sel) == len(grads):  # all in use: the buffer as is (DDP's default hook)
            self.sent += buf.numel()
            buf.div_(world)
            return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])
        packed = torch.cat([g.reshape(-1) for g in sel]).div_(world)
        self.sent += packed.numel()

        def unpack(f: torch.futures.Future) -> torch.Tensor:
            out, pos = f.value()[0], 0
            for g in sel:
                n = g.numel()
                g.copy_(out[pos:pos + n].view_as(g))
                pos += n
            return buf

        return dist.all_reduce(packed, async_op=True).get_future().then(unpack)


# -- scoring ---------------------------------------------------------------------------------
def gather_sharded(items: Sequence[Any], work: Callable[[list[Any]], dict[Any, Any]],
                   key: Callable[[Any], Any] = lambda x: x) -> dict[Any, Any]:
    """Deal ``items`` round robin over the ranks, run ``work(my_items) -> {key: result}`` on
    each, and return every rank's results merged, ordered as ``items`` (on every rank).
    In a single process: ``work(items)``."""
    items = list(items)
    if not is_distributed():
        return work(items)
    mine = items[rank()::world_size()]
    parts = all_gather_objects(work(mine))
    merged: dict[Any, Any] = {}
    for p in parts:
        merged.update(p)
    missing = [key(it) for it in items if key(it) not in merged]
    if missing:
        raise RuntimeError(f"distributed scoring lost {len(missing)} item(s), e.g. {missing[:3]}")
    return {key(it): merged[key(it)] for it in items}
