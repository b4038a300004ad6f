#!/usr/bin/env bash
# DSH on Fashion-MNIST (Debian's dataset-fashion-mnist; query = 10k test, database = 60k train),
# one run per code length, then a table of mAP@all, mAP@1000 and wall time from final_metrics.json.
#   bash benchmarks/dsh_fashion_mnist.sh [BITS ...]   (default: 12 24 32 48)  extra flags: $DSH_FLAGS
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BITS=${*:-12 24 32 48}
for b in $BITS; do
  $PY -m hashjax.main --config "configs/dsh.py:bits=$b" --workdir "runs/bench_dsh_fmnist_${b}b" ${DSH_FLAGS:-}
done
$PY - "$BITS" <<'PYEOF'
import json, sys
print('| bits | mAP@all | mAP@1000 | P@H<=2 | steps | wall (s) |')
print('|---|---|---|---|---|---|')
for b in sys.argv[1].split():
  m = json.load(open(f'runs/bench_dsh_fmnist_{b}b/final_metrics.json'))
  print(f"| {b} | {m['mAP']:.4f} | {m['mAP@1000']:.4f} | {m['P@H<=2']:.4f} | {m['step']} | {m['wall_seconds']} |")
PYEOF
