#!/usr/bin/env bash
# A sweep as N local jobs at once, each running every N-th cell (HASHJAX_ONE_GPU_PER_JOB=1: job i
# sees only GPU i).
#   launch/sweep_local.sh 4 --config configs/dsh.py --bits 12,24,32,48 --workdir runs/sweep
# Then: python -m hashjax.report runs/sweep. Logs: <workdir>/sweep_job<i>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: launch/sweep_local.sh NUM_JOBS SWEEP_ARGS...}; shift
PY=${PYTHON:-.venv/bin/python}
workdir=$(printf '%s\n' "$@" | grep -A1 -x -- '--workdir' | tail -n 1)
mkdir -p "${workdir:?--workdir DIR is required}"
pids=()
for ((i = 0; i < N; i++)); do
  (
    if [ -n "${HASHJAX_ONE_GPU_PER_JOB:-}" ]; then export CUDA_VISIBLE_DEVICES=$i; fi
    exec "$PY" -m hashjax.sweep "$@" --cells "$i/$N"
  ) > "$workdir/sweep_job$i.log" 2>&1 &
  pids+=($!)
done
# INT/TERM reach every job, which saves its cell's checkpoint and exits; re-run to resume.
trap 'kill -TERM "${pids[@]}" 2>/dev/null' INT TERM
wait_for() {  # a trapped signal cuts `wait` short (status > 128): wait again until the job has exited
  local s
  while true; do
    wait "$1" && s=0 || s=$?
    if ((s <= 128)) || ! kill -0 "$1" 2>/dev/null; then return "$s"; fi
  done
}
status=0
for p in "${pids[@]}"; do wait_for "$p" || status=$?; done
exit $status
