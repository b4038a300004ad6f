"""Spectral clustering (Ng-Jordan-Weiss / scikit-learn's `SpectralClustering`) in jnp.

scikit-learn's version runs on the host (ARPACK, Python k-means), so it cannot run inside a jitted
step; this one is pure jnp with static shapes and a fixed iteration count, deterministic given a
key. It follows sklearn's recipe:
  * affinity A = exp(-gamma ||x_i - x_j||^2) on L2-normalised rows (gamma = 1.0, sklearn's default),
    or any given symmetric non-negative affinity;
  * normalised Laplacian L = I - D^-1/2 A D^-1/2 with the diagonal of A ignored (scipy's
    `csgraph.laplacian`); its k smallest eigenvectors (dense `eigh` instead of ARPACK), rows
    divided by D^1/2 as sklearn does (`embedding / dd`), all k kept (`drop_first=False`);
  * k-means on the embedding: k-means++ seeding, a fixed number of Lloyd iterations, several
    restarts from split keys, the lowest inertia wins (sklearn: `n_init=10`).
Labels are arbitrary permutations of sklearn's; compare with the adjusted Rand index.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_TINY = 1e-12


def rbf_affinity(x: jax.Array, gamma: float = 1.0) -> jax.Array:
  """(n, n) exp(-gamma ||x_i - x_j||^2) of the L2-normalised rows of x (n, d)."""
  x = x.astype(jnp.float32)
  x = x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), _TINY)
  sq = jnp.sum(x * x, axis=1)
  dist2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
  return jnp.exp(-gamma * dist2)


def spectral_embedding(affinity: jax.Array, num_components: int) -> jax.Array:
  """(n, k) embedding: the k smallest eigenvectors of the normalised Laplacian, rows / sqrt(degree)."""
  n = affinity.shape[0]
  adjacency = affinity.astype(jnp.float32) * (1.0 - jnp.eye(n, dtype=jnp.float32))
  degree = jnp.sum(adjacency, axis=1)
  # Isolated nodes get degree 1, as scipy's laplacian does, instead of dividing by zero.
  sqrt_degree = jnp.where(degree > 0, jnp.sqrt(degree), 1.0)
  normalized = adjacency / sqrt_degree[:, None] / sqrt_degree[None, :]
  # Smallest eigenvalues of I - M are the largest of M; eigh sorts ascending.
  _, vectors = jnp.linalg.eigh(normalized)
  embedding = vectors[:, n - num_components:][:, ::-1]
  return embedding / sqrt_degree[:, None]


def _squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  return jnp.maximum(jnp.sum(x * x, 1)[:, None] + jnp.sum(centers * centers, 1)[None, :]
                     - 2.0 * (x @ centers.T), 0.0)


def _kmeans_plus_plus(x: jax.Array, num_clusters: int, key: jax.Array) -> jax.Array:
  """k-means++ seeding: each next center drawn with probability proportional to D(x)^2."""
  first_key, rest_key = jax.random.split(key)
  first = x[jax.random.randint(first_key, (), 0, x.shape[0])]
  centers = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(first)
  nearest = jnp.sum((x - first) ** 2, axis=1)

  def add_center(i, carry):
    centers, nearest = carry
    logits = jnp.where(nearest > 0, jnp.log(jnp.maximum(nearest, _TINY)), -jnp.inf)
    chosen = x[jax.random.categorical(jax.random.fold_in(rest_key, i), logits)]
    centers = centers.at[i].set(chosen)
    return centers, jnp.minimum(nearest, jnp.sum((x - chosen) ** 2, axis=1))

  centers, _ = jax.lax.fori_loop(1, num_clusters, add_center, (centers, nearest))
  return centers


def _lloyd(x: jax.Array, centers: jax.Array, num_iters: int):
  """Fixed-count Lloyd iterations; an empty cluster keeps its previous center."""
  num_clusters = centers.shape[0]

  def update(_, centers):
    assign = jnp.argmin(_squared_distances(x, centers), axis=1)
    onehot = jax.nn.one_hot(assign, num_clusters, dtype=x.dtype)
    counts = onehot.sum(0)
    sums = onehot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)

  centers = jax.lax.fori_loop(0, num_iters, update, centers)
  dist = _squared_distances(x, centers)
  return jnp.argmin(dist, axis=1), jnp.sum(jnp.min(dist, axis=1))


@functools.partial(jax.jit, static_argnames=('num_clusters', 'num_restarts', 'num_iters'))
def kmeans(x: jax.Array, num_clusters: int, key: jax.Array, *, num_restarts: int = 10,
           num_iters: int = 50) -> jax.Array:
  """(n,) int32 labels of the best (lowest inertia) of `num_restarts` k-means++ runs."""
  x = x.astype(jnp.float32)

  def one_run(k):
    return _lloyd(x, _kmeans_plus_plus(x, num_clusters, k), num_iters)

  labels, inertia = jax.vmap(one_run)(jax.random.split(key, num_restarts))
  return labels[jnp.argmin(inertia)].astype(jnp.int32)


def spectral_clustering_affinity(affinity: jax.Array, num_clusters: int, key: jax.Array, *,
                                 num_restarts: int = 10, num_iters: int = 50) -> jax.Array:
  """(n,) cluster labels from a symmetric non-negative (n, n) affinity."""
  embedding = spectral_embedding(affinity, num_clusters)
  return kmeans(embedding, num_clusters, key, num_restarts=num_restarts, num_iters=num_iters)


def spectral_clustering(x: jax.Array, num_clusters: int, key: jax.Array, *, gamma: float = 1.0,
                        num_restarts: int = 10, num_iters: int = 50) -> jax.Array:
  """(n,) cluster labels of the rows of x (n, d), with the RBF affinity of their unit vectors."""
  return spectral_clustering_affinity(rbf_affinity(x, gamma), num_clusters, key,
                                      num_restarts=num_restarts, num_iters=num_iters)
