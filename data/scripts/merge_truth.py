"""Merge measured-truth CSVs written by parallel `rankbench truth --shard K/N --out ...` runs.

    python data/scripts/merge_truth.py OUT.csv PART.csv [PART.csv ...]

Rows are concatenated and de-duplicated by (hash, seed); a (hash, seed) measured twice must
agree (the training is deterministic for a seed on one device), else this stops. Each part's
JSON sidecar must have the same config fingerprint as OUT's (recomputed from the recorded
resolved configs with the current code); OUT's sidecar gets the parts'
sessions appended. Values are never edited.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from rankbench._io import atomic_path, write_json


def _command(cmd: str) -> str:
    """A recorded command line without machine paths: absolute paths become their file name."""
    return " ".join(Path(tok).name if tok.startswith("/") else tok for tok in cmd.split(" "))


def _fingerprint(side: dict) -> str:
    """The measured config's fingerprint as the current code defines it, recomputed from the
    sidecar's resolved config (a part written before a field that cannot change a number was
    added to the config still merges), else the one recorded."""
    if "config" in side:
        from rankbench.config import RunConfig
        from rankbench.truth import _measure_fingerprint

        return _measure_fingerprint(RunConfig.from_dict(side["config"]))
    return side["config_fingerprint"]


def _relativize(side: dict) -> None:
    """Shipped provenance holds no absolute machine path (commands, data source)."""
    from rankbench._paths import display_path

    if "command" in side:
        side["command"] = _command(side["command"])
    for s in side.get("sessions", []):
        if "command" in s:
            s["command"] = _command(s["command"])
    data = side.get("data") or {}
    if isinstance(data.get("source"), str) and data["source"].startswith("/"):
        data["source"] = display_path(data["source"])


def main(argv: list[str]) -> int:
    out, parts = Path(argv[0]), [Path(p) for p in argv[1:]]
    side = json.loads(out.with_suffix(".json").read_text())
    frames = [pd.read_csv(out, dtype={"hash": str, "adjacency": str})]
    for p in parts:
        ps = json.loads(p.with_suffix(".json").read_text())
        if _fingerprint(ps) != _fingerprint(side):
            raise SystemExit(f"{p}: config fingerprint {_fingerprint(ps)} != {_fingerprint(side)}")
        side["sessions"] = side.get("sessions", []) + [dict(s, part=str(p.name)) for s in ps.get("sessions", [])]
        frames.append(pd.read_csv(p, dtype={"hash": str, "adjacency": str}))
    rows = pd.concat(frames, ignore_index=True)
    for (h, seed), g in rows.groupby(["hash", "seed"]):
        if g["validation_accuracy"].nunique() > 1:
            print(f"note: {h} seed {seed} measured {len(g)} times with different results: "
                  f"{g['validation_accuracy'].tolist()} (keeping the first)")
    merged = rows.drop_duplicates(subset=["hash", "seed"], keep="first")
    merged = merged.sort_values(["seed", "num_paths"], kind="stable")
    with atomic_path(out, ".csv") as tmp:
        merged.to_csv(tmp, index=False)
    side["seeds"] = sorted(int(s) for s in merged["seed"].unique())
    side["rows"] = int(len(merged))
    side["total_wall_s"] = round(float(merged["wall_s"].sum()), 1)
    side["merged_from"] = [p.name for p in parts]
    _relativize(side)
    try:  # how well this truth can agree with a noise-free one (split halves of the seeds)
        from rankbench.truth import load_truth_csv

        rel = load_truth_csv(out).describe().get("reliability")
        if rel:
            side["reliability"] = rel
    except (ImportError, AttributeError, ValueError) as e:
        print(f"note: reliability not computed ({e})")
    side["finished"] = bool(len(merged) == side["space"]["hash_classes"] * len(side["seeds"]))
    write_json(out.with_suffix(".json"), side)
    print(f"{out}: {len(merged)} rows ({len(rows) - len(merged)} duplicates dropped), finished={side['finished']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
