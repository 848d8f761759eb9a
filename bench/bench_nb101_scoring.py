"""NB101 scoring: the weight-sharing supernet vs the stand-alone NB101 network of each cell.

Per candidate of the ``nb101-quick`` preset, side by side in one run, the same work:

- supernet: ``rankbench.scoring.score_candidates`` as ``rankbench.pipeline`` calls it (the
  preset's ``score`` section and protocol, groups of ``score.group_size``, channels-last):
  BN calibration on ``score.calib_batches`` x ``score.calib_batch_size`` training images,
  then top-1 and loss on the preset's validation images; and the same without calibration;
- stand-alone: nasbench-pytorch's ``Network`` of the same cell at the preset's size
  (``rankbench.nb101.network.build_network``, as ``rankbench.truth.measure_truth`` builds it;
  here via ``to_nb101_network``, which also copies the supernet's weights into it, so that
  the scores can be compared): every BN reset, the same calibration batches forwarded in
  train mode (cumulative average, as the ``clean`` protocol), then the same validation
  images evaluated in eval mode with rankbench's ``evaluate``, in the same memory format.
  Building it is not timed (its time is printed aside). Its evaluation phase alone is the
  baseline of scoring without calibration.

The supernet is untrained (timing only: the scores mean nothing, but the supernet's and the
stand-alone network's calibrated scores are compared, and are identical for ``bn``, ``lsbn`` and
``esbn``; ``scale`` divides sums by the fan-in, which NB101's network does not). The candidates
are cut into ``--chunks`` chunks; each chunk is timed ``--reps`` times per method, the methods
alternating and their order flipped from segment to segment, so that a shared machine's load
drift hits them alike. Per chunk the fastest segment counts (other processes only add time;
the medians are printed beside). Each chunk is one ``score_candidates`` call (a chunk smaller
than ``score.group_size`` scores in smaller groups than a run of 500 candidates does: the
supernet's side is, if anything, slowed by it).

    python bench/bench_nb101_scoring.py [--candidates 32] [--variant lsbn] [--chunks 2] [--reps 2]
                                        [--threads 1] [--one-by-one] [--aten-pool]
                                        [--contiguous-standalone]

``--one-by-one`` also times ``score_candidates(group_size=1)`` (the supernet without the work
its candidates share: the stem and the first cell's projections); ``--aten-pool`` also times
the supernet with ATen's max-pool in the cell instead of its no-grad CPU path
(``nb101_cell._max_pool3x3``), the code before that speed-up; both asserted to give the same
scores.

Ends with ``ratio nb101_score_vs_standalone VALUE`` (calibration + evaluation; issue target
<= 1.2) and ``ratio nb101_score_nocalib_vs_standalone VALUE`` (evaluation only).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch import nn

from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import load_splits
from rankbench.nb101.network import build_network
from rankbench.numerics import setup_compute
from rankbench.scoring import calibration_data, eval_tensors, evaluate, get_protocol, score_candidates
from rankbench.spaces import space_from_config
from rankbench.supernet import supernet_from_config
from rankbench.supernet import nb101_cell
from rankbench.supernet.nb101_cell import to_nb101_network

_BN = nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def standalone_score(net: nn.Module, calib: list[torch.Tensor] | None, images: torch.Tensor, labels: torch.Tensor,
                     *, reset: bool, batch_size: int) -> tuple[float, float, float, float]:
    """(accuracy, loss, calibration seconds, evaluation seconds) of a stand-alone network:
    BN statistics reset, the calibration batches forwarded in train mode, then evaluated."""
    t0 = time.perf_counter()
    if calib is not None:
        for m in net.modules():
            if isinstance(m, _BN) and reset:
                m.reset_running_stats()
                m.momentum = None
        net.train()
        for x in calib:
            net(x)
    t1 = time.perf_counter()
    acc, loss = evaluate(net, None, images, labels, batch_size)
    return acc, loss, t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="nb101-quick")
    ap.add_argument("--variant", default="", help="model.variant (default: the preset's)")
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--chunks", type=int, default=2, help="alternate the methods over this many chunks")
    ap.add_argument("--reps", type=int, default=2, help="interleaved timed segments per chunk and method")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: the preset's train.num_threads)")
    ap.add_argument("--one-by-one", action="store_true",
                    help="also time score_candidates(group_size=1): the supernet without the shared work")
    ap.add_argument("--aten-pool", action="store_true",
                    help="also time the supernet with ATen's max-pool in the cell (as before the no-grad fast path)")
    ap.add_argument("--contiguous-standalone", action="store_true",
                    help="run the stand-alone networks in PyTorch's default contiguous format")
    args = ap.parse_args()

    cfg = load_preset(args.preset)
    if args.variant:
        cfg = apply_overrides(cfg, [f"model.variant={args.variant}"])
    device = torch.device("cpu")
    setup_compute(cfg.train, device)  # as the pipeline: portable dispatch, the preset's threads
    if args.threads:
        torch.set_num_threads(args.threads)
    proto = get_protocol(cfg.score.protocol)
    s = proto.score_config(cfg.score)
    space = space_from_config(cfg)
    candidates = space.candidates(args.candidates, seed=s.seed)
    torch.manual_seed(cfg.train.seed)
    net = supernet_from_config(cfg).eval()  # untrained: timing only
    splits = load_splits(cfg.data, progress=False)

    # the stand-alone side's data: the tensors score_candidates makes for itself
    fmt = torch.contiguous_format if args.contiguous_standalone else torch.channels_last
    images, labels = eval_tensors(splits, s.eval_split, size=s.eval_size, seed=s.seed, device=device)
    images = images.contiguous(memory_format=fmt)
    calib = [b.contiguous(memory_format=fmt) for b in calibration_data(splits, proto, cfg.score, data_cfg=cfg.data,
                                                                       device=device)]
    t = time.perf_counter()
    for a in candidates:
        build_network(a.spec, stem_channels=cfg.model.width, num_stacks=cfg.model.stacks,
                      cells_per_stack=cfg.model.cells_per_stack, num_classes=cfg.model.num_classes)
    t_build = (time.perf_counter() - t) / len(candidates)
    alone = {a.name: to_nb101_network(net, a).to(memory_format=fmt) for a in candidates}  # type: ignore[call-overload]

    print(f"{args.preset}: {cfg.model.variant} supernet (untrained, timing only), width {cfg.model.width}, "
          f"{cfg.model.stacks}x{cfg.model.cells_per_stack} cells, {cfg.data.resolution}x{cfg.data.resolution}, "
          f"{net.param_count() / 1e6:.3f}M params; {len(candidates)} candidates; calibration "
          f"{len(calib)}x{s.calib_batch_size} train images ({proto.name} protocol), evaluation {len(labels)} "
          f"{s.eval_split} images in batches of {s.eval_batch_size}; supernet groups of {s.group_size}, chunks "
          f"{args.chunks}; stand-alone {'contiguous' if args.contiguous_standalone else 'channels-last'}; "
          f"threads {torch.get_num_threads()}; torch {torch.__version__}")

    kw: dict[str, Any] = dict(protocol=proto, data_cfg=cfg.data, progress=False)
    score_candidates(net, candidates[:2], splits, cfg.score, calibrate=True, **kw)  # warm-up
    for a in candidates[:2]:
        standalone_score(alone[a.name], calib, images, labels, reset=proto.calib_reset, batch_size=s.eval_batch_size)

    # per chunk and method, the seconds of each of --reps interleaved segments; keys: supernet
    # with / without calibration, stand-alone calibration phase / evaluation phase
    keys = ("sup", "sup_nocalib", "alone_calib", "alone_eval") + (("sup_one", "sup_one_nocalib") if args.one_by_one
                                                                   else ()) + (("sup_aten",) if args.aten_pool else ())
    seg: list[dict[str, list[float]]] = []
    sup_acc: list[float] = []
    sup_loss: list[float] = []
    alone_acc: list[float] = []
    alone_loss: list[float] = []
    for i, chunk in enumerate(_chunks(candidates, args.chunks)):
        times: dict[str, list[float]] = {k: [] for k in keys}
        seg.append(times)
        for r in range(args.reps):
            # the order flips from segment to segment: drift and warm caches favour neither
            for side in (("supernet", "alone") if (i + r) % 2 == 0 else ("alone", "supernet")):
                if side == "supernet":
                    t = time.perf_counter()
                    df = score_candidates(net, chunk, splits, cfg.score, calibrate=True, **kw)
                    times["sup"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    score_candidates(net, chunk, splits, cfg.score, calibrate=False, **kw)
                    times["sup_nocalib"].append(time.perf_counter() - t)
                    if r == 0:
                        sup_acc.extend(df["accuracy"])
                        sup_loss.extend(df["loss"])
                    if args.one_by_one:
                        t = time.perf_counter()
                        one = score_candidates(net, chunk, splits, cfg.score, calibrate=True, group_size=1, **kw)
                        times["sup_one"].append(time.perf_counter() - t)
                        t = time.perf_counter()
                        score_candidates(net, chunk, splits, cfg.score, calibrate=False, group_size=1, **kw)
                        times["sup_one_nocalib"].append(time.perf_counter() - t)
                        assert one["loss"].tolist() == df["loss"].tolist(), "group_size=1 scores differ"
                    if args.aten_pool:
                        fast_pool = nb101_cell._max_pool3x3
                        nb101_cell._max_pool3x3 = _aten_pool
                        try:
                            t = time.perf_counter()
                            aten = score_candidates(net, chunk, splits, cfg.score, calibrate=True, **kw)
                            times["sup_aten"].append(time.perf_counter() - t)
                        finally:
                            nb101_cell._max_pool3x3 = fast_pool
                        assert aten["loss"].tolist() == df["loss"].tolist(), "scores with ATen's max-pool differ"
                    continue
                tc = te = 0.0
                for a in chunk:
                    acc, loss, dc, de = standalone_score(alone[a.name], calib, images, labels,
                                                         reset=proto.calib_reset, batch_size=s.eval_batch_size)
                    tc, te = tc + dc, te + de
                    if r == 0:
                        alone_acc.append(acc)
                        alone_loss.append(loss)
                times["alone_calib"].append(tc)
                times["alone_eval"].append(te)

    n = len(candidates)
    # other processes only add time: per chunk the fastest segment is the least disturbed
    # estimate (summed over chunks); the medians' sums beside it
    best = {k: sum(min(t[k]) for t in seg) for k in keys}
    med = {k: sum(statistics.median(t[k]) for t in seg) for k in keys}
    for d in (best, med):
        d["alone"] = d["alone_calib"] + d["alone_eval"]
    d_acc = max(abs(x - y) for x, y in zip(sup_acc, alone_acc))
    d_loss = max(abs(x - y) for x, y in zip(sup_loss, alone_loss))
    print(f"seconds per candidate (fastest of {args.reps} interleaved segments per chunk; medians in brackets):")
    print(f"  supernet (score_candidates)  with calibration {best['sup'] / n:.3f} [{med['sup'] / n:.3f}]   without "
          f"{best['sup_nocalib'] / n:.3f} [{med['sup_nocalib'] / n:.3f}]")
    if args.one_by_one:
        print(f"  supernet one by one (group_size=1, no shared work)  with calibration {best['sup_one'] / n:.3f} "
              f"[{med['sup_one'] / n:.3f}]   without {best['sup_one_nocalib'] / n:.3f} "
              f"[{med['sup_one_nocalib'] / n:.3f}]")
    if args.aten_pool:
        print(f"  supernet with ATen's max-pool in the cell (identical scores)  with calibration "
              f"{best['sup_aten'] / n:.3f} [{med['sup_aten'] / n:.3f}]")
    print(f"  stand-alone network          with calibration {best['alone'] / n:.3f} [{med['alone'] / n:.3f}]   without "
          f"(evaluation only) {best['alone_eval'] / n:.3f} [{med['alone_eval'] / n:.3f}]   (its calibration "
          f"{best['alone_calib'] / n:.3f}; building it, not timed above, {t_build:.3f})")
    same = "identical" if d_acc == d_loss == 0 else f"largest differences accuracy {d_acc:.2g}, loss {d_loss:.2g}"
    print(f"same weights, calibrated scores, supernet vs stand-alone: {same} (mean accuracy "
          f"{sum(sup_acc) / n:.4f}; an untrained supernet: timing only)")
    print(f"medians' ratios: with calibration x{med['sup'] / med['alone']:.3f}, without "
          f"x{med['sup_nocalib'] / med['alone_eval']:.3f}")
    print(f"ratio nb101_score_vs_standalone {best['sup'] / best['alone']:.4f}")
    print(f"ratio nb101_score_nocalib_vs_standalone {best['sup_nocalib'] / best['alone_eval']:.4f}")
    if args.aten_pool:
        print(f"ratio nb101_score_aten_pool_vs_fast_pool {best['sup_aten'] / best['sup']:.4f}")
    if args.one_by_one:
        print(f"ratio nb101_score_one_by_one_vs_standalone {best['sup_one'] / best['alone']:.4f}")
        print(f"ratio nb101_score_one_by_one_nocalib_vs_standalone {best['sup_one_nocalib'] / best['alone_eval']:.4f}")


def _aten_pool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return pool(x)


def _chunks(items: list, k: int) -> list[list]:
    """``items`` in ``k`` consecutive chunks of near-equal size."""
    k = max(1, min(k, len(items)))
    return [items[len(items) * i // k:len(items) * (i + 1) // k] for i in range(k)]


if __name__ == "__main__":
    main()
