"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016), as the official Caffe layer.

For every unordered pair i < j in the mini-batch, with y_ij = 0 if the images share a label and 1
otherwise, and D_ij = ||u_i - u_j||^2 on the real-valued outputs u:

  L = sum_{i<j} [(1 - y_ij) D_ij + y_ij max(m - D_ij, 0)] / (N (N - 1))
      + alpha * sum_i || |u_i| - 1 ||_1 / N

(`hashing_loss_layer.cpp`: half the mean over unordered pairs), m = 2 * bits, alpha = 0.01.
Codes at test time are sign(u).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def similarity(labels: jax.Array) -> jax.Array:
  """(B, B) bool: share a class (class ids) or at least one label (multi-hot)."""
  if labels.ndim == 1:
    return labels[:, None] == labels[None, :]
  return (labels.astype(jnp.float32) @ labels.T.astype(jnp.float32)) > 0


def pair_loss(u: jax.Array, labels: jax.Array, *, margin: float, alpha: float):
  """DSH loss of outputs u (B, K) with labels; returns (loss, metrics)."""
  n = u.shape[0]
  sq = jnp.sum(u * u, axis=1)
  dist = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (u @ u.T), 0.0)
  similar = similarity(labels)
  per_pair = jnp.where(similar, dist, jnp.maximum(margin - dist, 0.0))
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  pairs = jnp.sum(jnp.where(upper, per_pair, 0.0)) / (n * (n - 1))
  quant = alpha * jnp.sum(jnp.abs(jnp.abs(u) - 1.0)) / n
  metrics = {'pair_loss': pairs, 'quant_loss': quant,
             'similar_fraction': jnp.sum(jnp.where(upper, similar, False)) / (n * (n - 1) / 2)}
  return pairs + quant, metrics


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DSH objective over the in-batch pairs: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng)
  margin = config.margin if config.margin is not None else 2.0 * u.shape[-1]
  return pair_loss(u, batch['label'], margin=margin, alpha=config.alpha)
