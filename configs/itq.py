"""ITQ (Gong & Lazebnik): PCA then the rotation minimising quantisation error, 50 iterations
(FIRe's default is 3; see hashjax/baselines/itq.py). No training loop.

  python -m hashjax.main --config configs/itq.py:quick
  python -m hashjax.main --config configs/itq.py:bits=32 --workdir runs/itq32   # Fashion-MNIST

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`).
"""

from hashjax.config import common


def get_config(arg=None):
  c = common.shallow_config('itq', arg)
  c.loss.n_iter = 50
  return c
