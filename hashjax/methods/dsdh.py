"""DSDH: Deep Supervised Discrete Hashing (Li, Sun, He, Tan, NIPS 2017).

The paper's objective over the N training images, u_i the network output, b_i in {-1, +1}^K,
Theta_ij = u_i^T u_j / 2, y_i the (one- or multi-hot) label vector, W (K, C):

  J = - sum_{s_ij} (s_ij Theta_ij - log(1 + e^{Theta_ij})) + mu sum_i ||y_i - W^T b_i||^2
      + nu ||W||_F^2 + eta sum_i ||b_i - u_i||^2

minimised alternately:
  * network (every step, `loss_fn`): the pairwise likelihood (DPSH's, over the in-batch pairs,
    `dpsh.pair_loss`; s_ij = share at least one label) + eta ||b_i - u_i||^2, with b_i = B[i] the
    current discrete code of the batch's training image i (the positions come from `batch_extras`
    as batch['train_index']; B is constant for the network);
  * W and B (`refresh`, every `loss.refresh_epochs` = 1 epoch, from the outputs U of the whole
    training set in eval mode), `loss.dcc_iters` rounds of
        W = (B^T B + (nu/mu) I)^{-1} B^T Y                               (ridge regression)
        for each bit k:  B[:, k] = sign(P[:, k] - B' W' w_k)              (discrete cyclic coordinate descent)
    with P = Y W^T + (eta/mu) U, B' / W' = B / W without bit k, w_k = W[k]; each bit update is the
    exact minimiser of mu ||Y - B W||^2 + eta ||B - U||^2 over that bit (a zero keeps the old bit),
    so no DCC step increases the B-subproblem objective (the rounds stop early once B is unchanged).
B (N_train, K) and W (K, C) are params['method'], frozen in the optimizer (`method/=0`). B starts
as a seeded random sign (TreezzZ/DSDH_PyTorch), W as the ridge solution for it.

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


def label_matrix(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """(N,) class ids or (N, C) multi-hot -> (N, C) float64 Y."""
  labels = np.asarray(labels)
  if labels.ndim == 2:
    return labels.astype(np.float64)
  return np.eye(num_classes)[labels]


def update_w(b: np.ndarray, y: np.ndarray, nu_over_mu: float) -> np.ndarray:
  """W = (B^T B + (nu/mu) I)^{-1} B^T Y, (K, C): the exact W-subproblem minimiser."""
  b = b.astype(np.float64)
  return np.linalg.solve(b.T @ b + nu_over_mu * np.eye(b.shape[1]), b.T @ y)


def update_b(b: np.ndarray, u: np.ndarray, y: np.ndarray, w: np.ndarray, eta_over_mu: float) -> np.ndarray:
  """One DCC sweep over the bits: returns the new B (N, K) in {-1, +1} (float64)."""
  b = b.astype(np.float64).copy()
  p = y @ w.T + eta_over_mu * u.astype(np.float64)  # (N, K)
  q = w @ w.T  # (K, K): B' W' w_k = B q[:, k] - B[:, k] q[k, k]
  for k in range(b.shape[1]):
    z = p[:, k] - (b @ q[:, k] - b[:, k] * q[k, k])
    b[:, k] = np.where(z > 0, 1.0, np.where(z < 0, -1.0, b[:, k]))
  return b


def b_objective(b, u, y, w, mu: float, eta: float) -> float:
  """The B-subproblem objective mu ||Y - B W||^2 + eta ||B - U||^2."""
  b, u = np.asarray(b, np.float64), np.asarray(u, np.float64)
  return float(mu * np.sum((y - b @ w) ** 2) + eta * np.sum((b - u) ** 2))


def discrete_step(b, u, y, *, mu: float, nu: float, eta: float, iters: int):
  """`iters` rounds of (W-step, one DCC sweep of B); returns (B, W) with W the ridge solution
  for the final B (the next refresh starts from it)."""
  for _ in range(iters):
    w = update_w(b, y, nu / mu)
    new = update_b(b, u, y, w, eta / mu)
    changed = np.any(new != b)
    b = new
    if not changed:  # a fixed point of both steps
      break
  return b, update_w(b, y, nu / mu)


def init_params(config, bits: int, protocol, key: jax.Array) -> dict:
  """B = a seeded random sign (N_train, K); W = the ridge solution for it."""
  n = len(protocol.train)
  b = np.asarray(sgn(jax.random.normal(key, (n, bits))), np.float64)
  y = label_matrix(protocol.labels[protocol.train], protocol.num_classes)
  w = update_w(b, y, config.nu / config.mu)
  return {'B': b.astype(np.float32), 'W': w.astype(np.float32)}


def refresh(config, outputs: np.ndarray, labels: np.ndarray, method_params: dict) -> dict:
  """The paper's W and B updates from the training outputs U (every `loss.refresh_epochs`)."""
  w_old = np.asarray(method_params['W'])
  y = label_matrix(labels, w_old.shape[1])
  b, w = discrete_step(np.asarray(method_params['B']), outputs, y, mu=config.mu, nu=config.nu,
                       eta=config.eta, iters=config.dcc_iters)
  return {'B': b.astype(np.float32), 'W': w.astype(np.float32)}


def batch_extras(config, forward, preprocess, params, protocol, params_sharding, batch_sharding):
  """Each batch carries its images' positions in the training set (rows of B)."""
  check_config(config.loss)
  return lambda positions: {'train_index': np.asarray(positions, np.int32)}


def check_config(config) -> None:
  for key in ('mu', 'nu'):
    if config[key] <= 0:
      raise ValueError(f'loss.{key} must be > 0, got {config[key]}')
  if config.eta < 0:
    raise ValueError(f'loss.eta must be >= 0, got {config.eta}')
  if config.dcc_iters < 1:
    raise ValueError(f'loss.dcc_iters must be >= 1, got {config.dcc_iters}')


def dsdh_loss(u: jax.Array, labels: jax.Array, b: jax.Array, *, eta: float, num_train: int):
  """Network part of DSDH for outputs u (B, K), labels and the batch's discrete codes b; (loss, metrics)."""
  u = u.astype(jnp.float32)
  likelihood, metrics = dpsh.pair_loss(u, labels, quant_weight=0.0)
  quant_weight = eta / max(num_train - 1, 1)
  quant = quant_weight * jnp.sum((jax.lax.stop_gradient(b) - u) ** 2) / u.shape[0]
  metrics = {'pair_loss': metrics['pair_loss'], 'quant_loss': quant,
             'similar_fraction': metrics['similar_fraction'],
             'code_agreement': jnp.mean(sgn(u) == b)}  # sign(u) vs the discrete codes B
  return likelihood + quant, metrics


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DSDH network objective: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng)
  codes = params['method']['B']
  b = jax.lax.stop_gradient(codes)[batch['train_index']]
  return dsdh_loss(u, batch['label'], b, eta=config.eta, num_train=codes.shape[0])
