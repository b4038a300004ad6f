"""PCAH: signs of the top-`bits` principal components (no training; bits <= feature dimension).

  python -m hashjax.main --config configs/pcah.py:quick
  python -m hashjax.main --config configs/pcah.py:bits=32 --workdir runs/pcah32   # Fashion-MNIST

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`).
"""

from hashjax.config import common


def get_config(arg=None):
  return common.shallow_config('pcah', arg)
