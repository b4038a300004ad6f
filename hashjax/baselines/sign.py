"""Sign of centred features: each bit is one input dimension compared with its training mean.

    b = sign(x_S - mu_S),   S = the `bits` dimensions of largest training variance (all of them when
                            bits = d; ties: the lower index first), mu = training mean.

The plainest training-free code of an embedding (e.g. a DINOv2 class token of d = 384 at 384 bits).
With fewer bits than dimensions it keeps the most variable ones, an axis-aligned stand-in for PCAH's
top principal directions; on PCA-projected features the two coincide. Needs bits <= d.
Deterministic (`seed` is accepted for the common interface and ignored).
"""

from __future__ import annotations

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_features
from hashjax.baselines.linear import LinearHash


def fit(features: np.ndarray, bits: int, *, seed: int = 0) -> LinearHash:
  del seed  # deterministic
  x = check_features(features)
  bits = check_bits(bits)
  if bits > x.shape[1]:
    raise ValueError(
      f'sign keeps one input dimension per bit, so it needs bits <= feature dim, got bits={bits} > dim={x.shape[1]}'
    )
  mean = x.mean(axis=0)
  variance = ((x - mean) ** 2).mean(axis=0)
  chosen = np.sort(np.argsort(-variance, kind='stable')[:bits])
  selection = np.zeros((x.shape[1], bits))
  selection[chosen, np.arange(bits)] = 1.0
  return LinearHash(mean=mean, projection=selection, method='sign')
