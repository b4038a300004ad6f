"""PCAH: signs of the top-`bits` principal components (no training; bits <= feature dimension).

  python -m hashjax.main --config configs/pcah.py:quick
  python -m hashjax.main --config configs/pcah.py:bits=32 --workdir runs/pcah32   # Fashion-MNIST

Arguments: dataset, bits, quick.
"""

from hashjax import config_lib


def get_config(arg=None):
  return config_lib.shallow_config('pcah', arg)
