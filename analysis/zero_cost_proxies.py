"""Zero-cost proxies on NAS-Bench-101: how well each ranks NB101's cells, beside parameter count.

Ranks NB101 cells that have a spec in the store (``rankbench.nb101.open()``; the bundled
sample: 30,031) against NB101's 108-epoch validation accuracy (mean of the stored repeats)
with every registered proxy (``rankbench.proxies``: synflow, snip, grasp, fisher, grad_norm,
jacob_cov, naswot), NB101's parameter count and FLOPs at the run's size. Kendall tau and
Spearman with bootstrap intervals from ``rankbench.metrics.rank_metrics``; the signed value is
reported (every proxy is oriented as its reference implementation ranks: higher = better) and
|Spearman| beside the published anchors (Abdelfattah et al. 2021, zero-cost-nas notebook,
all of NB101, |Spearman|).

Each cell's network is built at the preset's size (``--preset``, default nb101-quick: width
16, 3 stacks x 1 cell, 16x16 images; ``--set model.width=128 --set model.cells_per_stack=3
--set data.resolution=32`` for NB101's own network, as zero-cost-nas: ~1 min per cell on one
CPU core) and scored on ``--batch-size`` images of the preset's training split. ``--cells N``
cells are drawn with ``--seed`` (as the nb101 space draws candidates); 0 = all (long on 2 cores:
~0.3-0.6 s per cell at the quick size). Proxy values are cached (resumable) in the output folder.

Outputs (analysis/out/<preset>/): zero_cost_proxies.{csv,md} (one row per ranker),
zero_cost_proxies_scores.csv (one row per cell), zero_cost_proxies_cache.csv (+ .setups.json).

    python analysis/zero_cost_proxies.py --cells 1000 [--batch-size 64] [--seed 0] [--device cpu]

Split over processes or machines: ``--shard K/N`` computes only every N-th cell (from the K-th)
into ``zero_cost_proxies_cache-shard-K-of-N.csv`` and stops; a later run without ``--shard``
merges every such file found in the output folder into the cache, then computes what is still
missing and writes the tables. Values do not depend on the sharding (each cell's network and
batch are seeded on their own); the cache records the device each value was computed on.
"""
from __future__ import annotations

import _recipes as R

#: |Spearman| on all of NB101 (CIFAR-10): Abdelfattah et al., ICLR 2021, SamsungLabs/zero-cost-nas
#: notebooks/nasbench101_correlations.ipynb (and #params from the same paper)
PUBLISHED_ABS_SPEARMAN = {"grasp": 0.448, "jacob_cov": 0.378, "synflow": 0.372, "fisher": 0.257,
                          "grad_norm": 0.198, "snip": 0.164, "params": 0.44}


def main() -> None:
    p = R.parser(__doc__)
    p.set_defaults(preset="nb101-quick")
    p.add_argument("--cells", type=int, default=1000, help="cells drawn with --seed (0 = every cell with a spec)")
    p.add_argument("--seed", type=int, default=0, help="draws the cells, the image batch and every network's init")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--proxies", nargs="+", default=None, help="default: every registered proxy")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--cached-only", action="store_true",
                   help="rank only the cells whose proxies are all in the cache already (computes nothing)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="compute only cells K, K+N, ... into their own cache file, and stop (see above)")
    args = p.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    from rankbench import nb101
    from rankbench._io import write_text
    from rankbench._paths import display_path
    from rankbench.data.splits import load_splits
    from rankbench.metrics import rank_metrics
    from rankbench.proxies import compute_proxies, get_proxy, list_proxies
    from rankbench.references import NetworkSize, reference_scores
    from rankbench.spaces import create_space

    torch.set_num_threads(args.threads)
    cfg = R.config(args)
    out = R.out_dir(args)
    store = nb101.open(cfg.truth.store or None)
    cands = create_space("nb101").candidates(args.cells, seed=args.seed)
    specs = [a.spec for a in cands]
    hashes = [s.hash for s in specs]
    truth = np.asarray(store.query_many(hashes, epochs=108, metric="validation_accuracy", reduce="mean"), dtype=float)
    reps = np.asarray(store.query_many(hashes, epochs=108, metric="validation_accuracy", reduce="all"), dtype=float)
    device = args.device or "cpu"
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    train = load_splits(cfg.data, progress=not args.no_progress).train
    names = args.proxies or list_proxies()
    cache = out / "zero_cost_proxies_cache.csv"
    if args.shard:
        k, n = _shard(args.shard)
        part = compute_proxies(specs[k::n], names, model_cfg=cfg.model, data=train, seed=args.seed,
                               batch_size=args.batch_size, device=device, progress=not args.no_progress,
                               cache_path=out / f"zero_cost_proxies_cache-shard-{k}-of-{n}.csv")
        print(f"shard {k}/{n}: proxies of {len(part)} cells ({part.attrs['computed']} computed now, "
              f"{part.attrs['seconds']:.1f} s); run again without --shard to merge and write the tables")
        return
    _merge_shard_caches(cache)
    drawn = len(specs)
    if args.cached_only:  # a measurement cut short: the cells it reached (hash order: no pattern in the cells)
        import pandas as pd

        have = pd.read_csv(cache, dtype={"hash": str}) if cache.exists() else pd.DataFrame(columns=["hash", "proxy"])
        full = set(have.groupby("hash")["proxy"].apply(set).loc[lambda x: x.apply(lambda p: set(names) <= p)].index)
        keep = [i for i, h in enumerate(hashes) if h in full]
        if not keep:
            raise SystemExit(f"--cached-only: no cell has all of {names} in {cache}")
        specs, hashes = [specs[i] for i in keep], [hashes[i] for i in keep]
        truth, reps = truth[keep], reps[keep]
    df = compute_proxies(specs, names, model_cfg=cfg.model, data=train, seed=args.seed, batch_size=args.batch_size,
                         device=device, cache_path=cache, progress=not args.no_progress)
    setup = df.attrs["setup"]
    size = NetworkSize(stem_channels=cfg.model.width, stacks=cfg.model.stacks,
                       cells_per_stack=cfg.model.cells_per_stack, resolution=cfg.data.resolution,
                       num_classes=cfg.model.num_classes)
    ref, _ = reference_scores(specs, size, store=store)
    df["params"], df["flops"] = ref["params"], ref["flops"]
    df["truth"] = truth
    rankers = [*names, "params", "flops"]

    rows = []
    for r in rankers:
        s = df[r].to_numpy(dtype=float)
        ok = np.isfinite(s) & np.isfinite(truth)
        m = rank_metrics(s[ok], truth[ok], truth_repeats=reps[ok], n_boot=args.n_boot, seed=args.seed, k=0.1)
        pub = PUBLISHED_ABS_SPEARMAN.get(r)
        rows.append({"ranker": r, "n": int(ok.sum()), "kendall_tau": m["kendall_tau"],
                     "kendall_tau_ci": m.get("kendall_tau_ci"), "spearman": m["spearman"],
                     "spearman_ci": m.get("spearman_ci"), "abs_spearman": abs(m["spearman"]),
                     "published_abs_spearman": pub,
                     "source": get_proxy(r).source if r in names else "rankbench.references"})
    table = pd.DataFrame(rows)
    cols = {"width": setup["width"], "stacks": setup["stacks"], "cells_per_stack": setup["cells_per_stack"],
            "resolution": setup["resolution"], "batch_size": setup["batch_size"], "seed": setup["seed"],
            "setup": setup["digest"], "cells": len(specs),
            "truth": "NB101 validation_accuracy, 108 epochs, mean of repeats", "store": display_path(store.path)}
    for k, v in cols.items():
        table[k] = v
    written = [out / "zero_cost_proxies.csv", out / "zero_cost_proxies_scores.csv", out / "zero_cost_proxies.md"]
    table.to_csv(written[0], index=False)
    df.to_csv(written[1], index=False)

    def ci(c):
        return f"[{c[0]:+.3f}, {c[1]:+.3f}]" if c is not None else ""

    md = [f"# Zero-cost proxies on NAS-Bench-101 ({len(specs)} cells)", "",
          (f"Truth: NB101 108-epoch validation accuracy (mean of the stored repeats; store "
           f"{display_path(store.path)}). " +
          (f"Cells: {len(specs)} drawn with seed {args.seed} from the {len(store.hashes(with_spec=True))} with a spec. "
           if len(specs) == drawn else
           f"Cells: the {len(specs)} of {drawn} cells whose proxies were computed when the measurement stopped "
           f"(computed in hash order, which follows no property of the cell). ") +
          f"Networks: NB101's stand-alone network at width {setup['width']}, {setup['stacks']} stacks x "
          f"{setup['cells_per_stack']} cells, {setup['resolution']}x{setup['resolution']} images, init seed "
          f"{setup['seed']}; {setup['batch_size']} training images (setup {setup['digest']}). Signed correlations "
          f"(higher score = better predicted accuracy); 95% bootstrap intervals ({args.n_boot} resamples). "
          f"params: NB101's stored trainable_parameters (its 128-channel network); flops: multiply-accumulates "
           f"at the run's size. Published: |Spearman| on all of NB101 at NB101's size (Abdelfattah et al. "
           f"2021)."), "",
          "| ranker | n | Kendall tau | 95% CI | Spearman | 95% CI | abs Spearman | published abs Spearman |",
          "|---|---:|---:|---|---:|---|---:|---:|"]
    for row in rows:
        pub = f"{row['published_abs_spearman']:.3f}" if row["published_abs_spearman"] is not None else ""
        md.append(f"| {row['ranker']} | {row['n']} | {row['kendall_tau']:+.3f} | {ci(row['kendall_tau_ci'])} | "
                  f"{row['spearman']:+.3f} | {ci(row['spearman_ci'])} | {row['abs_spearman']:.3f} | {pub} |")
    write_text(written[2], "\n".join(md) + "\n")
    print("\n".join(md[-len(rows) - 2:]))
    print(f"proxies computed for {df.attrs['computed']} cells in {df.attrs['seconds']:.1f} s")
    R.report(written)


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text!r}: use K/N with integers, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise SystemExit(f"--shard {text!r}: need N >= 1 and 0 <= K < N")
    return k, n


def _merge_shard_caches(cache) -> None:
    """Append the rows of every ``<cache stem>-shard-K-of-N.csv`` beside ``cache`` to it (the cache
    reader keeps the last value of a key, and a shard's values equal a single process's), then
    remove the shard files."""
    from rankbench._io import atomic_path

    shards = sorted(cache.parent.glob(cache.stem + "-shard-*-of-*.csv"))
    if not shards:
        return
    lines = cache.read_text().splitlines() if cache.exists() else []
    for f in shards:
        rows = f.read_text().splitlines()
        if not lines:
            lines = rows[:1]
        lines += [r for r in rows[1:] if r.count(",") == lines[0].count(",")]  # a torn last line is dropped
    with atomic_path(cache, ".csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    for f in shards:
        side = f.with_name(f.name + ".setups.json")
        main_side = cache.with_name(cache.name + ".setups.json")
        if side.exists() and not main_side.exists():
            side.replace(main_side)
        side.unlink(missing_ok=True)
        f.unlink()
    print(f"merged {len(shards)} shard cache(s) into {cache.name}")


if __name__ == "__main__":
    R.main(main)
