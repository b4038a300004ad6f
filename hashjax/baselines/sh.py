"""SH: Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008), as the authors'
MATLAB `trainSH.m`/`compressSH.m` and FIRe `functions/loss/sh.py`.

Fit:
    1. y = P^T (x - mu), P = top-m PCA directions, m = min(K, d).
    2. Uniform box per PCA dim: a_j = min_i y_ij - eps, b_j = max_i y_ij + eps.
    3. 1-D modes: dim j, integer k >= 1, omega = k pi / (b_j - a_j),
       eigenvalue ~ omega^2 (analytic Laplacian eigenfunctions of a uniform box).
       Enumerate k = 1 .. ceil((K+1) R_j / max R) - 1 per dim (R = b - a), sort all
       by omega^2 (stable: ties keep MATLAB's enumeration order, dim-major), drop
       the constant mode, keep the K smallest.
Encode, bit l with mode (j, k):
    b_l = sign(sin(pi/2 + omega_l (y_j - a_j)))     (= sign(cos(omega_l (y_j - a_j))))

Notes:
- `modes` is stored as MATLAB's (K, m) integer matrix: one nonzero k per row.
  MATLAB evaluates prod_j sin(pi/2 + modes_lj * pi/R_j * (y_j - a_j)); the
  zero entries contribute sin(pi/2) = 1, so it equals the single-mode formula.
- eps = float64 machine epsilon, as MATLAB's `eps` (FIRe uses 1e-7 in float32).
  MATLAB skips centring (`X*pc`) and lets a_j absorb the mean; we centre, which
  shifts y and a_j together (same codes up to rounding).
- K may exceed d (several frequencies per PCA dim). sign(0) = +1 here; MATLAB's
  `U > 0` maps 0 to bit 0 (a measure-zero difference).
- Deterministic: `seed` is accepted for the common interface and ignored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hashjax.baselines._common import check_bits
from hashjax.baselines._common import check_encode_input
from hashjax.baselines._common import check_features
from hashjax.baselines._common import pca
from hashjax.baselines._common import sign_codes

_EPS = np.finfo(np.float64).eps


@dataclasses.dataclass(frozen=True, eq=False)
class SpectralHash:
  """encode(x) = sign(sin(pi/2 + ((x - mean) @ components - mn) @ (modes * pi / R)^T))."""

  mean: np.ndarray  # (d,)
  components: np.ndarray  # (d, m) PCA directions
  mn: np.ndarray  # (m,) a_j, box lower edge in PCA coordinates
  mx: np.ndarray  # (m,) b_j, box upper edge
  modes: np.ndarray  # (K, m) int64, one nonzero k per row

  @property
  def bits(self) -> int:
    return self.modes.shape[0]

  @property
  def omegas(self) -> np.ndarray:
    """(K, m) angular frequencies modes_lj * pi / (b_j - a_j)."""
    return self.modes * (np.pi / (self.mx - self.mn))[None, :]

  def project(self, x: np.ndarray) -> np.ndarray:
    """Real eigenfunction values sin(pi/2 + omega (y - a)), (n, K)."""
    x = check_encode_input(x, self.components.shape[0])
    y = (x - self.mean) @ self.components - self.mn
    # one nonzero omega per row, so the product is exactly omega_l * (y_j - a_j)
    return np.sin(y @ self.omegas.T + np.pi / 2)

  def encode(self, x: np.ndarray) -> np.ndarray:
    return sign_codes(self.project(x))

  def to_arrays(self) -> dict[str, np.ndarray]:
    return {
      'method': np.array('sh'),
      'mean': self.mean,
      'components': self.components,
      'mn': self.mn,
      'mx': self.mx,
      'modes': self.modes,
    }


def from_arrays(d: dict[str, np.ndarray]) -> SpectralHash:
  return SpectralHash(
    mean=np.asarray(d['mean'], np.float64),
    components=np.asarray(d['components'], np.float64),
    mn=np.asarray(d['mn'], np.float64),
    mx=np.asarray(d['mx'], np.float64),
    modes=np.asarray(d['modes'], np.int64),
  )


def select_modes(r: np.ndarray, bits: int) -> np.ndarray:
  """MATLAB trainSH step 3: (bits, m) mode matrix for box widths r (m,)."""
  m = r.shape[0]
  max_mode = np.ceil((bits + 1) * r / r.max()).astype(np.int64)
  rows = [np.zeros(m, np.int64)]  # the constant mode (eigenvalue 0), dropped below
  for j in range(m):
    for k in range(1, max_mode[j]):
      row = np.zeros(m, np.int64)
      row[j] = k
      rows.append(row)
  modes = np.stack(rows)
  eig = ((modes * (np.pi / r)[None, :]) ** 2).sum(axis=1)
  order = np.argsort(eig, kind='stable')  # MATLAB sort is stable
  return modes[order[1 : bits + 1]]


def fit(features: np.ndarray, bits: int, *, seed: int = 0) -> SpectralHash:
  del seed  # deterministic
  x = check_features(features)
  bits = check_bits(bits)
  m = min(bits, x.shape[1])
  mean, comps, _ = pca(x, m)
  y_min = np.full(m, np.inf)
  y_max = np.full(m, -np.inf)
  for i in range(0, x.shape[0], 8192):  # PCA coordinates in blocks
    y = (x[i : i + 8192] - mean) @ comps
    y_min = np.minimum(y_min, y.min(axis=0))
    y_max = np.maximum(y_max, y.max(axis=0))
  mn, mx = y_min - _EPS, y_max + _EPS
  modes = select_modes(mx - mn, bits)
  return SpectralHash(mean=mean, components=comps, mn=mn, mx=mx, modes=modes)
