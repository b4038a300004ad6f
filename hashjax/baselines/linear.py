"""LinearHash: b = sign(W^T (x - mu)), the encoder shared by LSH and PCAH."""

from __future__ import annotations

import dataclasses

import numpy as np

from hashjax.baselines._common import check_encode_input
from hashjax.baselines._common import sign_codes


@dataclasses.dataclass(frozen=True, eq=False)
class LinearHash:
  """Linear sign hash.

  encode(x) = sign((x - mean) @ projection), int8 in {-1, +1}, sign(0) = +1.

  mean: (d,) float64 (zeros = no centring); projection: (d, bits) float64;
  method: the baseline that produced it ("lsh", "pcah"), kept for checkpoints.
  """

  mean: np.ndarray
  projection: np.ndarray
  method: str = 'linear'

  @property
  def bits(self) -> int:
    return self.projection.shape[1]

  def project(self, x: np.ndarray) -> np.ndarray:
    """Real-valued pre-sign outputs (n, bits), float64."""
    x = check_encode_input(x, self.projection.shape[0])
    return (x - self.mean) @ self.projection

  def encode(self, x: np.ndarray) -> np.ndarray:
    return sign_codes(self.project(x))

  def to_arrays(self) -> dict[str, np.ndarray]:
    return {
      'method': np.array(self.method),
      'mean': self.mean,
      'projection': self.projection,
    }


def from_arrays(d: dict[str, np.ndarray]) -> LinearHash:
  return LinearHash(
    mean=np.asarray(d['mean'], np.float64),
    projection=np.asarray(d['projection'], np.float64),
    method=str(d.get('method', 'linear')),
  )
