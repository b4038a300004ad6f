#!/usr/bin/env bash
# The supervised family on Fashion-MNIST with the DSH network (query = 10k test, database = 60k train,
# mAP@all, stable ties): one sweep (resumable: finished cells are skipped) and one report.
#   bash benchmarks/supervised_fashion_mnist.sh [BITS]   (default 12,24,32,48)
#   METHODS="dcwh idcwh csq" bash benchmarks/supervised_fashion_mnist.sh 48    # a subset
# Extra sweep flags (e.g. --set num_epochs=4): $SWEEP_FLAGS. Output: runs/supervised_fmnist/report.md
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BITS=${1:-12,24,32,48}
METHODS=${METHODS:-dsh dpsh dtsh dsdh hashnet csq greedyhash dcwh idcwh}
configs=()
for m in $METHODS; do configs+=(--config "configs/$m.py"); done
$PY -m hashjax.sweep "${configs[@]}" --bits "$BITS" --workdir runs/supervised_fmnist ${SWEEP_FLAGS:-}
$PY -m hashjax.report runs/supervised_fmnist
