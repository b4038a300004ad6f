"""DSDH: Deep Supervised Discrete Hashing (Li, Sun, He, Tan, NIPS 2017).

The paper's objective over the N training images, u_i the network output, b_i in {-1, +1}^K,
Theta_ij = u_i^T u_j / 2, y_i the (one- or multi-hot) label vector, W (K, C):

  J = - sum_{s_ij} (s_ij Theta_ij - log(1 + e^{Theta_ij})) + mu sum_i ||y_i - W^T b_i||^2
      + nu ||W||_F^2 + eta sum_i ||b_i - u_i||^2

minimised alternately:
  * network (every step, `loss_fn`): the pairwise likelihood (DPSH's, over the in-batch pairs,
    `dpsh.pair_loss`; s_ij = share at least one label) + eta ||b_i - u_i||^2, with b_i = B[i] the
    current discrete code of the batch's training image i (the positions come from `batch_extras`
    as batch['train_index']; B is method state, batch['method_state']['B']);
  * W and B (`refresh`, every `loss.refresh_epochs` = 1 epoch, from the outputs U of the whole
    training set in eval mode), `loss.dcc_iters` rounds of
        W = (B^T B + (nu/mu) I)^{-1} B^T Y                               (ridge regression)
        for each bit k:  B[:, k] = sign(P[:, k] - B' W' w_k)              (discrete cyclic coordinate descent)
    with P = Y W^T + (eta/mu) U, B' / W' = B / W without bit k, w_k = W[k]; each bit update is the
    exact minimiser of mu ||Y - B W||^2 + eta ||B - U||^2 over that bit (a zero keeps the old bit),
    so no DCC step increases the B-subproblem objective (the rounds stop early once B is unchanged).
B (N_train, K) and W (K, C) are method state (never differentiated, never seen by the optimizer);
the updates are jitted jnp (the DCC sweep a `lax.fori_loop` over the bits, the rows sharded), in
float32, tested against the float64 NumPy reference (tests/dsdh_reference.py). B starts as a seeded
random sign (TreezzZ/DSDH_PyTorch), W as the ridge solution for it.

Normalisation. The authors' MatConvNet code (liqi-casia/DSDH-HashingCode `train.m`, forked from
DPSH's) ascends dJ/dU = (S - A) U - 2 eta (U - B): the likelihood summed over all N x N ordered
pairs (each unordered pair twice). Divided by its N(N-1) ordered pairs, the network part of J is
mean_pairs + (eta / (N - 1)) mean_i ||b_i - u_i||^2, and the batch estimate is

  L = mean_{i<j in batch} [softplus(Theta_ij) - s_ij Theta_ij] + (eta / (N - 1)) mean_i ||b_i - u_i||^2

with N = len(B) (a batch of n images gives each only n - 1 partners, so eta must not be weighed against
them), and `loss.eta` keeps the paper's meaning: the same eta enters P in the B-step unscaled.
(hashjax/methods/dpsh.py reads DPSH's sum over unordered pairs, hence its 2 eta / (N - 1).)
mu, nu, eta and the DCC rounds: configs/dsdh.py (the authors' code: mu = 1, nu = 0.1, eta = 55).
The authors' code also differs from the paper's algorithm in where B and W are updated: per
mini-batch (W by ridge regression on the batch's sign(U), B of the batch by up to 10 DCC sweeps
from zeros); we follow the paper (all of B and W once per epoch from all outputs), as
TreezzZ/DSDH_PyTorch (which also inits B with a random sign).
Codes at test time are sign(u) (the paper encodes out-of-sample images by the network).

Known limitation (digits :quick, DSH network from scratch): training collapses to one code for
every image (mAP 0.10), as DPSH's :quick (hashjax/methods/dpsh.py: the dissimilar pairs shrink u
towards the likelihood's saddle u = 0). The discrete step cannot undo it: with eta/mu = 55 the B-step
gives B ~ sign(U), one common code, and W fitted to a common code maps every class to it; a larger
eta (1500, quant weight 1.0 per image) collapses too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hashjax.methods import dpsh


def sgn(x):
  """sign with sgn(0) = +1 (NumPy or jnp)."""
  return (x >= 0) * 2.0 - 1.0


def label_matrix(labels: jax.Array, num_classes: int) -> jax.Array:
  """(N,) class ids or (N, C) multi-hot -> (N, C) float32 Y."""
  if labels.ndim == 2:
    return labels.astype(jnp.float32)
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def update_w(b: jax.Array, y: jax.Array, nu_over_mu: float, mask: jax.Array | None = None) -> jax.Array:
  """W = (B^T B + (nu/mu) I)^{-1} B^T Y over the rows with mask 1, (K, C): the exact W-subproblem minimiser."""
  bm = b if mask is None else b * mask[:, None]
  return jnp.linalg.solve(bm.T @ b + nu_over_mu * jnp.eye(b.shape[1], dtype=b.dtype), bm.T @ y)


def update_b(b: jax.Array, u: jax.Array, y: jax.Array, w: jax.Array, eta_over_mu: float) -> jax.Array:
  """One DCC sweep over the bits (`lax.fori_loop`): the new B (N, K) in {-1, +1}. Rows are independent."""
  p = y @ w.T + eta_over_mu * u  # (N, K)
  q = w @ w.T  # (K, K): B' W' w_k = B q[:, k] - B[:, k] q[k, k]

  def bit(k, b):
    z = p[:, k] - (b @ q[:, k] - b[:, k] * q[k, k])
    return b.at[:, k].set(jnp.where(z > 0, 1.0, jnp.where(z < 0, -1.0, b[:, k])))

  return jax.lax.fori_loop(0, b.shape[1], bit, b)


def discrete_step(b, u, y, mask, *, mu: float, nu: float, eta: float, iters: int):
  """Up to `iters` rounds of (W-step, one DCC sweep of B), stopping once B (on the rows with mask 1)
  no longer changes; returns (B, W) with W the ridge solution for the final B (the next refresh
  starts from it)."""

  def more(carry):
    round_, _, changed = carry
    return (round_ < iters) & changed

  def one_round(carry):
    round_, b, _ = carry
    new = update_b(b, u, y, update_w(b, y, nu / mu, mask), eta / mu)
    return round_ + 1, new, jnp.any((new != b) & (mask[:, None] > 0))

  _, b, _ = jax.lax.while_loop(more, one_round, (jnp.int32(0), b, jnp.bool_(True)))
  return b, update_w(b, y, nu / mu, mask)


def validate(ctx) -> None:
  config = ctx.loss
  for key in ('mu', 'nu'):
    if config[key] <= 0:
      raise ValueError(f'loss.{key} must be > 0, got {config[key]}')
  if config.eta < 0:
    raise ValueError(f'loss.eta must be >= 0, got {config.eta}')
  if config.dcc_iters < 1:
    raise ValueError(f'loss.dcc_iters must be >= 1, got {config.dcc_iters}')


def init_state(ctx, key: jax.Array) -> dict:
  """B = a seeded random sign (N_train, K); W = the ridge solution for it."""
  b = sgn(jax.random.normal(key, (len(ctx.protocol.train), ctx.bits))).astype(jnp.float32)
  y = label_matrix(jnp.asarray(ctx.train_labels), ctx.num_classes)
  return {'B': b, 'W': update_w(b, y, ctx.loss.nu / ctx.loss.mu)}


def refresh(ctx, outputs, labels, mask, state: dict) -> dict:
  """The paper's W and B updates from the training outputs U (every `loss.refresh_epochs`); the
  padding rows (mask 0) past the N training images are dropped again."""
  n = state['B'].shape[0]
  b = jnp.pad(state['B'], ((0, outputs.shape[0] - n), (0, 0)), constant_values=1.0)
  y = label_matrix(labels, state['W'].shape[1]) * mask[:, None]
  b, w = discrete_step(
    b,
    outputs.astype(jnp.float32) * mask[:, None],
    y,
    mask.astype(jnp.float32),
    mu=ctx.loss.mu,
    nu=ctx.loss.nu,
    eta=ctx.loss.eta,
    iters=ctx.loss.dcc_iters,
  )
  return {'B': b[:n], 'W': w}


def batch_extras(ctx, params):
  """Each batch carries its images' positions in the training set (rows of B)."""
  del ctx, params
  return lambda positions: {'train_index': np.asarray(positions, np.int32)}


def dsdh_loss(u: jax.Array, labels: jax.Array, b: jax.Array, *, eta: float, num_train: int):
  """Network part of DSDH for outputs u (B, K), labels and the batch's discrete codes b; (loss, metrics)."""
  u = u.astype(jnp.float32)
  likelihood, metrics = dpsh.pair_loss(u, labels, quant_weight=0.0)
  quant_weight = eta / max(num_train - 1, 1)
  quant = quant_weight * jnp.sum((jax.lax.stop_gradient(b) - u) ** 2) / u.shape[0]
  metrics = {
    'pair_loss': metrics['pair_loss'],
    'quant_loss': quant,
    'similar_fraction': metrics['similar_fraction'],
    'code_agreement': jnp.mean(sgn(u) == b),
  }  # sign(u) vs the discrete codes B
  return likelihood + quant, metrics


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DSDH network objective: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng)
  codes = batch['method_state']['B']
  b = codes[batch['train_index']]
  return dsdh_loss(u, batch['label'], b, eta=config.eta, num_train=codes.shape[0])
