#!/usr/bin/env bash
# One ablation per NAS-Bench-1Shot1 space (nb1shot1-{1,2,3}-quick), one process per space on a
# GPU machine; run directories (without weights) and tables are packed into $OUT/nb1shot1.tgz.
#   usage: analysis/device/nb1shot1_ablations.sh SECONDS SEEDS [extra rankbench ablation args...]
set -u
LIMIT=${1:-450}; SEEDS=${2:-2}; shift 2 || true
A=${ABLATION_TMP:-${TMPDIR:-/tmp}/nb1shot1}
mkdir -p "$A/logs" "$OUT"
export PYTHONUNBUFFERED=1 RANKBENCH_RUNS=$A/runs RANKBENCH_HOME=$A/home
for s in 1 2 3; do
  timeout "$LIMIT" python3 -m rankbench ablation --preset "nb1shot1-$s-quick" --seeds "$SEEDS" --no-progress "$@" \
    > "$A/logs/nb1shot1-$s.txt" 2>&1 &
done
wait
for s in 1 2 3; do tail -n 12 "$A/logs/nb1shot1-$s.txt"; done
tar czf "$OUT/nb1shot1.tgz" --exclude='*.pt' -C "$A" runs logs
