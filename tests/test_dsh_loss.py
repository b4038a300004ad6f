"""The DSH loss equals a brute-force per-pair NumPy loop of the paper's / Caffe layer's formula."""

import jax.numpy as jnp
import numpy as np
import pytest

from hashjax.methods import dsh


def brute_force_dsh(u, labels, margin, alpha):
  n = len(u)
  total = 0.0
  for i in range(n):
    for j in range(i + 1, n):
      similar = labels[i] == labels[j] if labels.ndim == 1 else np.dot(labels[i], labels[j]) > 0
      d = float(np.sum((u[i] - u[j]) ** 2))
      total += d if similar else max(margin - d, 0.0)
  pair = total / (n * (n - 1))
  quant = alpha * sum(float(np.sum(np.abs(np.abs(u[i]) - 1))) for i in range(n)) / n
  return pair + quant


@pytest.mark.parametrize('multilabel', [False, True])
def test_dsh_loss_matches_brute_force(multilabel):
  rng = np.random.default_rng(0)
  n, bits = 13, 12
  u = rng.normal(scale=1.5, size=(n, bits)).astype(np.float32)
  labels = (rng.random((n, 4)) < 0.4).astype(np.int32) if multilabel else rng.integers(0, 3, n)
  # A margin near typical distances so both branches of the hinge occur.
  margin = float(np.median(np.sum((u[:, None] - u[None]) ** 2, -1)))
  loss, metrics = dsh.pair_loss(jnp.asarray(u), jnp.asarray(labels), margin=margin, alpha=0.01)
  expected = brute_force_dsh(u.astype(np.float64), labels, margin, 0.01)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(loss), float(metrics['pair_loss'] + metrics['quant_loss']), rtol=1e-6)


def test_dsh_loss_is_zero_for_ideal_codes():
  # Two classes with opposite +-1 codes: similar pairs at distance 0, dissimilar at 4*bits >= m.
  bits = 8
  u = np.repeat(np.array([[1.0] * bits, [-1.0] * bits]), 3, axis=0)
  labels = np.array([0, 0, 0, 1, 1, 1])
  loss, _ = dsh.pair_loss(jnp.asarray(u), jnp.asarray(labels), margin=2.0 * bits, alpha=0.01)
  assert float(loss) == 0.0
