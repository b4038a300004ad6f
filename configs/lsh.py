"""LSH: sign random projections of mean-centred pixels (no training).

  python -m hashjax.main --config configs/lsh.py:quick
  python -m hashjax.main --config configs/lsh.py:bits=64 --workdir runs/lsh64   # Fashion-MNIST

Arguments: dataset, protocol, bits, quick, features (fit on the `features` dataset's vectors:
`--config.dataset.data_dir=DIR`). `--config.loss.centre=False` is FIRe's uncentred b = sign(Wx).
"""

from hashjax.config import common


def get_config(arg=None):
  c = common.shallow_config('lsh', arg)
  c.loss.centre = True
  return c
