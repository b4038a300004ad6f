"""PCAH: PCA hashing.

    b = sign(P^T (x - mu)),   P = top-K eigenvectors of the training covariance,
                              mu = training mean.

Needs K <= d. Deterministic (`seed` is accepted for the common interface and
ignored). Eigenvector signs are fixed (largest-|.| entry positive): flipping a
direction flips a bit in every code, which leaves Hamming distances unchanged.
"""

from __future__ import annotations

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_features
from hashjax.baselines._common import pca
from hashjax.baselines.linear import LinearHash  # noqa: F401 (re-export)
from hashjax.baselines.linear import from_arrays  # noqa: F401 (re-export)


def fit(features: np.ndarray, bits: int, *, seed: int = 0) -> LinearHash:
  del seed  # deterministic
  x = check_features(features)
  bits = check_bits(bits, x.shape[1], 'PCAH')
  mean, comps, _ = pca(x, bits)
  return LinearHash(mean=mean, projection=comps, method='pcah')
