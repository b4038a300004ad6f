"""SH, spectral hashing (Weiss et al.): PCA box and the lowest-frequency sinusoidal modes (no training).

  python -m hashjax.main --config configs/sh.py:quick
  python -m hashjax.main --config configs/sh.py:bits=32 --workdir runs/sh32   # Fashion-MNIST

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`).
"""

from hashjax.config import common


def get_config(arg=None):
  return common.shallow_config('sh', arg)
