#!/usr/bin/env bash
# Cloud TPU VM slice: create it if it does not exist (or reuse it), copy this checkout to every
# worker, install it there as README "Install" says for a TPU VM (the pinned requirements plus the
# `tpu` extra, jax[tpu] at the tested jax version), then run the same command on all workers; JAX
# finds the other hosts itself (HASHJAX_DISTRIBUTED=1).
#   launch/tpu_vm.sh TPU_NAME ZONE ACCELERATOR_TYPE --config configs/cimon.py --workdir /mnt/shared/runs/cimon \
#       --config.model.pretrained=weights/vgg16
# e.g. ACCELERATOR_TYPE=v5litepod-16; RUNTIME (default v2-alpha-tpuv5-lite) picks the VM image.
# The workdir is a filesystem path, not gs://: hashjax writes it with plain file I/O. On a slice of
# several hosts it must be a filesystem every worker mounts at the same path (NFS, Filestore), since
# every process writes its checkpoint shards there; a one-host slice can use a local path (e.g. runs/x,
# under ~/hashjax on the VM).
# The VM needs Python >= 3.12 (JAX >= 0.11), named by REMOTE_PYTHON (default python3.12); TPU images
# based on Ubuntu 22.04 ship 3.10, so install one there first (e.g. the deadsnakes PPA or uv).
# Not run from this repository's CI (it needs a Google Cloud project); each step is plain gcloud.
set -euo pipefail
TPU=${1:?TPU name}; ZONE=${2:?zone}; TYPE=${3:?accelerator type, e.g. v5litepod-16}; shift 3
RUNTIME=${RUNTIME:-v2-alpha-tpuv5-lite}
REMOTE_PYTHON=${REMOTE_PYTHON:-python3.12}
prev=
for arg in "$@"; do  # --workdir gs://... would become a local folder named gs: on each worker
  workdir=
  if [ "$prev" = --workdir ]; then workdir=$arg; fi
  case "$arg" in --workdir=*) workdir=${arg#--workdir=} ;; esac
  case "$workdir" in
    *://*) echo "tpu_vm.sh: --workdir $workdir is a URL; hashjax writes workdirs with plain file I/O: give a filesystem path" >&2; exit 2 ;;
  esac
  prev=$arg
done
cd "$(dirname "$0")/.."
if ! gcloud compute tpus tpu-vm describe "$TPU" --zone "$ZONE" >/dev/null 2>&1; then
  gcloud compute tpus tpu-vm create "$TPU" --zone "$ZONE" --accelerator-type "$TYPE" --version "$RUNTIME"
fi
tar czf /tmp/hashjax_src.tgz --exclude=.git --exclude=.venv --exclude=runs .
gcloud compute tpus tpu-vm scp /tmp/hashjax_src.tgz "$TPU":~/hashjax_src.tgz --zone "$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "set -e; command -v $REMOTE_PYTHON >/dev/null || { echo 'no $REMOTE_PYTHON on this VM: install Python >= 3.12 (JAX needs it)' >&2; exit 1; }; \
   mkdir -p ~/hashjax && tar xzf ~/hashjax_src.tgz -C ~/hashjax && cd ~/hashjax && \
   $REMOTE_PYTHON -m venv .venv && .venv/bin/pip install -q -r requirements.txt -e '.[tpu]'"
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "cd ~/hashjax && HASHJAX_DISTRIBUTED=1 .venv/bin/python -m hashjax.main $(printf '%q ' "$@")"
