"""jnp spectral clustering agrees with scikit-learn's SpectralClustering on clustered data."""

import jax
import numpy as np
import pytest
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from hashjax import spectral


def blobs(n, k, d, seed):
  x, y = make_blobs(n_samples=n, centers=k, n_features=d, cluster_std=1.0, center_box=(-10, 10),
                    random_state=seed)
  return x.astype(np.float32), y


@pytest.mark.parametrize('eigen_solver', spectral.EIGEN_SOLVERS)
@pytest.mark.parametrize('n,k,d', [(60, 3, 8), (128, 5, 16), (200, 8, 16)])
def test_matches_sklearn(n, k, d, eigen_solver):
  x, truth = blobs(n, k, d, seed=n)
  unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # ours normalises rows itself, as CIMON does
  ours = np.asarray(spectral.spectral_clustering(x, k, jax.random.key(0), eigen_solver=eigen_solver))
  for assign_labels in ('kmeans', 'discretize'):
    expected = SpectralClustering(n_clusters=k, random_state=0, assign_labels=assign_labels).fit(unit).labels_
    assert adjusted_rand_score(expected, ours) >= 0.9, assign_labels
  assert adjusted_rand_score(truth, ours) >= 0.9


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
