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

Centers (params['method']['centers'], (C, K), initialised N(0, 1) as the code): by default
recomputed as the class means of u over the whole training set, in eval mode, every
`loss.refresh_epochs` = 2 epochs (`refresh`; the first recompute after 2 epochs); the optimizer
freezes them (`method/=0` in `optimizer.lr_multipliers`) and the loss stops their gradient.
`loss.learnable_centers=True` is the code's `-u` flag: centers trained by SGD with the network.
Codes: sign(u).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

CUBIC_MARGIN = 1.1


def one_hot_labels(labels: jax.Array, num_classes: int) -> jax.Array:
  """(B,) class ids or (B, C) multi-hot -> (B, C) float {0, 1}."""
  if labels.ndim == 2:
    return labels.astype(jnp.float32)
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def squared_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
  """||x_i - c_j||^2, (B, C), in float32."""
  x, centers = x.astype(jnp.float32), centers.astype(jnp.float32)
  return (jnp.sum(x * x, -1)[:, None] - 2.0 * x @ centers.T + jnp.sum(centers * centers, -1)[None, :])


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


def init_params(config, bits: int, protocol, key: jax.Array) -> dict:
  return {'centers': jax.random.normal(key, (protocol.num_classes, bits), jnp.float32)}


def refresh(config, outputs: np.ndarray, labels: np.ndarray, method_params: dict) -> dict:
  """Centers = class means of the training outputs (a class with no image keeps its center)."""
  centers = np.asarray(method_params['centers'], np.float32)
  if config.learnable_centers:
    return method_params
  targets = labels.astype(np.float32) if labels.ndim == 2 else np.eye(len(centers), dtype=np.float32)[labels]
  counts = targets.sum(0)
  means = (targets.T @ outputs.astype(np.float32)) / np.maximum(counts, 1)[:, None]
  return {'centers': np.where(counts[:, None] > 0, means, centers)}


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DCWH objective: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng).astype(jnp.float32)
  centers = params['method']['centers']
  if not config.learnable_centers:
    centers = jax.lax.stop_gradient(centers)
  targets = one_hot_labels(batch['label'], centers.shape[0])
  cw = classwise_loss(u, centers, targets, config.inv_var / 2.0)
  cubic, vertex = quantization_terms(u, config.cubic_precedence_quirk)
  quant = (config.cubic_weight * cubic + config.vertex_weight * vertex) / u.shape[0]
  nearest = jnp.argmin(squared_distances(u, centers), axis=-1)
  metrics = {'classwise_loss': cw, 'cubic_loss': cubic, 'vertex_loss': vertex,
             'center_accuracy': jnp.mean(jnp.take_along_axis(targets, nearest[:, None], 1))}
  return cw + quant, metrics
