"""Shallow hashing baselines: no training loop, same evaluation.

Each module exposes `fit(features, bits, *, seed=0, ...) -> encoder` and
`from_arrays(d) -> encoder`; every encoder has `.encode(x) -> int8 ±1 codes`
(n, bits) with sign(0) = +1, and `.to_arrays() -> dict[str, np.ndarray]`
(with a "method" entry, so `from_arrays` below can rebuild any of them).

    lsh   b = sign(W^T (x - mu)), W ~ N(0, I)         (centre=True by default)
    pcah  b = sign(P^T (x - mu)), top-K PCA           (K <= d)
    itq   b = sign(R^T P^T (x - mu)), R by ITQ        (K <= d, n_iter=50)
    sh    b = sign(sin(pi/2 + omega (P^T(x - mu) - a))), spectral hashing
    sign      b = sign(x_S - mu_S), the `bits` most variable dimensions (K <= d)
    orth_lsh  b = sign(Q^T (x - mu)), Q random orthonormal   (K <= d)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hashjax.baselines import itq
from hashjax.baselines import linear
from hashjax.baselines import lsh
from hashjax.baselines import orth_lsh
from hashjax.baselines import pcah
from hashjax.baselines import sh
from hashjax.baselines import sign

BASELINES: dict[str, Callable] = {
  'lsh': lsh.fit,
  'pcah': pcah.fit,
  'itq': itq.fit,
  'sh': sh.fit,
  'sign': sign.fit,
  'orth_lsh': orth_lsh.fit,
}

_FROM_ARRAYS: dict[str, Callable] = {
  'lsh': linear.from_arrays,
  'pcah': linear.from_arrays,
  'linear': linear.from_arrays,
  'sign': linear.from_arrays,
  'orth_lsh': linear.from_arrays,
  'itq': itq.from_arrays,
  'sh': sh.from_arrays,
}


def get(name: str) -> Callable:
  """The `fit` function of baseline `name` (see BASELINES)."""
  try:
    return BASELINES[name]
  except (KeyError, TypeError):
    raise ValueError(f'unknown baseline {name!r}; valid names: {", ".join(sorted(BASELINES))}') from None


def from_arrays(d: dict[str, np.ndarray]):
  """Rebuild any encoder from its `to_arrays()` dict (e.g. a loaded npz)."""
  if 'method' not in d:
    raise ValueError("arrays have no 'method' entry; use the module's from_arrays")
  method = str(np.asarray(d['method']))
  if method not in _FROM_ARRAYS:
    raise ValueError(f'unknown method {method!r}; valid: {", ".join(sorted(_FROM_ARRAYS))}')
  return _FROM_ARRAYS[method](d)


__all__ = ['BASELINES', 'get', 'from_arrays', 'itq', 'linear', 'lsh', 'orth_lsh', 'pcah', 'sh', 'sign']
