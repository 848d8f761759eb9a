"""torch.compile of a supernet: compilations vs distinct subnets, steps/s and scoring speed
compiled (``rankbench.supernet.compile.compile_supernet``) vs eager, side by side.

Two copies of one supernet (same initial weights), one eager, one with its static blocks
compiled. Parts:

1. compilations: both copies train on the same batches and subnets, ``--distinct`` distinct
   subnets in turn (e.g. 20 then 60); dynamo's graph counter is read after each stage, and
   the two copies' losses are compared step by step (largest difference printed);
2. training speed: alternating rounds of ``--steps`` steps (``train_step`` with the subnet's
   used parameters, as ``fit`` does; channels-last; synthetic batches, so the data pipeline
   is not timed), after the warm-up of part 1; median ms/step of each;
3. scoring: ``score_candidates`` with calibration on ``--score-subnets`` subnets, eager vs
   compiled (same weights), alternating ``--rounds`` times; accuracies compared;
4. (``--overhead``, alone) the host's cost of a step: the paper preset's structure at
   negligible tensor sizes, eager vs compiled, and the FLOPs of a paper-size step, for the
   GPU projection (a GPU step cannot be faster than its host's Python + dispatch time).

For comparison part 1 also trains ``torch.compile(net)`` (``aot_eager``, cheap) on the first
subnets: one graph per subnet until the recompile limit.

    python bench/bench_compile.py --threads 1        # quick-preset size: width 16, 3x1 cells, batch 64, 16x16
    python bench/bench_compile.py --backend aot_eager --steps 5 --rounds 1 --width 4   # plumbing only
    python bench/bench_compile.py --overhead --threads 1                              # part 4

Ends with ``ratio NAME VALUE`` lines (``> 1``: compiled is faster).
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from rankbench.config import DataConfig, ScoreConfig, TrainConfig
from rankbench.data.splits import load_splits
from rankbench.scoring import get_protocol, score_candidates
from rankbench.spaces import create_space
from rankbench.supernet import create_supernet
from rankbench.supernet.compile import compilable_blocks, compile_supernet, graph_count
from rankbench.train import make_optimizer, train_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="lsbn")
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--stacks", type=int, default=3)
    ap.add_argument("--cells-per-stack", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--backend", default="inductor")
    ap.add_argument("--mode", default=None, help="torch.compile mode (e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--distinct", type=int, nargs="+", default=[20, 60],
                    help="part 1: read the graph counter after this many distinct subnets")
    ap.add_argument("--no-whole-demo", dest="whole_demo", action="store_false",
                    help="skip compiling the whole supernet for comparison")
    ap.add_argument("--steps", type=int, default=20, help="part 2: timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--score-subnets", type=int, default=32, help="part 3: subnets scored (0: skip)")
    ap.add_argument("--eval-size", type=int, default=1000)
    ap.add_argument("--calib-batches", type=int, default=4)
    ap.add_argument("--overhead", action="store_true",
                    help="only part 4: the paper preset's structure at negligible tensor sizes, eager vs compiled")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.overhead:
        return overhead(args)

    space = create_space("s4", m=args.m)
    def build():
        torch.manual_seed(0)
        return create_supernet(space, args.variant, width=args.width, stacks=args.stacks,
                               cells_per_stack=args.cells_per_stack).to(memory_format=torch.channels_last)

    eager, comp = build(), build()  # the same initial weights
    compile_supernet(comp, backend=args.backend, mode=args.mode)
    tc = TrainConfig(lr=0.05, grad_clip=5.0)
    opt_e, opt_c = make_optimizer(eager, tc), make_optimizer(comp, tc)
    b, res = args.batch, args.resolution
    print(f"{args.variant} m={args.m} width {args.width}, {args.stacks}x{args.cells_per_stack} cells, "
          f"{eager.param_count() / 1e6:.3f}M params, batch {b}, {res}x{res}, channels-last; "
          f"{len(compilable_blocks(comp))} compiled blocks, backend {args.backend}"
          f"{', mode ' + args.mode if args.mode else ''}; threads {torch.get_num_threads()}; torch {torch.__version__}")

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(b, 3, res, res, generator=g).contiguous(memory_format=torch.channels_last),
                torch.randint(0, 10, (b,), generator=g)) for _ in range(4)]

    def step(net, opt, i: int, arch) -> torch.Tensor:
        x, y = batches[i % len(batches)]
        used = [p for _, p in net.used_parameters(arch)]
        loss, _ = train_step(net, opt, x, y, arch, grad_clip=tc.grad_clip, used=used)
        return loss

    # part 1: graphs vs distinct subnets; the losses of the two copies step by step
    subnets = space.subnets()
    random.Random(1).shuffle(subnets)
    g0 = graph_count()
    t = time.perf_counter()
    lc = step(comp, opt_c, 0, subnets[0]).item()
    first = time.perf_counter() - t
    le = step(eager, opt_e, 0, subnets[0]).item()
    done, diffs, counts = 1, [abs(lc - le) / max(abs(le), 1e-12)], []
    t_compile = first
    for n in args.distinct:
        for i in range(done, min(n, len(subnets))):
            t = time.perf_counter()
            lc = step(comp, opt_c, i, subnets[i]).item()
            t_compile += time.perf_counter() - t
            le = step(eager, opt_e, i, subnets[i]).item()
            diffs.append(abs(lc - le) / max(abs(le), 1e-12))
        done = min(n, len(subnets))
        counts.append((done, graph_count() - g0))
        print(f"after {done:3d} distinct subnets: {counts[-1][1]} graphs compiled (training: forward + backward "
              f"per block kind)")
    print(f"compiled copy's first step {first:.1f} s, its {done} steps of part 1 {t_compile:.1f} s; loss, compiled "
          f"vs eager, largest relative difference: steps 1-5 {max(diffs[:5]):.2e}, all {len(diffs)} steps "
          f"{max(diffs):.2e} (training amplifies float rounding step after step)")

    # for comparison: torch.compile of the whole supernet (aot_eager backend, so that it is cheap)
    n_whole = 0
    if args.whole_demo:
        whole = build()
        whole_c = torch.compile(whole, backend="aot_eager")
        opt_w = make_optimizer(whole, tc)
        gw = graph_count()
        for i in range(args.distinct[0]):
            x, y = batches[i % len(batches)]
            train_step(whole_c, opt_w, x, y, subnets[i], grad_clip=tc.grad_clip)
        print(f"torch.compile(net) for comparison: {graph_count() - gw} graphs after {args.distinct[0]} distinct "
              f"subnets "
              f"(one per subnet until the recompile limit, "
              f"{torch._dynamo.config.recompile_limit}; the other subnets then run eagerly)")
        n_whole = graph_count() - gw
        print(f"ratio whole_net_compile_graphs_{args.distinct[0]} {n_whole}")
        del whole, whole_c, opt_w

    # part 2: steps/s, alternating rounds on the same subnets
    rng = random.Random(2)
    t_e, t_c = [], []
    for r in range(args.rounds):
        archs = [rng.choice(subnets) for _ in range(args.steps)]
        for net, opt, times in ((eager, opt_e, t_e), (comp, opt_c, t_c)):
            t = time.perf_counter()
            torch.stack([step(net, opt, i, a) for i, a in enumerate(archs)]).sum().item()
            times.append((time.perf_counter() - t) / args.steps)
    s_e, s_c = statistics.median(t_e), statistics.median(t_c)
    print(f"training step: eager {1e3 * s_e:.1f} ms ({1 / s_e:.2f} steps/s)   compiled {1e3 * s_c:.1f} ms "
          f"({1 / s_c:.2f} steps/s)   x{s_e / s_c:.2f}  (median of {args.rounds} rounds x {args.steps} steps; "
          f"graphs now {graph_count() - g0 - n_whole})")
    print(f"ratio compile_distinct_{counts[0][0]}_graphs {counts[0][1]}")
    print(f"ratio compile_distinct_{counts[-1][0]}_graphs {counts[-1][1]}")
    print(f"ratio compile_graphs_growth {counts[-1][1] / max(counts[0][1], 1):.4f}")
    print(f"ratio compile_train_speedup {s_e / s_c:.4f}")
    print(f"ratio compile_loss_max_rel_diff_5_steps {max(diffs[:5]):.3e}")

    # part 3: scoring with calibration, same weights
    if args.score_subnets:
        comp.load_state_dict(eager.state_dict())
        data_cfg = DataConfig(train_size=max(args.calib_batches * 64, 500), valid_size=args.eval_size,
                              test_size=100, resolution=res)
        splits = load_splits(data_cfg, progress=False)
        score_cfg = ScoreConfig(calib_batches=args.calib_batches, calib_batch_size=64, eval_batch_size=500)
        kw = dict(calibrate=True, protocol=get_protocol("clean"), data_cfg=data_cfg, progress=False)
        subs = subnets[:args.score_subnets]
        g1 = graph_count()
        t = time.perf_counter()
        score_candidates(comp, subs[:2], splits, score_cfg, **kw)  # warm-up: calibration and evaluation graphs
        print(f"scoring warm-up (compiles calibration and evaluation graphs): {time.perf_counter() - t:.1f} s, "
              f"{graph_count() - g1} graphs")
        s_e, s_c, acc = [], [], {}
        for _ in range(args.rounds):
            for name, net, times in (("eager", eager, s_e), ("compiled", comp, s_c)):
                t = time.perf_counter()
                acc[name] = score_candidates(net, subs, splits, score_cfg, **kw)["accuracy"].to_numpy()
                times.append(time.perf_counter() - t)
        d = float(abs(acc["eager"] - acc["compiled"]).max())
        g_score = graph_count() - g1
        e, c = statistics.median(s_e), statistics.median(s_c)
        n = len(subs)
        print(f"scoring {n} subnets (calibration {args.calib_batches}x64, {len(splits.valid)} valid images): eager "
              f"{e:.2f} s ({n / e:.2f} candidates/s)   compiled {c:.2f} s ({n / c:.2f} candidates/s)   x{e / c:.2f}; "
              f"largest accuracy difference {d:.4f}; {g_score} graphs for scoring in all")
        print(f"ratio compile_score_speedup {e / c:.4f}")


def overhead(args) -> None:
    """Part 4: what a step costs the host. The paper preset's structure (3 stacks x 3 cells,
    m = 4) at width 4, 8x8 images, batch 2, where compute is negligible: the eager step's time
    is then its Python + dispatcher cost, which a GPU pays on the CPU whatever the GPU's
    speed; the same for the compiled blocks. Also the FLOPs of a step at the paper's real
    size (counted on the meta device), to set against it."""
    from torch.utils.flop_counter import FlopCounterMode

    from rankbench.config import load_preset
    from rankbench.supernet import supernet_from_config

    cfg = load_preset("paper")
    with torch.device("meta"):
        big = supernet_from_config(cfg)
    rng = random.Random(0)
    archs = [big.space.sample_arch(rng, big.num_cells) for _ in range(40)]
    b = cfg.data.batch_size
    x = torch.empty(b, 3, 32, 32, device="meta")
    flops = []
    for a in archs:
        with FlopCounterMode(display=False) as fc:
            big(x, a).sum().backward()
        flops.append(fc.get_total_flops())
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        for a in archs:
            big(x[:1], a)
    eval_gflop = fc.get_total_flops() / len(archs) / 1e9
    del big
    print(f"paper preset, evaluation forward: {eval_gflop:.2f} GFLOP per image (mean over the same subnets)")
    print(f"paper preset, training step (forward + backward, batch {b}, 32x32): mean "
          f"{statistics.mean(flops) / 1e9:.0f} GFLOP over {len(archs)} sampled subnets "
          f"(min {min(flops) / 1e9:.0f}, max {max(flops) / 1e9:.0f})")
    tc = cfg.train
    per_step = {}
    for label in ("eager", "compiled"):
        torch.manual_seed(0)
        net = create_supernet("s4", cfg.model.variant, width=4, stacks=cfg.model.stacks,
                              cells_per_stack=cfg.model.cells_per_stack)
        if label == "compiled":
            compile_supernet(net, backend=args.backend)
        opt = make_optimizer(net, tc)
        xs, ys = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2,))

        def step(a, net=net, opt=opt, xs=xs, ys=ys):
            train_step(net, opt, xs, ys, a, grad_clip=tc.grad_clip, used=[p for _, p in net.used_parameters(a)])

        t = time.perf_counter()
        for a in archs:  # warm-up (compiles every block kind)
            step(a)
        warm = time.perf_counter() - t
        per_step[label] = min(_timed_steps(step, archs) for _ in range(args.rounds))
        print(f"{label:8s}: host time per training step at negligible sizes {1e3 * per_step[label]:.1f} ms "
              f"(warm-up {warm:.1f} s)")
    print(f"ratio host_step_ms_eager {1e3 * per_step['eager']:.3f}")
    print(f"ratio host_step_ms_compiled {1e3 * per_step['compiled']:.3f}")
    print(f"ratio paper_step_gflop {statistics.mean(flops) / 1e9:.1f}")
    print(f"ratio paper_eval_gflop_per_image {eval_gflop:.3f}")


def _timed_steps(step, archs) -> float:
    t = time.perf_counter()
    for a in archs:
        step(a)
    return (time.perf_counter() - t) / len(archs)


if __name__ == "__main__":
    main()
