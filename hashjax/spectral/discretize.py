"""Yu-Shi discretisation of a spectral embedding (scikit-learn's `assign_labels='discretize'`, the
official CIMON code's choice), in jnp: jittable, deterministic given a key.

As `sklearn.cluster._spectral.discretize` (Yu & Shi, "Multiclass spectral clustering", 2003):
  * each eigenvector scaled to norm sqrt(n) and signed so its first entry is negative; rows
    normalised to unit length;
  * the initial rotation: a random row, then each next column the row least aligned with the
    columns so far (accumulated |v . r|);
  * alternate labels = argmax(V R) and R = Vh^T U^T from the SVD of onehot(labels)^T V, until the
    labels stop changing (sklearn: until the objective n - sum(singular values) stops changing,
    which happens one iteration after the labels do) or after 21 label assignments (`n_iter_max`
    = 20). sklearn restarts only when LAPACK's SVD fails, which a k x k SVD does not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_TINY = 1e-12
MAX_ITERS = 20  # sklearn's n_iter_max


def _normalize(vectors: jax.Array) -> jax.Array:
  n = vectors.shape[0]
  v = vectors.astype(jnp.float32)
  v = v / jnp.maximum(jnp.linalg.norm(v, axis=0, keepdims=True), _TINY) * jnp.sqrt(jnp.float32(n))
  v = v * jnp.where(v[0] != 0, -jnp.sign(v[0]), 1.0)
  return v / jnp.maximum(jnp.linalg.norm(v, axis=1, keepdims=True), _TINY)


def discretize_from_row(vectors: jax.Array, first_row: jax.Array, num_iters: int = MAX_ITERS) -> jax.Array:
  """(n,) int32 labels, the initial rotation's first column being row `first_row` (sklearn draws
  it with `random_state.randint(n)`)."""
  v = _normalize(vectors)
  n, k = v.shape

  def next_column(j, carry):
    rotation, alignment = carry
    alignment = alignment + jnp.abs(v @ rotation[:, j - 1])
    return rotation.at[:, j].set(v[jnp.argmin(alignment)]), alignment

  rotation = jnp.zeros((k, k), jnp.float32).at[:, 0].set(v[first_row])
  rotation, _ = jax.lax.fori_loop(1, k, next_column, (rotation, jnp.zeros(n, jnp.float32)))

  def step(carry):
    i, rotation, labels, _ = carry
    new = jnp.argmax(v @ rotation, axis=1).astype(jnp.int32)
    u, _, vh = jnp.linalg.svd(jax.nn.one_hot(new, k, dtype=jnp.float32).T @ v)
    return i + 1, vh.T @ u.T, new, jnp.any(new != labels)

  carry = (0, rotation, jnp.full(n, -1, jnp.int32), True)
  _, _, labels, _ = jax.lax.while_loop(lambda c: (c[0] <= num_iters) & c[3], step, carry)
  return labels


@functools.partial(jax.jit, static_argnames=('num_iters',))
def discretize(vectors: jax.Array, key: jax.Array, *, num_iters: int = MAX_ITERS) -> jax.Array:
  """(n,) int32 cluster labels of a spectral embedding (n, k), k clusters."""
  return discretize_from_row(vectors, jax.random.randint(key, (), 0, vectors.shape[0]), num_iters)
