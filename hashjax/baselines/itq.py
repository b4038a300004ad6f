"""ITQ: iterative quantisation (Gong & Lazebnik, CVPR 2011 / TPAMI 2013).

    V = (X - mu) P                  P = top-K PCA directions (d x K)
    min_{B, R} ||B - V R||_F^2      B in {-1, +1}^{n x K}, R^T R = I
    alternate:  B = sign(V R)
                B^T V = Omega Sigma Psi^T  (SVD)   ->   R = Psi Omega^T
    encode(x) = sign((x - mu) P R)

R starts as a random orthogonal matrix (left singular vectors of a K x K
Gaussian, as in the authors' MATLAB). Default n_iter = 50, the paper's setting.

Reference-code quirks (FIRe `functions/loss/itq.py`): `max_iters=3` by default,
and `R = VT.t() @ U.t()` after `torch.svd`, which returns (U, S, V), not V^T:
that computes V^T U^T instead of Psi Omega^T = V U^T. With NumPy,
`np.linalg.svd` returns (U, s, Vh) with Vh = V^T, so R = Vh.T @ U.T here.

`quantisation_loss[t]` = ||sign(V R_t) - V R_t||_F^2 for t = 0..n_iter (R_0 the
initial rotation, R_n_iter the returned one); each B- and R-step is an exact
minimisation, so the sequence never increases.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_encode_input
from hashjax.baselines._common import check_features
from hashjax.baselines._common import pca
from hashjax.baselines._common import sign_codes


@dataclasses.dataclass(frozen=True, eq=False)
class ITQHash:
  """encode(x) = sign((x - mean) @ components @ rotation), int8 ±1, sign(0) = +1."""

  mean: np.ndarray  # (d,)
  components: np.ndarray  # (d, K) PCA directions P
  rotation: np.ndarray  # (K, K) orthogonal R
  quantisation_loss: np.ndarray  # (n_iter + 1,) ||B - VR||_F^2 on the training set

  @property
  def bits(self) -> int:
    return self.rotation.shape[0]

  def project(self, x: np.ndarray) -> np.ndarray:
    x = check_encode_input(x, self.components.shape[0])
    return ((x - self.mean) @ self.components) @ self.rotation

  def encode(self, x: np.ndarray) -> np.ndarray:
    return sign_codes(self.project(x))

  def to_arrays(self) -> dict[str, np.ndarray]:
    return {
      'method': np.array('itq'),
      'mean': self.mean,
      'components': self.components,
      'rotation': self.rotation,
      'quantisation_loss': self.quantisation_loss,
    }


def from_arrays(d: dict[str, np.ndarray]) -> ITQHash:
  return ITQHash(
    mean=np.asarray(d['mean'], np.float64),
    components=np.asarray(d['components'], np.float64),
    rotation=np.asarray(d['rotation'], np.float64),
    quantisation_loss=np.asarray(d.get('quantisation_loss', np.zeros(0)), np.float64),
  )


def _quant_loss(v: np.ndarray, r: np.ndarray) -> float:
  z = v @ r
  return float(np.sum((sign_codes(z) - z) ** 2))


def fit(features: np.ndarray, bits: int, *, seed: int = 0, n_iter: int = 50) -> ITQHash:
  x = check_features(features)
  bits = check_bits(bits, x.shape[1], 'ITQ')
  if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
    raise ValueError(f'n_iter must be an int >= 0, got {n_iter!r}')
  mean, comps, _ = pca(x, bits)
  v = np.empty((x.shape[0], bits))
  for i in range(0, x.shape[0], 8192):  # V = (X - mu) P without an n x d copy
    v[i : i + 8192] = (x[i : i + 8192] - mean) @ comps

  r = np.linalg.svd(np.random.default_rng(seed).standard_normal((bits, bits)))[0]
  losses = [_quant_loss(v, r)]
  for _ in range(n_iter):
    b = sign_codes(v @ r).astype(np.float64)
    omega, _, psi_t = np.linalg.svd(b.T @ v)  # B^T V = Omega Sigma Psi^T
    r = psi_t.T @ omega.T  # R = Psi Omega^T
    losses.append(_quant_loss(v, r))
  return ITQHash(mean=mean, components=comps, rotation=r, quantisation_loss=np.asarray(losses))
