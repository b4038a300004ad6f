"""Shallow hashing baselines: formulas vs direct NumPy transcriptions, errors, I/O."""

import io

import numpy as np
import pytest

from hashjax import baselines
from hashjax.baselines import itq
from hashjax.baselines import lsh
from hashjax.baselines import pcah
from hashjax.baselines import sh


def _data(n=300, d=20, seed=0):
  """Correlated, anisotropic, non-centred features (so centring/PCA matter)."""
  rng = np.random.default_rng(seed)
  a = rng.standard_normal((d, d)) * np.linspace(3.0, 0.1, d)[None, :]
  return (rng.standard_normal((n, d)) @ a.T + 2.0).astype(np.float32)


def _sgn(v):
  return np.where(v >= 0, 1, -1).astype(np.int8)


def _top_pca(x, k):
  """Reference PCA by SVD of the centred data (independent of the eigh path)."""
  mu = x.mean(0)
  _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
  return mu, vt[:k].T


def _same_up_to_bit_flips(a, b):
  """PCA directions are defined up to sign: each bit column may be negated."""
  flips = np.where((a == b).all(0), 1, np.where((a == -b).all(0), -1, 0))
  return bool((flips != 0).all())


X = _data().astype(np.float64)


@pytest.mark.parametrize('name', ['lsh', 'pcah', 'itq', 'sh'])
@pytest.mark.parametrize('bits', [4, 8])
def test_codes_are_pm1_int8_and_roundtrip(name, bits):
  enc = baselines.get(name)(X, bits, seed=3)
  codes = enc.encode(X)
  assert codes.dtype == np.int8 and codes.shape == (len(X), bits)
  assert set(np.unique(codes)) <= {-1, 1}
  buf = io.BytesIO()
  np.savez(buf, **enc.to_arrays())
  buf.seek(0)
  with np.load(buf) as z:  # no pickle needed
    restored = baselines.from_arrays(z)
  np.testing.assert_array_equal(restored.encode(X), codes)
  module = {'lsh': lsh, 'pcah': pcah, 'itq': itq, 'sh': sh}[name]
  np.testing.assert_array_equal(module.from_arrays(enc.to_arrays()).encode(X), codes)


def test_sign_zero_is_plus_one():
  enc = pcah.fit(X, 3)
  assert (enc.encode(enc.mean[None, :]) == 1).all()  # x = mu projects to exactly 0


def test_lsh_matches_transcription():
  bits, seed = 16, 7
  w = np.random.default_rng(seed).standard_normal((X.shape[1], bits))
  np.testing.assert_array_equal(lsh.fit(X, bits, seed=seed).encode(X), _sgn((X - X.mean(0)) @ w))
  np.testing.assert_array_equal(lsh.fit(X, bits, seed=seed, centre=False).encode(X), _sgn(X @ w))
  assert not np.array_equal(lsh.fit(X, bits, seed=1).encode(X), lsh.fit(X, bits, seed=2).encode(X))
  assert lsh.fit(X, 64).bits == 64  # LSH may exceed d = 20


def test_pcah_matches_transcription():
  mu, p = _top_pca(X, 6)
  assert _same_up_to_bit_flips(pcah.fit(X, 6).encode(X), _sgn((X - mu) @ p))


def test_itq_rotation_orthogonal_and_loss_monotone():
  enc = itq.fit(X, 8, seed=0, n_iter=50)
  r = enc.rotation
  np.testing.assert_allclose(r.T @ r, np.eye(8), atol=1e-5)
  loss = enc.quantisation_loss
  assert loss.shape == (51,)
  assert np.all(np.diff(loss) <= 1e-9 * loss[0]), loss
  assert loss[-1] < loss[0]
  # recorded loss equals ||B - VR||^2 for the returned R
  v = (X - enc.mean) @ enc.components
  assert np.isclose(np.sum((_sgn(v @ r) - v @ r) ** 2), loss[-1])
  np.testing.assert_array_equal(enc.encode(X), _sgn(v @ r))


def test_itq_matches_transcription():
  """Paper algorithm, written out: B = sign(VR); B^T V = Omega S Psi^T; R = Psi Omega^T."""
  bits, seed, n_iter = 6, 5, 10
  enc = itq.fit(X, bits, seed=seed, n_iter=n_iter)
  v = (X - enc.mean) @ enc.components
  r = np.linalg.svd(np.random.default_rng(seed).standard_normal((bits, bits)))[0]
  for _ in range(n_iter):
    b = _sgn(v @ r).astype(float)
    omega, _, psi_t = np.linalg.svd(b.T @ v)
    r = psi_t.T @ omega.T
  np.testing.assert_allclose(enc.rotation, r, atol=1e-10)
  # V spans the top PCA directions (up to per-direction sign)
  mu, p = _top_pca(X, bits)
  np.testing.assert_allclose(np.abs(enc.components.T @ p), np.eye(bits), atol=1e-6)


def _sh_reference(x, bits, align_to=None):
  """Direct transcription of MATLAB trainSH.m / compressSH.m (uncentred X*pc).

  `align_to`: PCA directions whose signs the reference adopts (PCA is defined up to
  sign; a flipped direction negates the odd-k bits on it).
  """
  npca = min(bits, x.shape[1])
  _, pc = _top_pca(x, npca)
  if align_to is not None:
    pc = pc * np.sign(np.sum(pc * align_to, axis=0))
  y = x @ pc
  mn, mx = y.min(0) - np.finfo(float).eps, y.max(0) + np.finfo(float).eps
  r = mx - mn
  max_mode = np.ceil((bits + 1) * r / r.max()).astype(int)
  n_modes = max_mode.sum() - len(max_mode) + 1
  modes = np.ones((n_modes, npca))
  m = 0  # MATLAB m = 1, 0-based here
  for i in range(npca):
    modes[m + 1 : m + max_mode[i], i] = np.arange(2, max_mode[i] + 1)
    m += max_mode[i] - 1
  modes -= 1
  omegas = modes * (np.pi / r)[None, :]
  eig_val = -(omegas**2).sum(1)
  ii = np.argsort(-eig_val, kind='stable')
  modes = modes[ii[1 : bits + 1]]
  omegas = modes * (np.pi / r)[None, :]
  y = y - mn
  u = np.stack([np.prod(np.sin(y * omegas[i] + np.pi / 2), axis=1) for i in range(bits)], 1)
  return u, modes


@pytest.mark.parametrize('bits', [5, 12, 32])  # 32 > d = 20: several modes per dim
def test_sh_matches_transcription(bits):
  enc = sh.fit(X, bits)
  u, modes = _sh_reference(X, bits, align_to=enc.components)
  np.testing.assert_array_equal(enc.modes, modes.astype(int))
  assert (np.count_nonzero(enc.modes, axis=1) == 1).all()
  np.testing.assert_allclose(enc.project(X), u, atol=1e-8)
  # codes equal except where the reference sits on a zero of the sine (rounding:
  # MATLAB does not centre before projecting)
  safe = np.abs(u) > 1e-6
  assert safe.mean() > 0.99
  np.testing.assert_array_equal(enc.encode(X)[safe], _sgn(u)[safe])


def test_sh_formula_on_fitted_box():
  """b = sign(sin(pi/2 + omega (y - a))) with omega = k pi / (b - a), straight from the fields."""
  enc = sh.fit(X, 10)
  y = (X - enc.mean) @ enc.components
  ref = np.empty((len(X), 10), np.int8)
  for l, row in enumerate(enc.modes):
    j = int(np.flatnonzero(row)[0])
    omega = row[j] * np.pi / (enc.mx[j] - enc.mn[j])
    ref[:, l] = _sgn(np.sin(np.pi / 2 + omega * (y[:, j] - enc.mn[j])))
  np.testing.assert_array_equal(enc.encode(X), ref)
  # modes sorted by omega^2, the K smallest
  w2 = (enc.omegas**2).sum(1)
  assert np.all(np.diff(w2) >= 0)


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as e:
    baselines.get('spectral')
  for name in ('itq', 'lsh', 'pcah', 'sh', 'sign', 'orth_lsh'):
    assert name in str(e.value)
  assert set(baselines.BASELINES) == {'lsh', 'pcah', 'itq', 'sh', 'sign', 'orth_lsh'}


@pytest.mark.parametrize('name', ['lsh', 'pcah', 'itq', 'sh', 'sign', 'orth_lsh'])
def test_bad_inputs(name):
  fit = baselines.get(name)
  with pytest.raises(ValueError, match='positive'):
    fit(X, 0)
  with pytest.raises(ValueError, match='positive'):
    fit(X, -3)
  with pytest.raises(ValueError, match='2-D'):
    fit(X[0], 4)
  bad = X.copy()
  bad[3, 2] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    fit(bad, 4)
  enc = fit(X, 4)
  with pytest.raises(ValueError, match='features'):
    enc.encode(X[:, :5])
  with pytest.raises(ValueError, match='2-D'):
    enc.encode(X[0])


@pytest.mark.parametrize('name', ['pcah', 'itq'])
def test_pca_methods_need_bits_le_dim(name):
  with pytest.raises(ValueError, match='bits <= feature dim'):
    baselines.get(name)(X, X.shape[1] + 1)
  assert baselines.get(name)(X, X.shape[1]).bits == X.shape[1]
