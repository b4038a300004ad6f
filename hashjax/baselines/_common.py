"""Shared helpers for the shallow baselines: input checks, PCA, sign.

Everything is NumPy float64: the fits are one-off and small (d x d covariance),
and float64 keeps codes reproducible across machines.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 8192  # rows per block when accumulating the covariance (bounds memory)


def check_features(features: np.ndarray, name: str = 'features') -> np.ndarray:
  """Return `features` as a 2-D float64 array; raise ValueError if unusable."""
  x = np.asarray(features)
  if x.ndim != 2:
    raise ValueError(
      f'{name} must be 2-D (n_samples, n_features), got shape {x.shape}; '
      'reshape a single vector with x[None, :] and images with x.reshape(n, -1)'
    )
  if x.shape[0] == 0 or x.shape[1] == 0:
    raise ValueError(f'{name} is empty: shape {x.shape}')
  if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
    raise ValueError(f'{name} must be numeric, got dtype {x.dtype}')
  x = x.astype(np.float64, copy=False)
  if not np.isfinite(x).all():
    n_nan = int(np.isnan(x).sum())
    n_inf = int(np.isinf(x).sum())
    raise ValueError(f'{name} contains {n_nan} NaN and {n_inf} inf values')
  return x


def check_bits(bits: int, dim: int | None = None, method: str = '') -> int:
  """Validate the code length; `dim` given => the method needs bits <= dim (PCA)."""
  if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
    raise ValueError(f'bits must be an int, got {bits!r}')
  if bits <= 0:
    raise ValueError(f'bits must be positive, got {bits}')
  if dim is not None and bits > dim:
    raise ValueError(
      f'{method} takes the top-{bits} PCA directions, so it needs bits <= feature dim, got bits={bits} > dim={dim}'
    )
  return int(bits)


def check_encode_input(x: np.ndarray, dim: int) -> np.ndarray:
  x = check_features(x, 'x')
  if x.shape[1] != dim:
    raise ValueError(f'x has {x.shape[1]} features, the encoder was fit on {dim}')
  return x


def sign_codes(v: np.ndarray) -> np.ndarray:
  """±1 int8 codes, sign(0) = +1 (so a code is never 0)."""
  return np.where(v >= 0, 1, -1).astype(np.int8)


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Top-k principal directions of x (n, d).

  Returns (mean (d,), components (d, k), eigenvalues (k,)), eigenvalues in
  descending order, covariance normalised by n - 1. Eigenvector signs are fixed
  so each column's largest-|.| entry is positive (deterministic; a flipped
  direction only flips a bit, which no Hamming distance notices).
  """
  n, d = x.shape
  if n < 2:
    raise ValueError(f'PCA needs at least 2 samples, got {n}')
  mean = x.mean(axis=0)
  cov = np.zeros((d, d))
  for i in range(0, n, _CHUNK):  # centred blocks: no n x d centred copy
    xc = x[i : i + _CHUNK] - mean
    cov += xc.T @ xc
  cov /= n - 1
  evals, evecs = np.linalg.eigh(cov)  # ascending
  order = np.argsort(evals, kind='stable')[::-1][:k]
  evals, comps = evals[order], evecs[:, order]
  flip = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(k)])
  flip[flip == 0] = 1.0
  return mean, comps * flip, evals
