"""Zero-cost proxies: time for the 34 S4 networks and for 500 NB101 candidates, and what the
shared pass saves over one pass per measure.

rankbench's ``compute_proxies`` scores every proxy of a candidate from one train-mode forward
pass (loss gradient, Hessian-vector product and input Jacobian read from the same graph; a
rebuild instead of a deep copy for SynFlow). The baseline runs each measure on its own fresh
network and its own forward pass, as zero-cost-nas's ``find_measures`` does (one network copy
and one pass per measure). Both compute the same numbers (asserted on the baseline's cells).

- S4: the 34 distinct NB101 cells of S4 (m = 4), at the quick preset's size (width 16,
  3 stacks x 1 cell, 16x16 images);
- NB101: ``--cells`` (500) cells drawn from the bundled store as the nb101-quick preset's
  candidates are (seed ``--seed``), same size.

Target (issue 19, 2 shared cores): S4 <= 20 s, 500 NB101 cells <= 2 min. The baseline runs on
the first ``--baseline`` NB101 cells only (alternating chunks with rankbench's, so that load
drift hits both alike). No cache is used: every value is computed.

    python bench/bench_proxies.py [--cells 500] [--baseline 40] [--batch-size 64] [--threads 1] [--device cpu]

Ends with ``time NAME SECONDS`` and ``ratio NAME VALUE`` lines.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rankbench.config import load_preset
from rankbench.data.loader import normalize
from rankbench.data.splits import load_splits
from rankbench.nb101.network import build_network
from rankbench.proxies import (
    Probe,
    compute_proxies,
    get_proxy,
    list_proxies,
    select_batch,
)
from rankbench.spaces import create_space


def separate_passes(specs, cfg, data, seed, batch_size, device) -> np.ndarray:
    """The baseline: per candidate and per measure, a fresh seeded network and its own pass."""
    x, y = select_batch(data, batch_size, seed)
    x, y = normalize(x).to(device), y.to(device)
    m = cfg.model
    out = np.zeros((len(specs), len(list_proxies())))
    for i, spec in enumerate(specs):
        for j, name in enumerate(list_proxies()):
            def build(spec=spec):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    return build_network(spec, stem_channels=m.width, num_stacks=m.stacks,
                                         cells_per_stack=m.cells_per_stack, num_classes=m.num_classes,
                                         momentum=m.bn_momentum)
            p = get_proxy(name)
            out[i, j] = p(Probe(build().to(device), x, y, needs=p.needs))  # synflow: deep copy, as zero-cost-nas
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=500)
    ap.add_argument("--baseline", type=int, default=40, help="NB101 cells the per-measure baseline runs on")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_preset("nb101-quick")
    data = load_splits(cfg.data, progress=False).train
    kw = {"model_cfg": cfg.model, "data": data, "seed": args.seed, "batch_size": args.batch_size,
          "device": args.device, "progress": False}
    print(f"proxies: {', '.join(list_proxies())}; model width {cfg.model.width}, {cfg.model.stacks} stacks x "
          f"{cfg.model.cells_per_stack} cells, {cfg.data.resolution}px, batch {args.batch_size}, "
          f"{args.threads} thread(s), {args.device}")

    s4 = create_space("s4", m=4)
    s4_specs = [subnets[0].spec for subnets in s4.hash_classes().values()]
    compute_proxies(s4_specs[:1], **kw)  # warm-up (allocator, kernels)
    t = time.perf_counter()
    compute_proxies(s4_specs, **kw)
    t_s4 = time.perf_counter() - t
    print(f"S4: {len(s4_specs)} networks in {t_s4:.1f} s ({t_s4 / len(s4_specs):.3f} s each; target <= 20 s)")

    nb = [a.spec for a in create_space("nb101").candidates(args.cells, seed=args.seed)]
    nb_base = nb[:args.baseline]
    t_ours = t_base = 0.0
    base = np.zeros((0, len(list_proxies())))
    for k in range(args.chunks):  # alternate: ours on a chunk of all cells, baseline on a chunk of its cells
        part = nb[k * len(nb) // args.chunks:(k + 1) * len(nb) // args.chunks]
        bpart = nb_base[k * len(nb_base) // args.chunks:(k + 1) * len(nb_base) // args.chunks]
        t = time.perf_counter()
        compute_proxies(part, **kw)
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        base = np.vstack([base, separate_passes(bpart, cfg, data, args.seed, args.batch_size, args.device)])
        t_base += time.perf_counter() - t
    per_ours, per_base = t_ours / len(nb), t_base / max(len(nb_base), 1)
    print(f"NB101: {len(nb)} cells in {t_ours:.1f} s ({per_ours:.3f} s each; target <= 120 s)")
    print(f"baseline (one pass and one network per measure): {per_base:.3f} s per cell "
          f"over {len(nb_base)} cells")
    # same numbers: compare the cells both computed
    ours_check = compute_proxies(nb_base, **kw).iloc[:, 1:].to_numpy()
    ok = np.isclose(ours_check, base, rtol=1e-3, atol=1e-9, equal_nan=True)
    ok |= np.isinf(ours_check) & (ours_check == base)
    assert ok.all(), f"shared pass and separate passes differ at {np.argwhere(~ok)[:5].tolist()}"
    print(f"time s4_34 {t_s4:.2f}")
    print(f"time nb101_{len(nb)} {t_ours:.2f}")
    print(f"ratio s4_34_vs_target {t_s4 / 20.0:.3f}")
    print(f"ratio nb101_{len(nb)}_vs_target {t_ours / 120.0 * 500 / len(nb):.3f}")
    print(f"ratio separate_vs_shared {per_base / per_ours:.3f}")


if __name__ == "__main__":
    main()
