"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang, Yu, ICCV 2017), in-batch pairs.

Codes h = tanh(beta z) with the continuation beta = (1 + gamma * n)^power, gamma = 0.005,
power = 0.5, raised every 200 iterations (official `network.py`: the iteration counter n counts
this forward pass, and beta changes when n is a multiple of 200; `beta_at`).

Weighted maximum likelihood (the paper's weighted pairwise loss, official `loss.py`), over every unordered pair i < j
of the mini-batch, s_ij = 1 iff the images share a label (`dsh.similarity`), x_ij = alpha h_i^T h_j,
alpha = `sigmoid_param` = 10 / bits (official):

  l_ij = log(1 + e^{x_ij}) - s_ij x_ij,   or (1 - s_ij) x_ij when x_ij > 15 (official linear branch)

The linear branch is one-sided as in the official code; with |h| <= 1 and alpha = 10/K,
|x_ij| <= 10, so it only matters for larger alpha. Weights are the paper's class-balance
weights computed on the batch's pairs S = S_1 (similar) + S_0 (dissimilar): w_ij = |S|/|S_1| for
s_ij = 1 and |S|/|S_0| for s_ij = 0 (c_ij = 1: binary similarity, also for multi-label), and the
loss is their mean over S:

  L = (1/|S|) sum_{S} w_ij l_ij = mean_{S_1} l_ij + mean_{S_0} l_ij

(a class absent from the batch contributes 0). The official code instead weights positives by a
fixed `class_num` (100 ImageNet / 5 NUS / 1 COCO) and divides by the weighted count; DHP uses the
|S|/|S_1|, |S|/|S_0| weights against a memory bank, alpha = 0.1 and beta = (epoch // 20 + 1)^0.5.
There is no quantisation term: the continuation binarises h. Codes at test time are sign(z),
the sign of tanh(beta z).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hashjax.methods import dsh

LINEAR_THRESHOLD = 15.0


def beta_at(step: jax.Array, *, gamma: float, power: float, every: int) -> jax.Array:
  """beta at 0-based `step` (a traced int is fine): (1 + gamma n)^power, n = every * floor((step + 1) / every)."""
  iterations = jnp.asarray(step, jnp.int32) + 1  # the official counter is incremented before this forward pass
  held = (iterations // every) * every
  return (1.0 + gamma * held.astype(jnp.float32)) ** power


def pair_loss(h: jax.Array, labels: jax.Array, *, alpha: float):
  """HashNet loss of relaxed codes h (B, K) with labels; returns (loss, metrics)."""
  h = h.astype(jnp.float32)
  n = h.shape[0]
  x = alpha * (h @ h.T)
  similar = dsh.similarity(labels).astype(jnp.float32)
  # softplus of min(x, 15): the unused branch stays finite, so gradients never see inf * 0.
  smooth = jax.nn.softplus(jnp.minimum(x, LINEAR_THRESHOLD)) - similar * x
  per_pair = jnp.where(x > LINEAR_THRESHOLD, (1.0 - similar) * x, smooth)
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  positive = upper & (similar > 0)
  negative = upper & (similar == 0)
  num_pos, num_neg = jnp.sum(positive), jnp.sum(negative)
  pos = jnp.sum(jnp.where(positive, per_pair, 0.0)) / jnp.maximum(num_pos, 1)
  neg = jnp.sum(jnp.where(negative, per_pair, 0.0)) / jnp.maximum(num_neg, 1)
  metrics = {'positive_loss': pos, 'negative_loss': neg, 'similar_fraction': num_pos / (n * (n - 1) / 2)}
  return pos + neg, metrics


def validate(ctx) -> None:
  config = ctx.loss
  if config.sigmoid_param is not None and config.sigmoid_param <= 0:
    raise ValueError(f'loss.sigmoid_param must be > 0 or None (10 / bits), got {config.sigmoid_param}')
  if config.beta_every <= 0:
    raise ValueError(f'loss.beta_every must be a positive number of steps, got {config.beta_every}')
  if config.beta_gamma < 0 or config.beta_power < 0:
    raise ValueError(f'loss.beta_gamma and loss.beta_power must be >= 0, got {config.beta_gamma}, {config.beta_power}')


def loss_fn(params, batch, rng, *, forward, config):
  """Pure HashNet objective over the in-batch pairs: (params, batch, rng) -> (loss, metrics)."""
  z = forward(params, batch['image'], train=True, rng=rng)
  beta = beta_at(batch['step'], gamma=config.beta_gamma, power=config.beta_power, every=config.beta_every)
  h = jnp.tanh(beta * z.astype(jnp.float32))
  alpha = config.sigmoid_param if config.sigmoid_param is not None else 10.0 / z.shape[-1]
  loss, metrics = pair_loss(h, batch['label'], alpha=alpha)
  return loss, dict(metrics, beta=beta)


def to_codes(outputs: jax.Array) -> jax.Array:
  """sign(z) = sign(tanh(beta z)) for any beta > 0: the network output itself."""
  return outputs
