"""One-shot check of the paper preset's GPU path: training throughput (fp32, bf16, bf16 +
compiled blocks; real data vs synthetic tensors), projected epoch time, scoring throughput,
a one-process DDP step, peak GPU memory. Under 5 minutes on one CUDA GPU.

    python bench/gpu_check.py                          # CUDA: the paper preset
    python bench/gpu_check.py --device cpu --smoke     # CPU: tiny sizes, ~1 minute (CI keeps it alive)

Everything goes through the public API, as ``rankbench train`` / ``rankbench run`` do it:
``load_preset("paper")``, ``supernet_from_config``, ``rankbench.train`` (``make_optimizer``,
``make_train_loader``, ``train_step`` with the subnet's used parameters), bf16 autocast,
channels-last, ``rankbench.supernet.compile.compile_supernet``, ``score_candidates``,
``rankbench.distributed.wrap_ddp``. Parts:

1. training, per mode (fp32 / bf16 / bf16 + compile): warm-up (for compile: one epoch of the
   loader, so that every block kind and the epoch's short last batch are compiled; the graph
   count is printed, and again after timing: it must not move), then ``--steps`` steps with
   batches from the training loader and the same steps on one synthetic batch already on the
   device; images/s of each and their ratio (1.0: the data pipeline costs nothing);
   the loader alone; peak GPU memory;
2. projected epoch (and ``train.epochs``) time of each mode, at the preset's training-set
   size (40,000 images, NB101's split, when full CIFAR-10 is not here);
3. scoring: ``score_candidates`` with calibration (``clean`` protocol: the preset's
   calibration batches) on ``--score-candidates`` candidates and ``--eval-size`` validation
   images, eager and compiled; candidates/s, and the projected time for every candidate on
   the whole validation split;
4. one training step under DDP in a 1-process group (NCCL on CUDA, gloo on CPU), with the
   used-gradients hook, against the same step without DDP (weights compared).

Ends with ``ratio NAME VALUE`` lines. Data: ``data.source`` of the preset when present, else
the bundled sample (noted). ``--budget-s``: optional parts (compiled scoring) are skipped when
the time is short.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import random
import socket
import sys
import time

import torch

from rankbench.config import apply_overrides, load_preset
from rankbench.data.splits import load_splits
from rankbench.scoring import get_protocol, score_candidates
from rankbench.supernet import supernet_from_config
from rankbench.supernet.compile import compile_supernet, graph_count, uncompile_supernet
from rankbench.train import make_optimizer, make_train_loader, train_step

#: CPU smoke test: the paper preset's code paths at tiny sizes
SMOKE = {"model.width": 4, "model.stacks": 2, "model.cells_per_stack": 1, "data.resolution": 16,
         "data.batch_size": 16, "data.source": "bundled", "data.train_size": 160, "data.valid_size": 100,
         "score.calib_batches": 2, "score.calib_batch_size": 32}
NB101_TRAIN, NB101_VALID = 40_000, 10_000
MODES = (("fp32", False, False), ("bf16", True, False), ("bf16+compile", True, True))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def _mem(device: torch.device, gib: float) -> str:
    return f"; peak GPU memory {gib:.2f} GiB" if device.type == "cuda" else ""


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _cycle(loader):
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader.batches()
        epoch += 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU CI)")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per mode and data source (200; smoke 4)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps of an uncompiled mode (20; smoke 2)")
    ap.add_argument("--backend", default=None, help="torch.compile backend (inductor; smoke on CPU: aot_eager)")
    ap.add_argument("--modes", nargs="+", default=[m[0] for m in MODES], choices=[m[0] for m in MODES])
    ap.add_argument("--score-candidates", type=int, default=None, help="(64; smoke 4)")
    ap.add_argument("--eval-size", type=int, default=None, help="validation images per candidate (2000; smoke 100)")
    ap.add_argument("--budget-s", type=float, default=270.0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda:
        device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)
    smoke = args.smoke or not cuda  # the paper preset on a CPU would take hours
    steps = args.steps or (4 if smoke else 200)
    warmup = args.warmup if args.warmup is not None else (2 if smoke else 20)
    backend = args.backend or ("aot_eager" if smoke and not cuda else "inductor")
    n_score = args.score_candidates or (4 if smoke else 64)
    eval_size = args.eval_size or (100 if smoke else 2000)

    cfg = load_preset(args.preset)
    if smoke:
        cfg = apply_overrides(cfg, SMOKE)
    cfg = apply_overrides(cfg, {"train.device": str(device)})
    note = ""
    try:
        splits = load_splits(cfg.data, progress=False)
    except (FileNotFoundError, ValueError) as e:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="bundled"))
        splits = load_splits(cfg.data, progress=False)
        why = str(e).splitlines()[0][:60]
        note = f"; data.source {load_preset(args.preset).data.source!r} not here ({why}...): bundled sample"
    tc, dc = cfg.train, cfg.data
    n_train = len(splits.train.labels)
    real_data = dc.source != "bundled"
    epoch_images = n_train if real_data or smoke else NB101_TRAIN
    b, res = dc.batch_size, dc.resolution
    torch.manual_seed(tc.seed)
    probe = supernet_from_config(cfg)
    print(f"device {device}{' ' + torch.cuda.get_device_name(device) if cuda else ''}; torch {torch.__version__}; "
          f"{'smoke: tiny sizes' if smoke else 'preset ' + args.preset}: {cfg.model.variant}, "
          f"{getattr(probe.space, 'tag', probe.space.name)}, width {cfg.model.width}, "
          f"{cfg.model.stacks}x{cfg.model.cells_per_stack} cells, {probe.param_count() / 1e6:.2f}M params, "
          f"batch {b}, {res}x{res}, channels-last {tc.channels_last}; compile backend {backend}; "
          f"{n_train} training images{note}", flush=True)
    del probe
    fmt = torch.channels_last if tc.channels_last else torch.contiguous_format
    per_cell = tc.sampling == "per_cell"
    ratios: dict[str, float] = {}

    def build():
        torch.manual_seed(tc.seed)
        return supernet_from_config(cfg).to(device).to(memory_format=fmt)

    # -- 1. training throughput per mode ------------------------------------------------------
    g = torch.Generator(device="cpu").manual_seed(0)
    xs = torch.randn(b, 3, res, res, generator=g).to(device).contiguous(memory_format=fmt)
    ys = torch.randint(0, 10, (b,), generator=g).to(device)
    results = {}
    net = None
    for name, amp, comp in MODES:
        if name not in args.modes:
            continue
        net = build()
        opt = make_optimizer(net, tc)
        net.train()
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else None  # as fit, on CPU too
        loader = make_train_loader(splits.train, cfg, device)
        real = _cycle(loader)
        rng = random.Random(tc.seed)

        def step(x, y, arch, net=net, opt=opt, autocast=autocast):
            loss, _ = train_step(net, opt, x.contiguous(memory_format=fmt), y, arch, grad_clip=tc.grad_clip,
                                 autocast=autocast, used=[p for _, p in net.used_parameters(arch)])
            return loss

        def timed(fn, archs) -> float:
            _sync(device)
            t = time.perf_counter()
            torch.stack([fn(a) for a in archs]).sum().item()
            _sync(device)
            return time.perf_counter() - t

        _reset_peak(device)
        g0 = graph_count()
        if comp:
            compile_supernet(net, backend=backend)
        n_warm = len(loader) + 1 if comp else warmup  # compile: a whole epoch, its last short batch too
        t_warm = timed(lambda a: step(*next(real), a), [net.space.sample_arch(rng, net.num_cells, per_cell)
                                                         for _ in range(n_warm)])
        g_warm = graph_count() - g0
        archs = [net.space.sample_arch(rng, net.num_cells, per_cell) for _ in range(steps)]
        t_real = timed(lambda a: step(*next(real), a), archs)
        t_synth = timed(lambda a: step(xs, ys, a), archs)
        t_data = timed(lambda a: next(real)[0][0, 0, 0, 0].float(), archs)
        g_after = graph_count() - g0
        r = results[name] = {"real": b * steps / t_real, "synth": b * steps / t_synth, "data": b * steps / t_data,
                             "mem": _gib(device)}
        print(f"[{name:12s}] warm-up {n_warm} steps {t_warm:.1f} s"
              f"{f' ({g_warm} graphs compiled; {g_after} after timing)' if comp else ''}; "
              f"real data {r['real']:8.1f} images/s, synthetic {r['synth']:8.1f} images/s "
              f"(ratio {t_synth / t_real:.3f}), "
              f"loader alone {r['data']:9.1f} images/s{_mem(device, r['mem'])}", flush=True)
        ratios[f"real_vs_synthetic_{name}"] = t_synth / t_real
        if comp:
            ratios["compile_graphs_after_warmup"] = g_warm
            ratios["compile_recompiles_during_timing"] = g_after - g_warm
        del opt
        if name != "bf16+compile":  # scoring goes on with the compiled mode's network
            net = None

    # -- 2. projected epoch time --------------------------------------------------------------
    steps_epoch = math.ceil(epoch_images / b)
    for name, r in results.items():
        epoch_s = epoch_images / r["real"]
        print(f"[{name:12s}] one epoch ({epoch_images} images, {steps_epoch} steps) ~ {epoch_s:.1f} s; "
              f"{tc.epochs} epochs ~ {epoch_s * tc.epochs / 3600:.2f} h")
        ratios[f"epoch_s_{name}"] = epoch_s
    if "fp32" in results and "bf16" in results:
        ratios["bf16_vs_fp32"] = results["bf16"]["real"] / results["fp32"]["real"]
    if "bf16" in results and "bf16+compile" in results:
        ratios["compile_vs_bf16"] = results["bf16+compile"]["real"] / results["bf16"]["real"]

    # -- 3. scoring throughput ----------------------------------------------------------------
    proto = get_protocol("clean")
    eff = proto.apply(apply_overrides(cfg, {"score.eval_size": min(eval_size, len(splits.valid.labels))}))
    sc = eff.score
    if net is None:
        net = build()
    cands = net.space.candidates(n_score, seed=0)  # a spread of sizes, as the whole list
    n_all = len(net.space.candidates())
    valid_full = len(splits.valid.labels) if real_data or smoke else NB101_VALID
    calib_images = sc.calib_batches * sc.calib_batch_size
    kw = dict(calibrate=True, protocol=proto, data_cfg=dc, progress=False)
    timings = {}
    for label, compiled in (("eager", False), ("compiled", True)):
        if compiled and time.perf_counter() - t_start > 0.6 * args.budget_s:
            used_s = time.perf_counter() - t_start
            print(f"[score] compiled scoring skipped: {used_s:.0f} s of the {args.budget_s:.0f} s budget used")
            continue
        uncompile_supernet(net)
        if compiled:
            compile_supernet(net, backend=backend)
            g0 = graph_count()
            t = time.perf_counter()
            rng = random.Random(1)  # a few archs of the training distribution use every block kind
            score_candidates(net, list(dict.fromkeys(net.space.sample(rng) for _ in range(8))), splits, sc, **kw)
            g_warm = graph_count() - g0
            print(f"[score] compiled warm-up (8 sampled archs) {time.perf_counter() - t:.1f} s ({g_warm} graphs)")
        _reset_peak(device)
        _sync(device)
        t = time.perf_counter()
        score_candidates(net, cands, splits, sc, **kw)
        _sync(device)
        dt = timings[label] = time.perf_counter() - t
        if compiled:
            ratios["score_recompiles_during_timing"] = graph_count() - g0 - g_warm
        per_image = dt / len(cands) / (calib_images + sc.eval_size)
        full = per_image * (calib_images + valid_full) * n_all
        print(f"[score] {label:8s} {len(cands)} candidates, calibration {sc.calib_batches}x{sc.calib_batch_size}, "
              f"{sc.eval_size} valid images: {dt:.2f} s, {len(cands) / dt:.2f} candidates/s; all {n_all} candidates on "
              f"{valid_full} valid images ~ {full / 60:.1f} min{_mem(device, _gib(device))}", flush=True)
        ratios[f"score_candidates_per_s_{label}"] = len(cands) / dt
        if cuda:
            ratios[f"peak_gpu_mem_gib_score_{label}"] = _gib(device)
        ratios[f"score_all_min_{label}"] = full / 60
    if len(timings) == 2:
        ratios["score_compile_vs_eager"] = timings["eager"] / timings["compiled"]
    del net

    # -- 4. one DDP step in a 1-process group ---------------------------------------------------
    ratios.update(_ddp_check(build, tc, device, xs, ys, per_cell))

    if cuda:
        ratios["peak_gpu_mem_gib_training"] = max((r["mem"] for r in results.values()), default=float("nan"))
    print(f"total {time.perf_counter() - t_start:.0f} s")
    for k, v in ratios.items():
        print(f"ratio {k} {v:.4g}")
    return 0


def _ddp_check(build, tc, device: torch.device, xs, ys, per_cell: bool) -> dict[str, float]:
    """One training step of a fresh supernet under ``wrap_ddp`` in a 1-process group vs the
    same step without DDP: the weights must agree; the step times are printed."""
    import torch.distributed as dist

    from rankbench import distributed

    backend = "nccl" if device.type == "cuda" else "gloo"
    kw = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1, **kw)
    try:
        plain, ref = build(), build()
        arch = plain.space.sample_arch(random.Random(0), plain.num_cells, per_cell)
        ddp = distributed.wrap_ddp(plain)
        times = {}
        for label, model, base in (("ddp", ddp, plain), ("plain", ref, ref)):
            opt = make_optimizer(base, tc)
            used = [p for _, p in base.used_parameters(arch)]
            base.train()
            for i in range(3):  # the first step builds DDP's buckets; time the last
                _sync(device)
                t = time.perf_counter()
                train_step(model, opt, xs, ys, arch, grad_clip=tc.grad_clip, used=used)
                _sync(device)
                times[label] = time.perf_counter() - t
        diff = max((a - b).abs().max().item() for a, b in zip(plain.state_dict().values(), ref.state_dict().values())
                   if a.is_floating_point())
        sent = distributed.grad_reducer(ddp)
        print(f"[ddp  ] 1-process {backend} DDP step {1e3 * times['ddp']:.1f} ms vs {1e3 * times['plain']:.1f} ms "
              f"without DDP; largest weight difference after 3 steps {diff:.2e}; gradient elements sent "
              f"{sent.sent if sent else 0} of {sent.total if sent else 0}")
        if not diff < 1e-3:
            raise SystemExit(f"DDP step differs from the plain step by {diff}")
        return {f"ddp_{backend}_vs_plain_step": times["ddp"] / times["plain"], "ddp_max_weight_diff": diff}
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
