"""Scoring speed: rankbench's ``score_candidates`` vs a naive per-candidate loop, and the
saving from scoring distinct subnets instead of the public protocol's 1000 repeated choices.

Part 1, every distinct subnet of S4 (255 for m = 4; ``--m``) with BN calibration (``clean``
protocol: reset, cumulative average over the calibration batches), on the same images:

- rankbench: ``score_candidates`` (eval images normalised once, calibration batches drawn
  once, candidates in groups sharing the stem and first-cell work per batch, BN statistics
  swapped and restored in memory, only the BNs the subnet uses);
- rankbench one by one (``group_size=1``): the same without the shared work, to show what
  the grouping adds to the in-memory restore;
- naive: per candidate, ``copy.deepcopy`` the supernet (``--naive reload``: load the state
  dict back instead), reset every BN, draw the calibration batches, forward them in train
  mode, evaluate batch by batch from uint8 images.

Both run in the same memory format (channels-last, as ``score_candidates`` does by default;
``--contiguous`` for both), so that the numbers can be identical.

The accuracies and losses must be identical (asserted). A third line times the naive loop in
PyTorch's default contiguous format, as a plain loop would run (numbers equal up to float
rounding; the largest differences are printed). Part 2: the public MixPath code
scores 1000 sampled choices, repeats included; rankbench scores each distinct subnet once.
It counts the distinct subnets among the draws and times every draw one by one, each
distinct subnet one by one (the saving of de-duplication alone), and ``score_candidates``
(de-duplication and grouping).

    python bench/bench_scoring.py [--variant lsbn] [--width 8] [--m 4] [--eval-size 200] [--draws 1000]
                                  [--naive copy|reload] [--contiguous] [--no-plain] [--chunks 4] [--threads 1]

The methods alternate over ``--chunks`` chunks of the candidates, so that a shared
machine's load drift hits them alike.

The supernet is untrained (scores are timed, not judged); images are the bundled CIFAR-10
sample at ``--resolution``. Ends with ``ratio NAME VALUE`` lines.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from rankbench.config import DataConfig, ScoreConfig
from rankbench.data import BatchLoader
from rankbench.data.splits import load_splits
from rankbench.scoring import BNState, calibrate_bn, calibration_batches, eval_tensors, evaluate, get_protocol
from rankbench.scoring import score_candidates
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet

_BN = torch.nn.modules.batchnorm._BatchNorm


def naive_score(net, subnet, splits, score_cfg: ScoreConfig, proto, data_cfg: DataConfig, *, mode: str,
                state: dict | None = None, channels_last: bool = True) -> tuple[float, float]:
    """One candidate the straightforward way: a private copy of the supernet, every BN reset and
    re-estimated from freshly drawn batches, evaluation from the uint8 split."""
    if mode == "copy":
        model = copy.deepcopy(net)
    else:  # reload: one working copy, its weights and buffers put back from a state dict
        model = net
        model.load_state_dict(state)
    part = splits[proto.calib_split]
    bs = min(score_cfg.calib_batch_size, len(part.labels))
    calib = BatchLoader(part.images, part.labels, bs, shuffle=True, augment=proto.calib_augment,
                        crop_padding=data_cfg.crop_padding, flip=data_cfg.flip, cutout=data_cfg.cutout,
                        seed=score_cfg.seed, drop_last=True)
    for m in model.modules():
        if isinstance(m, _BN):
            m.reset_running_stats()
            m.momentum = None
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    with torch.no_grad():
        for i, (x, _) in enumerate(calib):
            if i == score_cfg.calib_batches:
                break
            model(x.contiguous(memory_format=fmt), subnet)
    model.eval()
    ev = splits[score_cfg.eval_split]
    loader = BatchLoader(ev.images, ev.labels, score_cfg.eval_batch_size, shuffle=False, augment=False)
    correct = torch.zeros((), dtype=torch.int64)
    loss = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for x, y in loader:
            out = model(x.contiguous(memory_format=fmt), subnet).float()
            loss += F.cross_entropy(out, y, reduction="sum").double()
            correct += (out.argmax(1) == y).sum()
    n = len(ev.labels)
    return int(correct) / n, float(loss) / n


def per_candidate_loop(net, subnets, splits, score_cfg, proto, data_cfg, *, channels_last: bool = True
                       ) -> list[tuple[float, float]]:
    """rankbench's per-candidate step (calibrate, evaluate, restore in memory) on every entry of
    ``subnets``, repeats included: what scoring costs without de-duplication. ``net`` must
    already be in the memory format asked for."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    images, labels = eval_tensors(splits, score_cfg.eval_split, device="cpu")
    images = images.contiguous(memory_format=fmt)
    calib = calibration_batches(splits, proto.calib_split, num_batches=score_cfg.calib_batches,
                                batch_size=score_cfg.calib_batch_size, seed=score_cfg.seed,
                                augment=proto.calib_augment, data_cfg=data_cfg)
    calib = [b.contiguous(memory_format=fmt) for b in calib]
    state = BNState(net)
    out = []
    for s in subnets:
        touched = calibrate_bn(net, s, calib, reset=proto.calib_reset)
        out.append(evaluate(net, s, images, labels, score_cfg.eval_batch_size))
        state.restore(touched)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="lsbn")
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--stacks", type=int, default=3)
    ap.add_argument("--cells-per-stack", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--eval-size", type=int, default=200, help="validation images per candidate")
    ap.add_argument("--calib-batches", type=int, default=2)
    ap.add_argument("--calib-batch-size", type=int, default=64)
    ap.add_argument("--draws", type=int, default=1000, help="public protocol: sampled choices")
    ap.add_argument("--naive", choices=("copy", "reload"), default="copy")
    ap.add_argument("--contiguous", action="store_true", help="both in contiguous (not channels-last) format")
    ap.add_argument("--no-plain", action="store_true", help="skip the naive loop in the default contiguous format")
    ap.add_argument("--chunks", type=int, default=4, help="alternate the methods over this many chunks")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data_cfg = DataConfig(train_size=max(args.calib_batches * args.calib_batch_size, 500),
                          valid_size=args.eval_size, test_size=100, resolution=args.resolution)
    splits = load_splits(data_cfg, progress=False)
    score_cfg = ScoreConfig(calib_batches=args.calib_batches, calib_batch_size=args.calib_batch_size,
                            eval_batch_size=500)
    proto = get_protocol("clean")
    space = create_space("s4", m=args.m)
    torch.manual_seed(0)
    net = create_supernet(space, args.variant, width=args.width, stacks=args.stacks,
                          cells_per_stack=args.cells_per_stack).eval()
    subnets = space.subnets()
    print(f"{args.variant} supernet m={args.m}, width {args.width}, {args.stacks}x{args.cells_per_stack} cells, "
          f"{args.resolution}x{args.resolution}, {net.param_count() / 1e6:.3f}M params; {len(subnets)} distinct "
          f"subnets; calibration {args.calib_batches}x{args.calib_batch_size} train images, evaluation "
          f"{len(splits.valid)} valid images; {'contiguous' if args.contiguous else 'channels-last'}; "
          f"threads {torch.get_num_threads()}")

    # part 1: every distinct subnet, rankbench vs naive, in alternating chunks (a shared
    # machine's drift hits all alike)
    cl = not args.contiguous
    fmt = torch.channels_last if cl else torch.contiguous_format
    kw = dict(calibrate=True, protocol=proto, data_cfg=data_cfg, progress=False, channels_last=cl)
    score_candidates(net, subnets[:2], splits, score_cfg, **kw)  # warm-up
    master = copy.deepcopy(net).to(memory_format=fmt)
    state = {k: v.clone() for k, v in master.state_dict().items()}
    work = copy.deepcopy(master) if args.naive == "reload" else master
    plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format)  # what a plain loop runs in
    plain_state = {k: v.clone() for k, v in plain.state_dict().items()}
    plain_work = copy.deepcopy(plain) if args.naive == "reload" else plain
    t_fast = t_one = t_slow = t_plain = 0.0
    fast_rows, one_rows, slow, slow_plain = [], [], [], []
    for chunk in _chunks(subnets, args.chunks):
        t = time.perf_counter()
        fast_rows.append(score_candidates(net, chunk, splits, score_cfg, **kw))
        t_fast += time.perf_counter() - t
        t = time.perf_counter()
        one_rows.append(score_candidates(net, chunk, splits, score_cfg, group_size=1, **kw))
        t_one += time.perf_counter() - t
        t = time.perf_counter()
        slow += [naive_score(work, s, splits, score_cfg, proto, data_cfg, mode=args.naive, state=state,
                             channels_last=cl) for s in chunk]
        t_slow += time.perf_counter() - t
        if cl and not args.no_plain:
            t = time.perf_counter()
            slow_plain += [naive_score(plain_work, s, splits, score_cfg, proto, data_cfg, mode=args.naive,
                                       state=plain_state, channels_last=False) for s in chunk]
            t_plain += time.perf_counter() - t
    fast = pd.concat(fast_rows, ignore_index=True)
    one = pd.concat(one_rows, ignore_index=True)
    assert fast["accuracy"].tolist() == [a for a, _ in slow] == one["accuracy"].tolist(), "accuracies differ"
    assert fast["loss"].tolist() == [v for _, v in slow] == one["loss"].tolist(), "losses differ"
    n = len(subnets)
    print(f"score {n} subnets: rankbench {t_fast:.2f} s ({1e3 * t_fast / n:.1f} ms/subnet)   naive ({args.naive}, same "
          f"memory format) {t_slow:.2f} s ({1e3 * t_slow / n:.1f} ms/subnet)   x{t_slow / t_fast:.2f}; identical "
          f"accuracies and losses (mean accuracy {fast['accuracy'].mean():.4f})")
    print(f"  rankbench one by one (group_size=1, no shared work): {t_one:.2f} s ({1e3 * t_one / n:.1f} ms/subnet)   "
          f"naive x{t_slow / t_one:.2f}; grouping x{t_one / t_fast:.2f}; identical numbers")
    if slow_plain:
        d_acc = max(abs(a - b) for a, (b, _) in zip(fast["accuracy"], slow_plain))
        d_loss = max(abs(a - b) for a, (_, b) in zip(fast["loss"], slow_plain))
        print(f"  naive ({args.naive}) in the default contiguous format: {t_plain:.2f} s ({1e3 * t_plain / n:.1f} "
              f"ms/subnet)   x{t_plain / t_fast:.2f}; largest differences from rankbench: accuracy {d_acc:.2g}, "
              f"loss {d_loss:.2g} (float rounding of another memory layout)")

    # part 2: the public protocol's repeated choices vs distinct subnets, alternating chunks;
    # rankbench keeps its scores in a cache across chunks, as a resumed run does
    paper = get_protocol("paper")
    draws = paper.candidates(space, ScoreConfig(candidates=args.draws, seed=0))
    distinct = list(dict.fromkeys(draws))
    t_rep = t_dedup1 = t_dedup = 0.0
    rep, dedup1, dedup = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache1, cache = Path(tmp) / "one.csv", Path(tmp) / "grouped.csv"
        for chunk in _chunks(draws, args.chunks):
            t = time.perf_counter()
            rep += per_candidate_loop(master, chunk, splits, score_cfg, proto, data_cfg, channels_last=cl)
            t_rep += time.perf_counter() - t
            t = time.perf_counter()
            dedup1.append(score_candidates(net, chunk, splits, score_cfg, cache_path=cache1, group_size=1, **kw))
            t_dedup1 += time.perf_counter() - t
            t = time.perf_counter()
            dedup.append(score_candidates(net, chunk, splits, score_cfg, cache_path=cache, **kw))
            t_dedup += time.perf_counter() - t
    dedup_acc = pd.concat(dedup, ignore_index=True)["accuracy"].tolist()
    assert dedup_acc == [a for a, _ in rep] == pd.concat(dedup1, ignore_index=True)["accuracy"].tolist(), \
        "de-duplicated scores differ"
    print(f"public protocol: {args.draws} draws hold {len(distinct)} distinct subnets "
          f"({args.draws / len(distinct):.2f} draws per subnet); every draw one by one {t_rep:.2f} s, "
          f"each distinct subnet once, one by one {t_dedup1:.2f} s (x{t_rep / t_dedup1:.2f}), grouped (rankbench) "
          f"{t_dedup:.2f} s (x{t_rep / t_dedup:.2f})")
    print(f"ratio score_rankbench_vs_naive_{args.naive} {t_slow / t_fast:.4f}")
    if slow_plain:
        print(f"ratio score_rankbench_vs_naive_{args.naive}_contiguous {t_plain / t_fast:.4f}")
    print(f"ratio score_grouped_vs_one_by_one {t_one / t_fast:.4f}")
    print(f"ratio draws_per_distinct_subnet {args.draws / len(distinct):.4f}")
    print(f"ratio score_distinct_vs_every_draw {t_rep / t_dedup1:.4f}")
    print(f"ratio score_rankbench_vs_every_draw {t_rep / t_dedup:.4f}")


def _chunks(items: list, k: int) -> list[list]:
    """``items`` in ``k`` consecutive chunks of near-equal size."""
    k = max(1, min(k, len(items)))
    return [items[len(items) * i // k:len(items) * (i + 1) // k] for i in range(k)]

if __name__ == "__main__":
    main()
