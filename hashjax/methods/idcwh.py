"""IDCWH: Improved Deep Class-Wise Hashing (Zhang & Yan, ICPR 2020), from the paper's slides.

Code not public; the loss is the slides' (methods.md 4.4), with learnable class centers
M = params['method']['centers'] (C, l) trained jointly with the network (their own learning rate:
`method/=0.5` in `optimizer.lr_multipliers`, the paper's 5e-3 vs 1e-2):

  L = L_clw + gamma L_csl + beta L_quant

  L_clw   = -(1/B) sum_i sum_j y_ji log softmax_j(-||h_i - mu_j||^2 / (2 sigma^2))     (DCWH's loss)
  step a  u_j = sgn(sum of b = sgn(h) over the batch's class-j images), sgn(0) = +1, for each
          class j present in the batch (multi-hot: the images carrying label j)
  step b  theta_ij = 0.5 l cos(u_i, mu_j), s_ij = [i == j], over present classes i and all C centers:
          L_csl = mean_ij [log(1 + e^theta_ij) - s_ij theta_ij]
  L_quant = (1/B) sum_i ||b_i - h_i||^2

The slides write sums; we average over the batch (and over the (present class, center) pairs for
L_csl) so gamma and beta do not depend on the batch size or the number of classes. u is binary, so
L_csl trains the centers only (the slides' "min over M"). gamma, beta, sigma are not published:
configs/idcwh.py documents the values chosen on a validation split. Codes: sign(h).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hashjax.methods import dcwh


def init_params(ctx, key: jax.Array) -> dict:
  """Trained centers, N(0, 1) as DCWH's."""
  return dcwh.random_centers(ctx, key)


def sgn(x: jax.Array) -> jax.Array:
  """sign with sgn(0) = +1."""
  return jnp.where(x >= 0, 1.0, -1.0)


def batch_binary_centers(codes: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Step a: (C, l) u_j = sgn(sum of class j's binary codes) and the (C,) mask of present classes."""
  return sgn(targets.T @ sgn(codes)), jnp.sum(targets, 0) > 0


def center_similarity_loss(u: jax.Array, present: jax.Array, centers: jax.Array) -> jax.Array:
  """Step b: mean over present classes i and all centers j of softplus(theta_ij) - s_ij theta_ij."""
  bits = u.shape[1]
  cos = (u / jnp.linalg.norm(u, axis=1, keepdims=True)) @ (
    centers / (jnp.linalg.norm(centers, axis=1, keepdims=True) + 1e-12)
  ).T
  theta = 0.5 * bits * cos
  s = jnp.eye(centers.shape[0], dtype=theta.dtype)
  per_pair = jax.nn.softplus(theta) - s * theta
  return jnp.sum(per_pair * present[:, None]) / (jnp.maximum(jnp.sum(present), 1) * centers.shape[0])


def loss_fn(params, batch, rng, *, forward, config):
  """Pure IDCWH objective: (params, batch, rng) -> (loss, metrics)."""
  h = forward(params, batch['image'], train=True, rng=rng).astype(jnp.float32)
  centers = params['method']['centers']
  targets = dcwh.one_hot_labels(batch['label'], centers.shape[0])
  clw = dcwh.classwise_loss(h, centers, targets, 1.0 / (2.0 * config.sigma**2))
  u, present = batch_binary_centers(jax.lax.stop_gradient(h), targets)
  csl = center_similarity_loss(u, present, centers)
  quant = jnp.sum((jax.lax.stop_gradient(sgn(h)) - h) ** 2) / h.shape[0]
  nearest = jnp.argmin(dcwh.squared_distances(h, centers), axis=-1)
  metrics = {
    'classwise_loss': clw,
    'center_similarity_loss': csl,
    'quant_loss': quant,
    'center_accuracy': jnp.mean(jnp.take_along_axis(targets, nearest[:, None], 1)),
  }
  return clw + config.gamma * csl + config.beta * quant, metrics
