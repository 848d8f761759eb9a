"""Interference between cells: how many NB101 cells can one set of supernet weights serve?

Trains nb101-quick supernets (``--variant``, default bn) whose every step draws its cell from a
pool of N cells (training sampler ``pool:N:<seed>``: N distinct cells drawn once with the
training seed, so the pool changes with the seed) for N in ``--pools`` (``all`` = the uniform
sampler over all 423,624 NB101 cells), one run per (N, training seed), and scores the same
``--candidates`` cells with and without BN calibration. Pool 1 is one stand-alone network
trained inside the supernet.

For each run: the training accuracy of its last epoch (on the pool's cells, as trained), and
Kendall tau of the supernet's accuracy against two truths on the same candidates — NB101's
108-epoch validation accuracy (the store's repeats) and the same-scale measured truth
(``data/truth-nb101-quick.csv``: the stand-alone network of the preset's size, 3 seeds) — each
with the 95% interval of the class bootstrap (hash classes, and the truth's repeats where it
has 2 or more), beside the parameter count and NB101's 4/12/36-epoch accuracies ranked the
same way. A row per pool size is the mean over training seeds; the per-seed values are in the
CSV.

    python analysis/interference.py [--run] [--seeds 2020 2021] [--pools 1 10 100 1000 all]
        [--variant bn] [--candidates 250] [--runs-root runs/interference]

``--run`` trains and scores what is missing (``rankbench run`` per pool and seed; finished runs
and cached scores are reused, an interrupted training resumes); without it, the runs must
exist. Outputs (analysis/out/interference/ or --out): interference.csv (one row per run),
interference.md (pool size x seed means), interference.png/.pdf.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

POOLS = ("1", "10", "100", "1000", "all")
NB101_CELLS = 423_624


def sampler_of(pool: str, seed: int) -> str:
    return "uniform" if pool == "all" else f"pool:{int(pool)}:{seed}"


def pool_size(pool: str) -> int:
    return NB101_CELLS if pool == "all" else int(pool)


def run_args(args: argparse.Namespace, pool: str, seed: int) -> list[str]:
    return ["--preset", args.preset, "--variant", args.variant, "--seed", str(seed),
            "--set", f"train.sampler={sampler_of(pool, seed)}", "--set", f"score.candidates={args.candidates}",
            "--runs-root", str(args.runs_root), *[a for o in args.overrides for a in ("--set", o)]]


def run_dir_of(args: argparse.Namespace, pool: str, seed: int) -> Path:
    from rankbench.config import apply_overrides, load_preset
    from rankbench.rundir import run_dir_for

    cfg = apply_overrides(load_preset(args.preset), [
        f"model.variant={args.variant}", f"train.seed={seed}", f"train.sampler={sampler_of(pool, seed)}",
        f"score.candidates={args.candidates}", *args.overrides])
    return run_dir_for(cfg, args.runs_root)


def measure(args: argparse.Namespace, pool: str, seed: int, same_scale) -> list[dict]:
    from rankbench.metrics import rank_metrics
    from rankbench.reports import load_report

    rd = run_dir_of(args, pool, seed)
    done = json.loads((rd / "train_done.json").read_text())
    rep = load_report(rd, "clean-calib")
    sc = rep.scores
    hashes = sc["hash"].astype(str).tolist()
    truths = {"nb101_108": (sc["truth"].to_numpy(float), None)}
    if same_scale is not None:
        truths["same_scale"] = (same_scale.values(hashes)[0], same_scale.repeats_for(hashes))
    rankers = {"supernet_calib": "acc_calib", "supernet_no_calib": "acc_no_calib"}
    rankers.update({c[4:]: c for c in sc.columns if c.startswith("ref_")})
    rows = []
    for tname, (t, reps) in truths.items():
        for rname, col in rankers.items():
            s = sc[col].to_numpy(float)
            ok = np.isfinite(s) & np.isfinite(t)
            m = rank_metrics(s[ok], t[ok], truth_repeats=None if reps is None else reps[ok], groups=np.asarray(hashes)[ok],
                             n_boot=args.n_boot, seed=0, k=0.1)
            ci = m.get("kendall_tau_ci") or (np.nan, np.nan)
            rows.append({"pool": pool, "pool_size": pool_size(pool), "seed": seed, "truth": tname, "ranker": rname,
                         "kendall_tau": m["kendall_tau"], "ci_low": ci[0], "ci_high": ci[1],
                         "spearman": m["spearman"], "n": int(ok.sum()),
                         "train_acc": done.get("train_acc"), "train_loss": done.get("train_loss"),
                         "run": f"{rd.name}/{rep.path.name}", "platform": (done.get("platform") or {}).get("key")})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="store_true", help="train and score the missing runs")
    ap.add_argument("--pools", nargs="+", default=list(POOLS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021])
    ap.add_argument("--variant", default="bn")
    ap.add_argument("--preset", default="nb101-quick")
    ap.add_argument("--candidates", type=int, default=250, help="score.candidates (the same-scale truth covers 250)")
    ap.add_argument("--runs-root", type=Path, default=Path("runs/interference"))
    ap.add_argument("--same-scale-truth", type=Path, default=None,
                    help="measured truth CSV (default: the bundled data/truth-nb101-quick.csv, if present)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("analysis/out/interference"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = ap.parse_args(argv)
    bad = [p for p in args.pools if p != "all" and not (p.isdigit() and int(p) >= 1)]
    if bad:
        ap.error(f"--pools: {bad} are not pool sizes (integers >= 1, or 'all')")

    missing = [(p, s) for s in args.seeds for p in args.pools if not (run_dir_of(args, p, s) / "train_done.json").exists()
               or not list((run_dir_of(args, p, s) / "reports").glob("clean-calib-*/scores.csv"))]
    if missing and args.run:
        for p, s in missing:
            cmd = [sys.executable, "-m", "rankbench", "run", *run_args(args, p, s), "--calibrate", "--no-progress"]
            print("+", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True)
        missing = []
    if missing:
        lines = "\n".join("  rankbench run " + " ".join(run_args(args, p, s)) + " --calibrate" for p, s in missing)
        print(f"{len(missing)} run(s) missing (add --run to make them):\n{lines}", file=sys.stderr)
        return 2

    from rankbench.truth import load_truth_csv, measured_truth_path

    path = args.same_scale_truth or measured_truth_path(args.preset)
    same_scale = load_truth_csv(path) if path and Path(path).exists() else None
    if same_scale is None:
        print(f"no same-scale truth at {path}: ranking against NB101's 108-epoch truth only", file=sys.stderr)
    rows = [r for s in args.seeds for p in args.pools for r in measure(args, p, s, same_scale)]
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    from rankbench._io import atomic_path, write_text

    with atomic_path(args.out / "interference.csv", ".csv") as tmp:
        df.to_csv(tmp, index=False)
    write_text(args.out / "interference.md", markdown(df, args) + "\n")
    figure(df, args.out / "interference")
    print(markdown(df, args))
    print(f"written: {args.out}/interference.csv, .md, .png, .pdf")
    return 0


def _mean_sd(x: pd.Series) -> str:
    x = x.dropna()
    return f"{x.mean():+.3f}" + (f" ± {x.std(ddof=1):.3f}" if len(x) > 1 else "")


def markdown(df: pd.DataFrame, args: argparse.Namespace) -> str:
    seeds = sorted(df["seed"].unique())
    keys = df["platform"].dropna().unique()
    out = [f"# Interference: NB101 cells per set of weights (nb101-quick, {args.variant}, seeds "
           f"{', '.join(map(str, seeds))})", "",
           f"Each row: mean ± sd over {len(seeds)} training seeds (the pool is redrawn with each seed). Training "
           f"accuracy: last epoch, on the pool's cells. Kendall tau on the {df['n'].max()} candidates (one per hash "
           f"class) against NB101's 108-epoch truth and against the same-scale measured truth; per-seed values and "
           f"their 95% class-bootstrap intervals are in interference.csv. Platform key(s): {', '.join(keys)}.", "",
           "| pool | train acc | tau calib vs NB101-108 | tau no calib vs NB101-108 | tau calib vs same-scale | "
           "tau no calib vs same-scale |", "|---|---:|---:|---:|---:|---:|"]
    for pool in dict.fromkeys(df["pool"]):
        d = df[df["pool"] == pool]

        def tau(truth: str, ranker: str) -> str:
            x = d[(d["truth"] == truth) & (d["ranker"] == ranker)]["kendall_tau"]
            return _mean_sd(x) if len(x) else "–"

        acc = d.drop_duplicates("seed")["train_acc"].astype(float)
        out.append(f"| {pool} | {acc.mean():.3f}" + (f" ± {acc.std(ddof=1):.3f}" if len(acc) > 1 else "") +
                   f" | {tau('nb101_108', 'supernet_calib')} | {tau('nb101_108', 'supernet_no_calib')} | "
                   f"{tau('same_scale', 'supernet_calib')} | {tau('same_scale', 'supernet_no_calib')} |")
    refs = df[~df["ranker"].str.startswith("supernet")].drop_duplicates(["truth", "ranker"])
    if len(refs):
        out += ["", "Reference rankers on the same candidates (they do not depend on the supernet):", "",
                "| ranker | tau vs NB101-108 | tau vs same-scale |", "|---|---:|---:|"]
        for r in dict.fromkeys(refs["ranker"]):
            v = {t: refs[(refs["ranker"] == r) & (refs["truth"] == t)]["kendall_tau"] for t in ("nb101_108", "same_scale")}
            out.append(f"| {r} | " + " | ".join(f"{x.iloc[0]:+.3f}" if len(x) else "–" for x in v.values()) + " |")
    return "\n".join(out)


def figure(df: pd.DataFrame, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truths = [t for t in ("nb101_108", "same_scale") if t in set(df["truth"])]
    fig, axes = plt.subplots(1, 1 + len(truths), figsize=(4.2 * (1 + len(truths)), 3.4))
    first = df[(df["truth"] == truths[0]) & (df["ranker"] == "supernet_calib")]
    ax = axes[0]
    ax.scatter(first["pool_size"], first["train_acc"].astype(float), color="k", s=14, label="per seed")
    m = first.groupby("pool_size")["train_acc"].mean()
    ax.plot(m.index, m.values, color="k")
    ax.set(xscale="log", xlabel="cells in the training pool", ylabel="training accuracy (last epoch)",
           title="how well the supernet fits")
    ax.legend(frameon=False, fontsize=8)
    labels = {"nb101_108": "NB101 108-epoch truth", "same_scale": "same-scale truth (measured)"}
    for ax, t in zip(axes[1:], truths):
        for ranker, color in (("supernet_calib", "C0"), ("supernet_no_calib", "C1")):
            d = df[(df["truth"] == t) & (df["ranker"] == ranker)]
            ax.scatter(d["pool_size"], d["kendall_tau"], color=color, s=14)
            mm = d.groupby("pool_size")["kendall_tau"].mean()
            ax.plot(mm.index, mm.values, color=color, label=ranker.replace("supernet_", "supernet, ").replace("_", " "))
        for ref, ls in (("params", "--"), ("nb101_12", ":")):
            r = df[(df["truth"] == t) & (df["ranker"] == ref)]["kendall_tau"]
            if len(r):
                ax.axhline(float(r.iloc[0]), color="grey", ls=ls, lw=1, label=ref)
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xscale="log", xlabel="cells in the training pool", ylabel="Kendall tau", title=labels[t])
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(f"{stem}.{ext}", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
