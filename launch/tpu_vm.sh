#!/usr/bin/env bash
# Cloud TPU VM slice: create it if it does not exist (or reuse it), copy this checkout to every
# worker, install the pinned requirements plus jax[tpu], then run the same command on all workers;
# JAX finds the other hosts itself (HASHJAX_DISTRIBUTED=1).
#   launch/tpu_vm.sh TPU_NAME ZONE ACCELERATOR_TYPE --config configs/cimon.py --workdir gs://bucket/runs/cimon \
#       --config.model.pretrained=weights/vgg16
# e.g. ACCELERATOR_TYPE=v5litepod-16; RUNTIME (default v2-alpha-tpuv5-lite) picks the VM image.
# Not run from this repository's CI (it needs a Google Cloud project); each step is plain gcloud.
set -euo pipefail
TPU=${1:?TPU name}; ZONE=${2:?zone}; TYPE=${3:?accelerator type, e.g. v5litepod-16}; shift 3
RUNTIME=${RUNTIME:-v2-alpha-tpuv5-lite}
cd "$(dirname "$0")/.."
if ! gcloud compute tpus tpu-vm describe "$TPU" --zone "$ZONE" >/dev/null 2>&1; then
  gcloud compute tpus tpu-vm create "$TPU" --zone "$ZONE" --accelerator-type "$TYPE" --version "$RUNTIME"
fi
tar czf /tmp/hashjax_src.tgz --exclude=.git --exclude=.venv --exclude=runs .
gcloud compute tpus tpu-vm scp /tmp/hashjax_src.tgz "$TPU":~/hashjax_src.tgz --zone "$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "mkdir -p ~/hashjax && tar xzf ~/hashjax_src.tgz -C ~/hashjax && cd ~/hashjax && \
   python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt 'jax[tpu]==$(grep '^jax==' requirements.txt | cut -d= -f3)'"
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "cd ~/hashjax && HASHJAX_DISTRIBUTED=1 .venv/bin/python -m hashjax.main $(printf '%q ' "$@")"
