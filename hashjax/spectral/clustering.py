"""Spectral clustering (Ng-Jordan-Weiss / scikit-learn's `SpectralClustering`) in jnp.

scikit-learn's version runs on the host (ARPACK, Python k-means), so it cannot run inside a jitted
step; this one is pure jnp with static shapes and a fixed iteration count, deterministic given a
key. It follows sklearn's recipe:
  * affinity A = exp(-gamma ||x_i - x_j||^2) on L2-normalised rows (gamma = 1.0, sklearn's default),
    or any given symmetric non-negative affinity;
  * normalised Laplacian L = I - D^-1/2 A D^-1/2 with the diagonal of A ignored (scipy's
    `csgraph.laplacian`); its k smallest eigenvectors (instead of ARPACK: dense `eigh`, or block
    subspace iteration, `eigen_solver='subspace'`, much faster for k << n), rows divided by
    D^1/2 as sklearn does (`embedding / dd`), all k kept (`drop_first=False`);
  * k-means on the embedding: k-means++ seeding, Lloyd iterations up to a fixed cap (stopping at
    the fixed point), several restarts from split keys, the lowest inertia wins (sklearn: `n_init=10`);
    or Yu-Shi discretisation (`assign_labels='discretize'`, discretize.py).
Labels are arbitrary permutations of sklearn's; compare with the adjusted Rand index.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from hashjax.spectral import discretize as discretize_lib

_TINY = 1e-12
ASSIGN_LABELS = ('kmeans', 'discretize')


def rbf_affinity(x: jax.Array, gamma: float = 1.0) -> jax.Array:
  """(n, n) exp(-gamma ||x_i - x_j||^2) of the L2-normalised rows of x (n, d)."""
  x = x.astype(jnp.float32)
  x = x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), _TINY)
  sq = jnp.sum(x * x, axis=1)
  dist2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
  return jnp.exp(-gamma * dist2)


EIGEN_SOLVERS = ('eigh', 'subspace')
SUBSPACE_ITERS = 30  # products with the matrix
_PRODUCTS_PER_ORTHO = 3  # fewer sequential steps: on a busy CPU each one waits for its threads


def _orthonormalize(x: jax.Array) -> jax.Array:
  """Orthonormal columns spanning x (n, p), by classical Gram-Schmidt applied twice per column
  (as stable as Householder QR for this use), in plain XLA ops: LAPACK's QR inside the loop
  measured 5-10x slower on a loaded 2-core CPU (its threads wait on the other jobs)."""
  q = jnp.zeros_like(x)
  for j in range(x.shape[1]):
    v = x[:, j]
    for _ in range(2):  # "twice is enough" (Giraud et al. 2005)
      v = v - q @ (q.T @ v)
    q = q.at[:, j].set(v / jnp.maximum(jnp.linalg.norm(v), _TINY))
  return q


def _top_eigenvectors_subspace(matrix: jax.Array, shift: jax.Array, k: int, num_iters: int) -> jax.Array:
  """(n, k) eigenvectors of the k largest eigenvalues of symmetric `matrix`, by block subspace
  iteration on matrix + shift * I (shift >= -lambda_min keeps it positive semi-definite, so the
  iteration finds the largest eigenvalues, not the largest in magnitude) and a Rayleigh-Ritz step.

  2k vectors are multiplied `num_iters` times (re-orthonormalised every 3); the error of the top k
  shrinks per product by (lambda_2k+1 + shift) / (lambda_k + shift), well below 0.5 on clustered
  data (the gap spectral clustering relies on); where there is no gap the eigenvectors are
  ill-defined anyway. The start block is fixed, so the result is deterministic.
  """
  n = matrix.shape[0]
  p = min(n, 2 * k)
  shifted = matrix + shift * jnp.eye(n, dtype=matrix.dtype)

  def products(_, x):
    for _ in range(_PRODUCTS_PER_ORTHO):  # eigenvalues <= 2: no overflow in between
      x = shifted @ x
    return _orthonormalize(x)

  start = _orthonormalize(jax.random.normal(jax.random.key(0), (n, p), matrix.dtype))
  basis = jax.lax.fori_loop(0, max(1, num_iters // _PRODUCTS_PER_ORTHO), products, start)
  _, ritz = jnp.linalg.eigh(basis.T @ shifted @ basis)  # (p, p), ascending
  return basis @ ritz[:, ::-1][:, :k]


def spectral_embedding(
  affinity: jax.Array, num_components: int, *, eigen_solver: str = 'eigh', num_iters: int = SUBSPACE_ITERS
) -> jax.Array:
  """(n, k) embedding: the k smallest eigenvectors of the normalised Laplacian, rows / sqrt(degree).

  eigen_solver: 'eigh' (dense, exact, any symmetric affinity) or 'subspace' (block subspace
  iteration, `num_iters` products; for positive semi-definite affinities such as the RBF kernel,
  where D^-1/2 (A - diag A) D^-1/2 >= -max(A_ii / d_i), which it uses as the shift).
  """
  if eigen_solver not in EIGEN_SOLVERS:
    raise ValueError(f'unknown eigen_solver {eigen_solver!r}; valid: {", ".join(EIGEN_SOLVERS)}')
  n = affinity.shape[0]
  affinity = affinity.astype(jnp.float32)
  adjacency = affinity * (1.0 - jnp.eye(n, dtype=jnp.float32))
  degree = jnp.sum(adjacency, axis=1)
  # Isolated nodes get degree 1, as scipy's laplacian does, instead of dividing by zero.
  safe_degree = jnp.where(degree > 0, degree, 1.0)
  sqrt_degree = jnp.sqrt(safe_degree)
  normalized = adjacency / sqrt_degree[:, None] / sqrt_degree[None, :]
  # Smallest eigenvalues of I - M are the largest of M.
  if eigen_solver == 'eigh':
    _, vectors = jnp.linalg.eigh(normalized)  # ascending
    embedding = vectors[:, n - num_components :][:, ::-1]
  else:
    shift = jnp.clip(jnp.max(jnp.diagonal(affinity) / safe_degree), 0.0, 1.0)
    embedding = _top_eigenvectors_subspace(normalized, shift, num_components, num_iters)
  return embedding / sqrt_degree[:, None]


def _squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  return jnp.maximum(jnp.sum(x * x, 1)[:, None] + jnp.sum(centers * centers, 1)[None, :] - 2.0 * (x @ centers.T), 0.0)


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
  """At most `num_iters` Lloyd iterations, stopping once no assignment changes (a fixed point: more
  iterations would not move anything); an empty cluster keeps its previous center."""
  num_clusters = centers.shape[0]
  assign_to = lambda centers: jnp.argmin(_squared_distances(x, centers), axis=1)

  def update(carry):
    i, centers, assign, _ = carry
    onehot = jax.nn.one_hot(assign, num_clusters, dtype=x.dtype)
    counts = onehot.sum(0)
    sums = onehot.T @ x
    centers = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)
    new = assign_to(centers)
    return i + 1, centers, new, jnp.any(new != assign)

  carry = (0, centers, assign_to(centers), True)
  _, centers, _, _ = jax.lax.while_loop(lambda c: (c[0] < num_iters) & c[3], update, carry)
  dist = _squared_distances(x, centers)
  return jnp.argmin(dist, axis=1), jnp.sum(jnp.min(dist, axis=1))


@functools.partial(jax.jit, static_argnames=('num_clusters', 'num_restarts', 'num_iters'))
def kmeans(
  x: jax.Array, num_clusters: int, key: jax.Array, *, num_restarts: int = 10, num_iters: int = 50
) -> jax.Array:
  """(n,) int32 labels of the best (lowest inertia) of `num_restarts` k-means++ runs."""
  x = x.astype(jnp.float32)

  def one_run(k):
    return _lloyd(x, _kmeans_plus_plus(x, num_clusters, k), num_iters)

  labels, inertia = jax.vmap(one_run)(jax.random.split(key, num_restarts))
  return labels[jnp.argmin(inertia)].astype(jnp.int32)


def spectral_clustering_affinity(
  affinity: jax.Array,
  num_clusters: int,
  key: jax.Array,
  *,
  num_restarts: int = 10,
  num_iters: int = 50,
  eigen_solver: str = 'eigh',
  assign_labels: str = 'kmeans',
) -> jax.Array:
  """(n,) cluster labels from a symmetric non-negative (n, n) affinity.

  assign_labels: 'kmeans' (num_restarts runs of at most num_iters Lloyd iterations) or
  'discretize' (Yu-Shi, `discretize.py`; sklearn's choice in the official CIMON code).
  """
  if assign_labels not in ASSIGN_LABELS:
    raise ValueError(f'unknown assign_labels {assign_labels!r}; valid: {", ".join(ASSIGN_LABELS)}')
  embedding = spectral_embedding(affinity, num_clusters, eigen_solver=eigen_solver)
  if assign_labels == 'discretize':
    return discretize_lib.discretize(embedding, key)
  return kmeans(embedding, num_clusters, key, num_restarts=num_restarts, num_iters=num_iters)


def spectral_clustering(
  x: jax.Array,
  num_clusters: int,
  key: jax.Array,
  *,
  gamma: float = 1.0,
  num_restarts: int = 10,
  num_iters: int = 50,
  eigen_solver: str = 'eigh',
  assign_labels: str = 'kmeans',
) -> jax.Array:
  """(n,) cluster labels of the rows of x (n, d), with the RBF affinity of their unit vectors."""
  return spectral_clustering_affinity(
    rbf_affinity(x, gamma),
    num_clusters,
    key,
    num_restarts=num_restarts,
    num_iters=num_iters,
    eigen_solver=eigen_solver,
    assign_labels=assign_labels,
  )
