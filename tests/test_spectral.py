"""jnp spectral clustering agrees with scikit-learn's SpectralClustering on clustered data."""

import jax
import numpy as np
import pytest
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from hashjax import spectral


def blobs(n, k, d, seed):
  x, y = make_blobs(n_samples=n, centers=k, n_features=d, cluster_std=1.0, center_box=(-10, 10), random_state=seed)
  return x.astype(np.float32), y


@pytest.mark.parametrize('assign_labels', spectral.ASSIGN_LABELS)
@pytest.mark.parametrize('eigen_solver', spectral.EIGEN_SOLVERS)
@pytest.mark.parametrize('n,k,d', [(60, 3, 8), (128, 5, 16), (200, 8, 16)])
def test_matches_sklearn(n, k, d, eigen_solver, assign_labels):
  x, truth = blobs(n, k, d, seed=n)
  unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # ours normalises rows itself, as CIMON does
  ours = np.asarray(
    spectral.spectral_clustering(x, k, jax.random.key(0), eigen_solver=eigen_solver, assign_labels=assign_labels)
  )
  for sk_assign in ('kmeans', 'discretize'):
    expected = SpectralClustering(n_clusters=k, random_state=0, assign_labels=sk_assign).fit(unit).labels_
    assert adjusted_rand_score(expected, ours) >= 0.9, sk_assign
  assert adjusted_rand_score(truth, ours) >= 0.9


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_discretize_equals_sklearn_on_the_same_embedding(seed):
  """Same embedding, same first row: the same labels as sklearn's own `discretize` (float64 there,
  float32 here), on overlapping clusters where the rotation search takes several iterations."""
  from sklearn.cluster._spectral import discretize as sk_discretize  # pylint: disable=g-import-not-at-top

  x, _ = make_blobs(n_samples=300, centers=6, n_features=10, cluster_std=3.0, random_state=seed)
  embedding = np.asarray(spectral.spectral_embedding(spectral.rbf_affinity(x.astype(np.float32)), 6))
  expected = sk_discretize(embedding.astype(np.float64), random_state=seed)
  first_row = np.random.RandomState(seed).randint(len(x))
  ours = np.asarray(jax.jit(spectral.discretize_from_row)(embedding, first_row))
  assert adjusted_rand_score(expected, ours) == 1.0
  assert set(ours.tolist()) == set(range(6))
  with pytest.raises(ValueError, match='valid: kmeans, discretize'):
    spectral.spectral_clustering(x, 6, jax.random.key(0), assign_labels='argmax')


def test_precomputed_affinity_and_determinism():
  x, _ = blobs(90, 4, 8, seed=1)
  affinity = spectral.rbf_affinity(x, gamma=2.0)
  expected = SpectralClustering(n_clusters=4, random_state=0, affinity='precomputed').fit(np.asarray(affinity)).labels_
  cluster = jax.jit(lambda a, key: spectral.spectral_clustering_affinity(a, 4, key))
  first = np.asarray(cluster(affinity, jax.random.key(3)))
  np.testing.assert_array_equal(first, np.asarray(cluster(affinity, jax.random.key(3))))
  assert adjusted_rand_score(expected, first) >= 0.9
  assert first.shape == (90,) and set(first.tolist()) == {0, 1, 2, 3}


def test_subspace_solver_spans_the_eigh_embedding():
  x, _ = blobs(300, 6, 32, seed=5)
  affinity = spectral.rbf_affinity(x)
  exact = np.asarray(spectral.spectral_embedding(affinity, 6, eigen_solver='eigh'))
  fast = np.asarray(jax.jit(lambda a: spectral.spectral_embedding(a, 6, eigen_solver='subspace'))(affinity))
  # Same column space (each basis orthonormalised): all principal angles ~0.
  cosines = np.linalg.svd(np.linalg.qr(exact)[0].T @ np.linalg.qr(fast)[0], compute_uv=False)
  assert cosines.min() > 0.999
  with pytest.raises(ValueError, match='unknown eigen_solver'):
    spectral.spectral_embedding(affinity, 6, eigen_solver='arpack')
