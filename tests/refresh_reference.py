"""The NumPy (float64) reference of DSDH's W and B updates and of DCWH's center refresh: what
hashjax computed before the refreshes became jitted jnp (hashjax/methods/dsdh.py, dcwh.py), kept
to test the jnp versions against."""

import numpy as np


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


def refresh(config, outputs: np.ndarray, labels: np.ndarray, method_params: dict) -> dict:
  """The paper's W and B updates from the training outputs U (every `loss.refresh_epochs`)."""
  w_old = np.asarray(method_params['W'])
  y = label_matrix(labels, w_old.shape[1])
  b, w = discrete_step(
    np.asarray(method_params['B']), outputs, y, mu=config.mu, nu=config.nu, eta=config.eta, iters=config.dcc_iters
  )
  return {'B': b.astype(np.float32), 'W': w.astype(np.float32)}


def dcwh_class_means(outputs: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
  """Centers = class means of the training outputs (a class with no image keeps its center)."""
  centers = np.asarray(centers, np.float32)
  targets = labels.astype(np.float32) if labels.ndim == 2 else np.eye(len(centers), dtype=np.float32)[labels]
  counts = targets.sum(0)
  means = (targets.T @ outputs.astype(np.float32)) / np.maximum(counts, 1)[:, None]
  return np.where(counts[:, None] > 0, means, centers)
