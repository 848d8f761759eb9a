"""The nb101-quick same-scale truth: how reliable it is, and what ranks it.

Reads a measured truth of nb101-quick (default: the bundled ``data/truth-nb101-quick.csv``,
made by ``rankbench truth --preset nb101-quick``: the stand-alone NB101 network at the preset's
size — width 16, 3 stacks x 1 cell, 16x16 images, 4,000 training images — trained 8 epochs
with the preset's schedule, 3 seeds, for 250 of the bundled cells) and reports:

- its reliability: the split-half estimate over seeds (Spearman-Brown corrected), the spread
  between seeds, the platforms its trainings ran on (the sidecar's sessions);
- Kendall tau / Spearman (95% class-bootstrap intervals, resampling the truth's repeats) of
  every free reference ranker against it on the same cells: parameter count, FLOPs at the
  preset's size, NB101's 4/12/36/108-epoch accuracies, and the zero-cost proxies (computed at
  the preset's size, batch ``--batch-size``, cached in the output folder; ``--no-proxies``
  skips them). NB101's 108-epoch accuracy against it says how far the two truths agree: the
  cap a smoke-scale ranker meets when it is judged by the 108-epoch truth.

    python analysis/same_scale_truth.py [--truth data/truth-nb101-quick.csv] [--no-proxies]

Outputs (analysis/out/nb101-quick/ or --out): same_scale_truth.{md,csv}.
"""
from __future__ import annotations

import _recipes as R


def main() -> None:
    p = R.parser(__doc__)
    p.set_defaults(preset="nb101-quick")
    p.add_argument("--truth", default=None, help="measured truth CSV (default: the preset's bundled one)")
    p.add_argument("--batch-size", type=int, default=64, help="images each zero-cost proxy scores a network on")
    p.add_argument("--no-proxies", action="store_true")
    p.add_argument("--n-boot", type=int, default=1000)
    args = p.parse_args()

    import json
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from rankbench import nb101
    from rankbench._io import atomic_path, write_text
    from rankbench.metrics import rank_metrics
    from rankbench.references import NetworkSize, reference_scores
    from rankbench.spaces import create_space
    from rankbench.truth import load_truth_csv, measured_truth_path

    cfg = R.config(args)
    out = R.out_dir(args)
    path = Path(args.truth) if args.truth else measured_truth_path(cfg.preset)
    if not path.exists():
        raise SystemExit(f"no measured truth at {path}: measure it with `rankbench truth --preset {cfg.preset}`")
    truth = load_truth_csv(path)
    side = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").exists() else {}
    raw = pd.read_csv(path, dtype={"hash": str})
    hashes = list(truth.table.index)
    t, _ = truth.values(hashes)
    reps = truth.repeats_for(hashes)
    rel = truth.reliability() or {}

    space = create_space("nb101")
    by_hash = {a.hash: a for a in space.candidates()}
    missing = [h for h in hashes if h not in by_hash]
    if missing:
        raise SystemExit(f"{len(missing)} truth hashes have no spec in the NB101 store (e.g. {missing[0]})")
    specs = [by_hash[h].spec for h in hashes]
    store = nb101.open(cfg.truth.store or None)
    size = NetworkSize(stem_channels=cfg.model.width, stacks=cfg.model.stacks, cells_per_stack=cfg.model.cells_per_stack,
                       resolution=cfg.data.resolution, num_classes=cfg.model.num_classes)
    ref, _ = reference_scores(specs, size, store=store)
    scores = {"params (NB101's network)": ref["params"], "flops (this size)": ref["flops"],
              "params (this size)": raw.groupby("hash")["params"].first().reindex(hashes).to_numpy(float)}
    for e in (4, 12, 36, 108):
        scores[f"NB101 {e}-epoch accuracy"] = np.asarray(
            store.query_many(hashes, epochs=e, metric="validation_accuracy", reduce="mean"), dtype=float)
    if not args.no_proxies:
        import torch

        from rankbench.data.splits import load_splits
        from rankbench.proxies import compute_proxies, list_proxies

        torch.set_num_threads(1)
        train = load_splits(cfg.data, progress=False).train
        px = compute_proxies(specs, list_proxies(), model_cfg=cfg.model, data=train, seed=0, batch_size=args.batch_size,
                             device=args.device or "cpu", cache_path=out / "same_scale_proxies_cache.csv",
                             progress=not args.no_progress)
        for name in list_proxies():
            scores[f"zero-cost: {name}"] = px[name].to_numpy(float)

    rows = []
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        ok = np.isfinite(s) & np.isfinite(t)
        m = rank_metrics(s[ok], t[ok], truth_repeats=reps[ok], groups=np.asarray(hashes)[ok], n_boot=args.n_boot,
                         seed=0, k=0.1)
        rows.append({"ranker": name, "n": int(ok.sum()), "kendall_tau": m["kendall_tau"],
                     "kendall_tau_ci_low": (m.get("kendall_tau_ci") or (np.nan,))[0],
                     "kendall_tau_ci_high": (m.get("kendall_tau_ci") or (np.nan, np.nan))[1],
                     "spearman": m["spearman"], "spearman_ci_low": (m.get("spearman_ci") or (np.nan,))[0],
                     "spearman_ci_high": (m.get("spearman_ci") or (np.nan, np.nan))[1]})
    table = pd.DataFrame(rows)
    with atomic_path(out / "same_scale_truth.csv", ".csv") as tmp:
        table.to_csv(tmp, index=False)

    seeds = sorted(raw["seed"].unique())
    per_class = raw.groupby("hash")["validation_accuracy"]
    by_platform: dict[str, int] = {}
    for s in side.get("sessions", []):
        pl = s.get("platform") or {}
        where = f"{pl.get('device', '?')} ({pl.get('cpu_model', '?')}, torch {pl.get('torch', '?')}, key {pl.get('key', '?')})"
        by_platform[where] = by_platform.get(where, 0) + int(s.get("trainings") or 0)
    plats = [f"{n} trainings on {where}" for where, n in by_platform.items()]
    md = [f"# The nb101-quick same-scale truth ({len(hashes)} cells x {len(seeds)} seeds)", "",
          f"File: `{path.name}` ({len(raw)} trainings; seeds {', '.join(map(str, seeds))}; "
          f"{int(raw['epochs'].iloc[0])} epochs each; validation accuracy on the preset's 1,000 validation images).",
          f"Validation accuracy: {t.min():.3f} .. {t.max():.3f} (mean over seeds), mean {t.mean():.3f}; "
          f"mean std between seeds {per_class.std().mean():.3f}.",
          f"Split-half reliability (seeds split in halves, Spearman-Brown corrected): "
          f"{rel.get('reliability', float('nan')):.3f} (mean Kendall tau between half-means "
          f"{rel.get('split_half_tau', float('nan')):.3f}); estimated Kendall tau of this truth with a noise-free "
          f"one: **{rel.get('estimated_tau', float('nan')):.3f}** (the S4 truth's target: 0.80-0.85).",
          "Where it ran: " + ("; ".join(plats) if plats else "(no sidecar)") + ".", "",
          f"Rankers against it (Kendall tau and Spearman, 95% intervals of the class bootstrap with the "
          f"truth's {len(seeds)} repeats resampled, {args.n_boot} resamples):", "",
          "| ranker | n | Kendall tau | 95% CI | Spearman | 95% CI |", "|---|---:|---:|---|---:|---|"]
    for r in rows:
        md.append(f"| {r['ranker']} | {r['n']} | {r['kendall_tau']:+.3f} | [{r['kendall_tau_ci_low']:+.3f}, "
                  f"{r['kendall_tau_ci_high']:+.3f}] | {r['spearman']:+.3f} | [{r['spearman_ci_low']:+.3f}, "
                  f"{r['spearman_ci_high']:+.3f}] |")
    write_text(out / "same_scale_truth.md", "\n".join(md) + "\n")
    print("\n".join(md))
    R.report([out / "same_scale_truth.md", out / "same_scale_truth.csv"])


if __name__ == "__main__":
    R.main(main)
