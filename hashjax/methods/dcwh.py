"""DCWH: Deep Class-Wise Hashing (Zhe, Chen, Yan, TNNLS 2020), as the public code computes it.

The network's linear output u (B, K) is pulled to its class center c_y by a normalised-Gaussian
(softmax) class-wise loss over all C centers:

  L_cw = -(1/B) sum_i sum_j y_ij log[ exp(-(sigma/2)||u_i - c_j||^2) / sum_k exp(-(sigma/2)||u_i - c_k||^2) ]

y one-hot (class ids) or multi-hot. sigma = `loss.inv_var` = 1: the public code's `--inv_var`
(default 0.5) never reaches `ClassWiseLoss`, so the effective sigma is 1 (methods.md 4.3).

Quantization, as the code weights it: L = L_cw + (10 L_cubic + 0.01 L_vertex) / B with
  L_cubic  = sum ReLU(-1.1 - u) / B + sum ReLU(u - 1.1) / B   (both sides / B: the code's operator
             precedence divides only the positive side; `loss.cubic_precedence_quirk=True` copies that),
  L_vertex = sum_i ||sign(u_i) - u_i||^2 / B.

Centers ((C, K), initialised N(0, 1) as the code): by default method state (`init_state`),
recomputed as the class means of u over the whole training set, in eval mode, every
`loss.refresh_epochs` = 2 epochs (`refresh`, jitted: segment sums over the sharded outputs; the
first recompute after 2 epochs); the optimizer never sees them. `loss.learnable_centers=True` is the
code's `-u` flag: the centers are then trained parameters (`init_params`), updated with the network.
Codes: sign(u).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CUBIC_MARGIN = 1.1


def one_hot_labels(labels: jax.Array, num_classes: int) -> jax.Array:
  """(B,) class ids or (B, C) multi-hot -> (B, C) float {0, 1}."""
  if labels.ndim == 2:
    return labels.astype(jnp.float32)
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  """||x_i - c_j||^2, (B, C), in float32."""
  x, centers = x.astype(jnp.float32), centers.astype(jnp.float32)
  return jnp.sum(x * x, -1)[:, None] - 2.0 * x @ centers.T + jnp.sum(centers * centers, -1)[None, :]


def classwise_loss(outputs: jax.Array, centers: jax.Array, targets: jax.Array, scale: float) -> jax.Array:
  """-(1/B) sum_ij y_ij log softmax_j(-scale ||u_i - c_j||^2): the Gaussian class-wise loss
  (scale = sigma/2 in DCWH's form, 1/(2 sigma^2) in IDCWH's)."""
  log_p = jax.nn.log_softmax(-scale * squared_distances(outputs, centers), axis=-1)
  return -jnp.sum(targets * log_p) / outputs.shape[0]


def quantization_terms(u: jax.Array, precedence_quirk: bool = False) -> tuple[jax.Array, jax.Array]:
  """(L_cubic, L_vertex) of the public code (see the module docstring)."""
  b = u.shape[0]
  below = jnp.sum(jax.nn.relu(-CUBIC_MARGIN - u))
  above = jnp.sum(jax.nn.relu(u - CUBIC_MARGIN))
  cubic = (below + above / b) if precedence_quirk else (below + above) / b
  vertex = jnp.sum((jnp.sign(u) - u) ** 2) / b
  return cubic, vertex


def random_centers(ctx, key: jax.Array) -> dict:
  return {'centers': jax.random.normal(key, (ctx.num_classes, ctx.bits), jnp.float32)}


def init_params(ctx, key: jax.Array) -> dict:
  """learnable_centers: the centers are trained parameters."""
  return random_centers(ctx, key) if ctx.loss.learnable_centers else {}


def init_state(ctx, key: jax.Array) -> dict:
  """Recomputed centers (the default) are method state."""
  return {} if ctx.loss.learnable_centers else random_centers(ctx, key)


def class_means(outputs: jax.Array, labels: jax.Array, mask: jax.Array, old: jax.Array) -> jax.Array:
  """(C, K) mean output of each class over the rows with mask 1 (class ids: segment sums; multi-hot:
  each image counts for every one of its labels); a class with no image keeps its `old` row."""
  weights = mask.astype(jnp.float32)
  outputs = outputs.astype(jnp.float32) * weights[:, None]
  num_classes = old.shape[0]
  if labels.ndim == 1:
    sums = jax.ops.segment_sum(outputs, labels, num_segments=num_classes)
    counts = jax.ops.segment_sum(weights, labels, num_segments=num_classes)
  else:
    targets = labels.astype(jnp.float32) * weights[:, None]
    sums, counts = targets.T @ outputs, jnp.sum(targets, 0)
  return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], old)


def refresh(ctx, outputs, labels, mask, state: dict) -> dict:
  """Centers = class means of the training outputs."""
  if not state:  # learnable centers: nothing to recompute
    return state
  return {'centers': class_means(outputs, labels, mask, state['centers'])}


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DCWH objective: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng).astype(jnp.float32)
  centers = params['method']['centers'] if config.learnable_centers else batch['method_state']['centers']
  targets = one_hot_labels(batch['label'], centers.shape[0])
  cw = classwise_loss(u, centers, targets, config.inv_var / 2.0)
  cubic, vertex = quantization_terms(u, config.cubic_precedence_quirk)
  quant = (config.cubic_weight * cubic + config.vertex_weight * vertex) / u.shape[0]
  nearest = jnp.argmin(squared_distances(u, centers), axis=-1)
  metrics = {
    'classwise_loss': cw,
    'cubic_loss': cubic,
    'vertex_loss': vertex,
    'center_accuracy': jnp.mean(jnp.take_along_axis(targets, nearest[:, None], 1)),
  }
  return cw + quant, metrics
