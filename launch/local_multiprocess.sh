#!/usr/bin/env bash
# N JAX processes on this machine, each with its own CPU device(s): rehearses a multi-host run
# (per-process input slices, global batches, Orbax saves from every process) without a cluster.
#   launch/local_multiprocess.sh N --config configs/dsh.py:quick --workdir runs/mp [--config.x=...]
# Every process runs the same command; process 0 writes logs and metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: launch/local_multiprocess.sh NUM_PROCESSES ARGS...}; shift
PY=${PYTHON:-.venv/bin/python}
PORT=${HASHJAX_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < N; i++)); do
  JAX_PLATFORMS=cpu HASHJAX_COORDINATOR="127.0.0.1:$PORT" HASHJAX_NUM_PROCESSES="$N" HASHJAX_PROCESS_ID="$i" \
    "$PY" -m hashjax.main "$@" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
