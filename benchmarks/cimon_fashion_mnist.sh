#!/usr/bin/env bash
# CIMON on Fashion-MNIST (no labels in training; query = 10k test, database = 60k train, mAP@all,
# stable ties): graph=batch and graph=global (configs/cimon.py:fashion_mnist) at each code length,
# beside LSH and ITQ on the pixels; then one report (runs/cimon_fmnist/report.md).
#   bash benchmarks/cimon_fashion_mnist.sh [BITS]      (default 16,32,64)
# EPOCHS (graph=batch: epochs of the 60k images; default the config's 20) and GLOBAL_EPOCHS
# (graph=global: epochs of its 5k images; default 150) shorten the runs. The two modes run side by
# side, one process each; rerunning skips finished cells and resumes killed ones.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BITS=${1:-16,32,64}
OUT=${OUT:-runs/cimon_fmnist}
mkdir -p "$OUT"
$PY -m hashjax.sweep --config configs/cimon.py:fashion_mnist --config configs/lsh.py --config configs/itq.py \
    --bits "$BITS" --workdir "$OUT" --set "num_epochs=${EPOCHS:-20}" > "$OUT/sweep_batch.log" 2>&1 &
batch=$!
trap 'kill $batch 2>/dev/null' INT TERM
$PY -m hashjax.sweep --config configs/cimon.py:fashion_mnist,graph=global --bits "$BITS" --workdir "$OUT" \
    --set "num_epochs=${GLOBAL_EPOCHS:-150}" > "$OUT/sweep_global.log" 2>&1
wait $batch
$PY -m hashjax.report "$OUT"
