"""Sign of centred features: one bit per input dimension, the `bits` most variable ones (no training).

  python -m hashjax.main --config configs/sign.py:features,bits=64 --config.dataset.data_dir=DIR   # embeddings
  python -m hashjax.main --config configs/sign.py:quick

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`). Needs bits <= the feature width (784 on Fashion-MNIST's pixels).
hashjax/baselines/sign.py.
"""

from hashjax.config import common


def get_config(arg=None):
  return common.shallow_config('sign', arg)
