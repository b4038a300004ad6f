#!/usr/bin/env bash
# The supervised family on Fashion-MNIST with the DSH network (query = 10k test, database = 60k train,
# mAP@all, stable ties): one sweep (resumable: finished cells are skipped) and one report.
#   bash benchmarks/supervised_fashion_mnist.sh [BITS]   (default 12,24,32,48)
#   METHODS="dcwh idcwh csq" bash benchmarks/supervised_fashion_mnist.sh 48    # a subset
#   JOBS=3 bash benchmarks/supervised_fashion_mnist.sh 12,24,32   # 3 processes (launch/sweep_local.sh)
# Extra sweep flags (e.g. --set num_epochs=6): $SWEEP_FLAGS; report flags (--no-figures): $REPORT_FLAGS.
# Output: $WORKDIR/report.md (default runs/supervised_fmnist).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BITS=${1:-12,24,32,48}
METHODS=${METHODS:-dsh dpsh dtsh dsdh hashnet csq greedyhash dcwh idcwh}
WORKDIR=${WORKDIR:-runs/supervised_fmnist}
args=()
for m in $METHODS; do args+=(--config "configs/$m.py"); done
args+=(--bits "$BITS" --workdir "$WORKDIR" ${SWEEP_FLAGS:-})
if [ "${JOBS:-1}" -gt 1 ]; then
  PYTHON=$PY launch/sweep_local.sh "$JOBS" "${args[@]}"
else
  $PY -m hashjax.sweep "${args[@]}"
fi
$PY -m hashjax.report "$WORKDIR" ${REPORT_FLAGS:-}
