#!/usr/bin/env bash
# The nb101-quick same-scale truth on a GPU machine, one `rankbench truth --shard k/N` process per
# shard (each process: one CPU core, the GPU shared). The shard CSVs land where
# `rankbench truth --preset nb101-quick --launcher local --shards N` looks for them, so that
# command (here, or on any machine) merges them and runs whatever is missing; unfinished trainings
# resume from the checkpoints in work/. Everything is packed into $OUT/truth.tgz.
#   usage: analysis/device/nb101_truth.sh SHARDS SECONDS [extra rankbench truth args...]
set -u
N=${1:-14}; LIMIT=${2:-450}; shift 2 || true
T=${TRUTH_TMP:-${TMPDIR:-/tmp}/nb101truth}
mkdir -p "$T/logs" "$OUT"
export PYTHONUNBUFFERED=1 RANKBENCH_RUNS=$T/runs RANKBENCH_HOME=$T/home
{ date -u; nvidia-smi -L 2>/dev/null; nproc; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"; } > "$T/machine.txt" 2>&1
for k in $(seq 0 $((N - 1))); do
  timeout "$LIMIT" python3 -m rankbench truth --preset nb101-quick --no-progress --shard "$k/$N" \
    --out "$T/truth-nb101-quick-shards/shard-$k-of-$N.csv" --work-dir "$T/work/shard-$k-of-$N" "$@" \
    > "$T/logs/shard-$k.txt" 2>&1 &
done
wait
cat "$T/machine.txt"; tail -n 2 "$T"/logs/shard-0.txt
wc -l "$T"/truth-nb101-quick-shards/*.csv | tail -1
tar czf "$OUT/truth.tgz" -C "$T" truth-nb101-quick-shards work logs machine.txt
