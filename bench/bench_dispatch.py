"""How much one training seed's ranking moves with the CPU dispatch level, and what portable
mode costs: the README's main job (`rankbench run --variant lsbn --calibrate`, quick preset) for
several seeds, each once with ``train.portable = true`` (CPU kernels pinned to AVX2) and once
with the machine's own level (``train.portable = false``), side by side in one invocation.

    python bench/bench_dispatch.py --seeds 2020 2021 2022 --jobs 2 --runs-root runs
    python bench/bench_dispatch.py --compare a.json b.json     # two machines' summaries

Each run is a separate process (the dispatch level is fixed per process), ``--jobs`` at once, one
torch thread each (the preset's). A finished run under ``--runs-root`` is reused, as `rankbench
run` does. Writes ``--out`` (JSON): per run the platform, the weights digest and tau per subnet
without / with calibration against the bundled truth; prints per seed the tau at both levels,
their difference, the spread across seeds, and ``ratio portable_train_time`` (portable /
native training time of the same seed, both measured in this invocation).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODES = {"portable": "true", "native": "false"}


def _run(seed: int, mode: str, args) -> dict:
    cmd = [sys.executable, "-m", "rankbench", "run", "--variant", args.variant, "--calibrate", "--no-progress",
           "--runs-root", str(args.runs_root), "--set", f"train.seed={seed}", "--set", f"train.portable={MODES[mode]}",
           "--set", "train.device=cpu", *sum((["--set", s] for s in args.set), [])]
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")}
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        return {"seed": seed, "mode": mode, "error": r.stderr[-1500:], "wall_s": wall}
    run_dir = next(line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("run directory:"))
    reports = sorted(Path(run_dir, "reports").glob("clean-calib-*/metrics.json"), key=os.path.getmtime)
    m = json.loads(reports[-1].read_text())
    done = json.loads(Path(run_dir, "train_done.json").read_text())
    tau = {k: m["metrics"][k]["per_subnet"]["kendall_tau"] for k in ("no_calib", "calib") if k in m["metrics"]}
    return {"seed": seed, "mode": mode, "run": Path(run_dir).name, "report": m["report"],
            "weights_digest": m.get("weights_digest"), "platform": m.get("platform"),
            "tau": tau, "train_wall_s": done.get("wall_s"), "score_s": {k: v for k, v in m["timings"].items()
                                                                       if k.startswith("score")},
            "wall_s": round(wall, 1)}


def _report(rows: list[dict]) -> None:
    by = {(r["seed"], r["mode"]): r for r in rows if "error" not in r}
    for r in rows:
        if "error" in r:
            print(f"seed {r['seed']} {r['mode']}: FAILED\n{r['error']}")
    seeds = sorted({s for s, _ in by})
    print(f"{'seed':>6} {'mode':>9} {'ATen':>7} {'weights':>13} {'tau nocalib':>12} {'tau calib':>10} {'train s':>8}")
    for s in seeds:
        for mode in MODES:
            r = by.get((s, mode))
            if r:
                print(f"{s:>6} {mode:>9} {r['platform']['aten_capability']:>7} {r['weights_digest']:>13} "
                      f"{r['tau'].get('no_calib', float('nan')):>+12.3f} {r['tau'].get('calib', float('nan')):>+10.3f} "
                      f"{r['train_wall_s']:>8.1f}")
    for setting in ("no_calib", "calib"):
        diffs = [by[(s, "portable")]["tau"][setting] - by[(s, "native")]["tau"][setting]
                 for s in seeds if (s, "portable") in by and (s, "native") in by]
        for mode in MODES:
            vals = [by[(s, mode)]["tau"][setting] for s in seeds if (s, mode) in by]
            if len(vals) >= 2:
                print(f"{setting:>8} {mode:>9}: tau across seeds {statistics.mean(vals):+.3f} "
                      f"± {statistics.stdev(vals):.3f} (n={len(vals)})")
        if diffs:
            print(f"{setting:>8} portable - native, same seed: mean |diff| {statistics.mean(map(abs, diffs)):.3f}, "
                  f"max |diff| {max(map(abs, diffs)):.3f} (n={len(diffs)})")
    ratios = [by[(s, "portable")]["train_wall_s"] / by[(s, "native")]["train_wall_s"] for s in seeds
              if (s, "portable") in by and (s, "native") in by]
    if ratios:
        print(f"ratio portable_train_time {statistics.median(ratios):.2f}")


def _compare(a_path: str, b_path: str) -> None:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    index = {(r["seed"], r["mode"]): r for r in b["runs"] if "error" not in r}
    print(f"A: {a['runs'][0]['platform']['cpu_model']} ({a['runs'][0]['platform']['torch']})")
    print(f"B: {b['runs'][0]['platform']['cpu_model']} ({b['runs'][0]['platform']['torch']})")
    for r in a["runs"]:
        o = index.get((r["seed"], r["mode"]))
        if "error" in r or o is None:
            continue
        same = "identical" if r["weights_digest"] == o["weights_digest"] else "differ"
        print(f"seed {r['seed']} {r['mode']:>9}: weights {same}; tau calib A {r['tau']['calib']:+.3f} "
              f"B {o['tau']['calib']:+.3f}; no calib A {r['tau']['no_calib']:+.3f} B {o['tau']['no_calib']:+.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--variant", default="lsbn")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs-root", default="runs")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--out", default="dispatch.json")
    ap.add_argument("--compare", nargs=2, metavar="JSON")
    args = ap.parse_args()
    if args.compare:
        _compare(*args.compare)
        return
    jobs = [(s, m) for s in args.seeds for m in args.modes]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda j: _run(j[0], j[1], args), jobs))
    Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv[1:]), "runs": rows}, indent=1))
    _report(rows)


if __name__ == "__main__":
    main()
