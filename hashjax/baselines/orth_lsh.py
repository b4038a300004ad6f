"""Random orthogonal projection: LSH with orthonormal hyperplanes.

    b = sign(Q^T (x - mu)),   Q in R^{d x K} with orthonormal columns (Q^T Q = I), mu = training mean.

Q is the Q factor of a d x K standard Gaussian matrix (np.linalg.qr, columns signed so that R has a
positive diagonal: Haar-distributed), drawn from np.random.default_rng(seed). Orthogonal hyperplanes
split the space into less correlated bits than LSH's independent Gaussian ones (`lsh.py`), which
matters most when K is close to d. Needs K <= d.
"""

from __future__ import annotations

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_features
from hashjax.baselines.linear import LinearHash


def fit(features: np.ndarray, bits: int, *, seed: int = 0) -> LinearHash:
  x = check_features(features)
  d = x.shape[1]
  bits = check_bits(bits)
  if bits > d:
    raise ValueError(f'orth_lsh draws bits orthonormal directions, so it needs bits <= feature dim, got {bits} > {d}')
  q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, bits)))
  q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
  return LinearHash(mean=x.mean(axis=0), projection=q, method='orth_lsh')
