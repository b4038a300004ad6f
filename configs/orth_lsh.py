"""Random orthogonal projection: sign(Q^T (x - mean)), Q with orthonormal columns (no training).

  python -m hashjax.main --config configs/orth_lsh.py:features,bits=64 --config.dataset.data_dir=DIR
  python -m hashjax.main --config configs/orth_lsh.py:quick

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`). Needs bits <= the feature width. hashjax/baselines/orth_lsh.py.
"""

from hashjax.config import common


def get_config(arg=None):
  return common.shallow_config('orth_lsh', arg)
