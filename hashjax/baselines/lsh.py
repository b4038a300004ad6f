"""LSH: random-hyperplane hashing (Charikar 2002 sign random projections).

    b = sign(W^T (x - mu)),   W in R^{d x K}, W_ij ~ N(0, 1) i.i.d.

mu is the training mean when `centre=True` (default) and 0 otherwise. FIRe's
`functions/loss/lsh.py` does not centre (b = sign(W x)). The issue's reference
Fashion-MNIST numbers (mAP@all 0.31/0.35/0.40 at 16/32/64 bits) were measured on
mean-centred pixels: on raw [0, 1] pixels every x lies in the positive orthant,
so hyperplanes through the origin split the data poorly.
"""

from __future__ import annotations

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_features
from hashjax.baselines.linear import LinearHash  # noqa: F401 (re-export)
from hashjax.baselines.linear import from_arrays  # noqa: F401 (re-export)


def fit(features: np.ndarray, bits: int, *, seed: int = 0, centre: bool = True) -> LinearHash:
  """Draw W ~ N(0, I) of shape (d, bits) from np.random.default_rng(seed).

  Only the mean (if `centre`) and the dimension are read from `features`.
  Unlike PCAH/ITQ, bits may exceed the feature dimension.
  """
  x = check_features(features)
  bits = check_bits(bits)
  d = x.shape[1]
  mean = x.mean(axis=0) if centre else np.zeros(d)
  w = np.random.default_rng(seed).standard_normal((d, bits))
  return LinearHash(mean=mean, projection=w, method='lsh')
