"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016), as the official Caffe layer.

For every unordered pair i < j in the mini-batch, with y_ij = 0 if the images share a label and 1
otherwise, and D_ij = ||u_i - u_j||^2 on the real-valued outputs u:

  L = sum_{i<j} [(1 - y_ij) D_ij + y_ij max(m - D_ij, 0)] / (N (N - 1))
      + alpha * sum_i || |u_i| - 1 ||_1 / N

(`hashing_loss_layer.cpp`: half the mean over unordered pairs), m = 2 * bits, alpha = 0.01.
Codes at test time are sign(u).

`loss.pairs='fixed'` (seed 004's study: a Keras-style siamese DSH trained on a fixed set of 200,000
random image pairs): instead of the in-batch pairs, a seeded fixed set of `loss.num_pairs` random
pairs (i, j) of training images, i != j, the same for the whole run (`fixed_pairs`). Image i owns
the pairs (i, partner[i, c]) with c < ceil(M / N) and c * N + i < M, so one epoch over the N
training images visits every one of the M pairs once. `batch_extras` adds each batch image's
partners (preprocessed on the host without augmentation: the first image of a pair is augmented
as usual, its partner is not; no augmentation on MNIST-style data), their labels and the mask of
active pairs, and the loss is the paper's relaxed pair loss averaged over the batch's pairs:

  L = mean_pairs [ 1/2 (1 - y) D + 1/2 y max(m - D, 0) + alpha (|| |u_1| - 1 ||_1 + || |u_2| - 1 ||_1) ]

(y = 0 similar / 1 dissimilar, D = ||u_1 - u_2||^2: per pair, each member's regulariser counts
once per pair it is in, as the paper's sum over pairs; the in-batch form above weighs it per image).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


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
  metrics = {
    'pair_loss': pairs,
    'quant_loss': quant,
    'similar_fraction': jnp.sum(jnp.where(upper, similar, False)) / (n * (n - 1) / 2),
  }
  return pairs + quant, metrics


PAIR_MODES = ('batch', 'fixed')


def fixed_pairs(num_train: int, num_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(partners (N, r), active (N, r) bool), r = ceil(M / N): pair (i, partners[i, c]) is in the set
  iff active[i, c] (c * N + i < M), so exactly M = num_pairs pairs; partners[i, c] != i, uniform."""
  if num_train < 2 or num_pairs < 1:
    raise ValueError(
      f'loss.num_pairs must be >= 1 with >= 2 training images, got {num_pairs} pairs, {num_train} images'
    )
  r = -(-num_pairs // num_train)
  rng = np.random.default_rng(seed)
  partners = (np.arange(num_train)[:, None] + 1 + rng.integers(0, num_train - 1, (num_train, r))) % num_train
  active = np.arange(r)[None, :] * num_train + np.arange(num_train)[:, None] < num_pairs
  return partners, active


def validate(ctx) -> None:
  if ctx.loss.pairs not in PAIR_MODES:
    raise ValueError(f'unknown loss.pairs {ctx.loss.pairs!r}; valid: {", ".join(PAIR_MODES)}')


def batch_extras(ctx, params):
  """pairs='fixed': each batch image's partners (preprocessed, no augmentation), labels and mask."""
  del params
  if ctx.loss.pairs == 'batch':
    return None
  protocol = ctx.protocol
  partners, active = fixed_pairs(len(protocol.train), ctx.loss.num_pairs, ctx.loss.pair_seed)
  prepare = jax.jit(functools.partial(ctx.preprocess, train=False))

  def extras(positions):
    pool = protocol.train[partners[positions]]  # (B, r) pool indices of the partners
    images = np.asarray(prepare(protocol.images[pool.ravel()]))
    return {
      'partner_image': images.reshape(pool.shape + images.shape[1:]),
      'partner_label': protocol.labels[pool],
      'partner_mask': active[positions],
    }

  return extras


def fixed_pair_loss(u1: jax.Array, u2: jax.Array, similar: jax.Array, mask: jax.Array, *, margin: float, alpha: float):
  """Paper's relaxed loss of pairs (u1[i], u2[i, c]) (u1 (B, K), u2 (B, r, K)), mean over mask; (loss, metrics)."""
  u1, u2 = u1.astype(jnp.float32), u2.astype(jnp.float32)
  mask = mask.astype(jnp.float32)
  dist = jnp.sum((u1[:, None, :] - u2) ** 2, axis=-1)
  pair = jnp.where(similar, 0.5 * dist, 0.5 * jnp.maximum(margin - dist, 0.0))
  reg = jnp.sum(jnp.abs(jnp.abs(u1) - 1.0), -1)[:, None] + jnp.sum(jnp.abs(jnp.abs(u2) - 1.0), -1)
  count = jnp.maximum(jnp.sum(mask), 1.0)
  pairs, quant = jnp.sum(mask * pair) / count, alpha * jnp.sum(mask * reg) / count
  metrics = {
    'pair_loss': pairs,
    'quant_loss': quant,
    'similar_fraction': jnp.sum(mask * similar) / count,
    'pairs_per_batch': jnp.sum(mask),
  }
  return pairs + quant, metrics


def partner_similarity(labels: jax.Array, partner_labels: jax.Array) -> jax.Array:
  """(B, r) bool: image i and its partner c share a class (ids) or at least one label (multi-hot)."""
  if labels.ndim == 1:
    return labels[:, None] == partner_labels
  return jnp.einsum('bl,bcl->bc', labels.astype(jnp.float32), partner_labels.astype(jnp.float32)) > 0


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DSH objective over the in-batch pairs (or the fixed pairs): (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng)
  margin = config.margin if config.margin is not None else 2.0 * u.shape[-1]
  if config.pairs != 'fixed':
    return pair_loss(u, batch['label'], margin=margin, alpha=config.alpha)
  partners = batch['partner_image']
  b, r = partners.shape[:2]
  u2 = forward(
    params,
    partners.reshape((b * r,) + partners.shape[2:]),
    train=True,
    rng=None if rng is None else jax.random.fold_in(rng, 1),
  ).reshape(b, r, -1)
  similar = partner_similarity(batch['label'], batch['partner_label'])
  return fixed_pair_loss(u, u2, similar, batch['partner_mask'], margin=margin, alpha=config.alpha)
