"""Is there more exact sharing for scoring than the stem and the first cell's paths?

``score_candidates`` already computes, once per batch for a group of candidates, the work
that does not depend on the candidate: the stem and the first cell's path blocks (they read
only the stem's output). This script measures what is left, at the quick preset's scoring
size (width 16, 3 stacks x 1 cell, 16x16, evaluation batches of 500, eval mode, 1 thread):

1. **time split** of one candidate's evaluation forward: the stem, the first cell's paths
   (shared), the rest of the first cell (node 5, its norm), the later cells (with pooling),
   the classifier; and the bound it puts on grouping: per candidate, a group of G pays the
   unshared part plus 1/G of the shared part;
2. **prefix sharing when archs are drawn per cell** (one subnet per cell, ``sampling =
   "per_cell"``): among N such candidates, how many distinct prefixes of 1, 2, ... cells there
   are, i.e. how much of the cell work a prefix tree would save (counted; rankbench scores
   S4 candidates with one subnet for every cell, where two candidates share a prefix of
   cells only if they are the same subnet);
3. **batching identical path blocks across candidates**: a later cell's path block used by k
   candidates of a group runs on k different inputs (their earlier cells differ): the same
   FLOPs in one call of batch k x 500 instead of k calls of 500 (convolution only; after
   calibration each candidate has its own BN statistics, so the BN cannot be batched).

    python bench/bench_sharing.py --threads 1 [--width 16] [--cells-per-stack 1] [--resolution 16]

Ends with ``ratio NAME VALUE`` lines.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from rankbench.spaces import create_space
from rankbench.supernet import create_supernet


def _time(fn, reps: int) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls (after one untimed call)."""
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--stacks", type=int, default=3)
    ap.add_argument("--cells-per-stack", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--group", type=int, default=32, help="candidates per group (score.group_size)")
    ap.add_argument("--subnets", type=int, default=24, help="part 1: subnets timed (a seeded sample)")
    ap.add_argument("--draws", type=int, default=1000, help="part 2: per-cell candidates drawn")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space = create_space("s4", m=4)
    torch.manual_seed(0)
    net = create_supernet(space, "lsbn", width=args.width, stacks=args.stacks,
                          cells_per_stack=args.cells_per_stack).eval().to(memory_format=torch.channels_last)
    x = torch.randn(args.batch, 3, args.resolution, args.resolution).contiguous(memory_format=torch.channels_last)
    print(f"lsbn m=4 width {args.width}, {args.stacks}x{args.cells_per_stack} cells, "
          f"{args.resolution}x{args.resolution}, eval batch {args.batch}, channels-last, "
          f"threads {torch.get_num_threads()}")

    # -- 1. time split of one candidate's forward ---------------------------------------------
    # measured directly, interleaved, fastest of --reps (load only adds time): the full forward,
    # and the forward with the shared work already in the memo (what grouping leaves per candidate)
    subnets = random.Random(0).sample(space.candidates(), args.subnets)
    cell0 = net.cells[0]
    all_paths = [cell0.path(node, op) for node in range(cell0.m) for op in space.ops]

    def fill_memo() -> dict:
        memo = {net.stem: net.stem(x)}
        for path in all_paths:
            memo[path] = path(memo[net.stem])
        return memo

    with torch.no_grad():
        memo = fill_memo()
        t_group_shared = _time(fill_memo, args.reps)  # the stem and all 12 paths, once per batch and group
        full, rest = [], []
        for s in subnets:
            tf, tr = [], []
            for _ in range(args.reps):
                tf.append(_time(lambda s=s: net(x, s), 1))
                tr.append(_time(lambda s=s: net(x, s, memo=dict(memo)), 1))
            full.append(min(tf))
            rest.append(min(tr))
    f, r = statistics.mean(full), statistics.mean(rest)
    sh = f - r
    groups = [random.Random(k).sample(space.candidates(), args.group) for k in range(20)]
    used_paths = statistics.mean(len({(i, s.ops[i]) for s in grp for i in s.active}) for grp in groups)
    grouped = r + t_group_shared * (used_paths / len(all_paths)) / args.group  # stem counted as a path: an upper bound
    print(f"one candidate's forward (mean of {len(subnets)} subnets, fastest of {args.reps}): {1e3 * f:.1f} ms = the stem "
          f"and the first cell's paths {1e3 * sh:.1f} ms ({100 * sh / f:.0f}%, the same for every candidate) + the rest "
          f"{1e3 * r:.1f} ms ({100 * r / f:.0f}%: node 5 and norm of the first cell, the later cells, the classifier)")
    print(f"grouped by {args.group} (a group uses {used_paths:.1f} of the first cell's {len(all_paths)} paths; stem and "
          f"all paths once: {1e3 * t_group_shared:.1f} ms): ~{1e3 * grouped:.1f} ms per candidate, x{f / grouped:.2f} "
          f"of one by one; sharing all of it for free would give x{f / r:.2f}")

    # -- 2. prefix sharing with per-cell archs --------------------------------------------------
    n_cells = net.num_cells
    rng = random.Random(1)
    cands = list({tuple(space.sample(rng) for _ in range(n_cells)) for _ in range(args.draws)})
    distinct = [len({c[:j + 1] for c in cands}) for j in range(n_cells)]
    saved = 1 - sum(distinct) / (len(cands) * n_cells)
    print(f"per-cell archs: {len(cands)} distinct candidates of {n_cells} cells have {distinct} distinct prefixes of "
          f"1..{n_cells} cells: a prefix tree would run {100 * saved:.1f}% fewer cells (if all cells cost the same), "
          f"almost all of it in the first cell")

    # -- 3. one batched call for k candidates' identical path block -----------------------------
    rows = []
    with torch.no_grad():
        for ci in range(1, n_cells):
            cell = net.cells[ci]
            conv = cell.path(0, "conv3x3-bn-relu")[1][0]  # the op's 3x3 convolution
            c, side = conv.in_channels, args.resolution >> (ci // args.cells_per_stack)  # 2x2 pool per stack
            k = max(1, round(args.group * 3.0 / (cell.m * len(space.ops))))  # S4: 3.0 paths per subnet on average
            xs = [torch.randn(args.batch, c, side, side).contiguous(memory_format=torch.channels_last)
                  for _ in range(k)]
            xb = torch.cat(xs).contiguous(memory_format=torch.channels_last)
            seps, bats = [], []
            for _ in range(args.reps):  # interleaved; the fastest of each
                seps.append(_time(lambda: [conv(xi) for xi in xs], 1))
                bats.append(_time(lambda: conv(xb), 1))
            t_sep, t_bat = min(seps), min(bats)
            rows.append(t_sep / t_bat)
            print(f"cell {ci + 1}: 3x3 conv {c}->{c} at {side}x{side}, {k} candidates: {k} calls of batch "
                  f"{args.batch} {1e3 * t_sep:.1f} ms, one call of batch {k * args.batch} {1e3 * t_bat:.1f} ms "
                  f"(x{t_sep / t_bat:.2f})")
    print(f"ratio shared_fraction_of_forward {sh / f:.4f}")
    print(f"ratio unshared_ms_per_candidate {1e3 * r:.3f}")
    print(f"ratio grouping_bound_x {f / grouped:.4f}")
    print(f"ratio per_cell_prefix_saving {saved:.4f}")
    if rows:
        print(f"ratio batched_conv_vs_separate {statistics.mean(rows):.4f}")


if __name__ == "__main__":
    main()
