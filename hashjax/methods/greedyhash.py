"""GreedyHash (Su, Zhang, Xia, Tian, NeurIPS 2018): sign in the forward pass, identity backward.

The network's output h (B, K) is binarised greedily, b = sign(h), and the gradient passes
straight through the sign (the paper's "hash layer": forward sign, backward identity). A linear
classifier on the binary codes (params['method'] = {'kernel': (K, C), 'bias': (C,)}, the official
code's `fc`, PyTorch's default Linear initialisation U(-1/sqrt(K), 1/sqrt(K))) is trained jointly:

  L = CE(b W + c, y) + alpha * mean_{i,k} | |h_ik| - 1 |^3

alpha = `loss.quant_weight` = 0.1 (the official `cifar1.py`; DHP's `GreedyHash.py` likewise), the
mean over the B x K entries. sign(0) = 0 in the forward pass, as torch.sign.
Multi-label (multi-hot y): softmax CE against the normalised label distribution y / sum(y) (an
image with no label adds nothing); DHP takes y.argmax (the first label), the paper is single-label.
Codes at test time are sign(h).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_params(ctx, key: jax.Array) -> dict:
  """The classifier on the codes, PyTorch nn.Linear(bits, C)'s default initialisation."""
  bound = 1.0 / ctx.bits**0.5
  k1, k2 = jax.random.split(key)
  return {
    'kernel': jax.random.uniform(k1, (ctx.bits, ctx.num_classes), jnp.float32, -bound, bound),
    'bias': jax.random.uniform(k2, (ctx.num_classes,), jnp.float32, -bound, bound),
  }


def straight_through_sign(h: jax.Array) -> jax.Array:
  """sign(h) forward, identity backward (d b / d h = I)."""
  return h + jax.lax.stop_gradient(jnp.sign(h) - h)


def class_targets(labels: jax.Array, num_classes: int) -> jax.Array:
  """(B, C) target distributions: one-hot for class ids, y / sum(y) for multi-hot (0 rows stay 0)."""
  if labels.ndim == 1:
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  y = labels.astype(jnp.float32)
  return y / jnp.maximum(jnp.sum(y, -1, keepdims=True), 1.0)


def greedy_loss(h: jax.Array, labels: jax.Array, classifier: dict, *, quant_weight: float):
  """GreedyHash loss of outputs h (B, K) with labels and the code classifier; returns (loss, metrics)."""
  h = h.astype(jnp.float32)
  b = straight_through_sign(h)
  logits = b @ classifier['kernel'] + classifier['bias']
  targets = class_targets(labels, logits.shape[-1])
  ce = -jnp.sum(targets * jax.nn.log_softmax(logits, -1)) / h.shape[0]
  quant = quant_weight * jnp.mean(jnp.abs(jnp.abs(h) - 1.0) ** 3)
  hits = jnp.take_along_axis(targets, jnp.argmax(logits, -1)[:, None], 1)[:, 0] > 0
  metrics = {'ce_loss': ce, 'quant_loss': quant, 'code_accuracy': jnp.mean(hits)}
  return ce + quant, metrics


def validate(ctx) -> None:
  if ctx.loss.quant_weight < 0:
    raise ValueError(f'loss.quant_weight must be >= 0, got {ctx.loss.quant_weight}')


def loss_fn(params, batch, rng, *, forward, config):
  """Pure GreedyHash objective: (params, batch, rng) -> (loss, metrics)."""
  h = forward(params, batch['image'], train=True, rng=rng)
  return greedy_loss(h, batch['label'], params['method'], quant_weight=config.quant_weight)
