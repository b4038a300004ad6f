#!/usr/bin/env bash
# The same command on every worker of a Cloud TPU VM slice; JAX finds the other hosts itself.
#   launch/tpu_pod.sh TPU_NAME ZONE --config configs/cimon.py --workdir gs://bucket/runs/cimon
set -euo pipefail
TPU=${1:?TPU name}; ZONE=${2:?zone}; shift 2
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "cd ~/hashjax && HASHJAX_DISTRIBUTED=1 python -m hashjax.main $(printf '%q ' "$@")"
