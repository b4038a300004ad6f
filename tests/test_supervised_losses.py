"""CSQ, DPSH, DTSH and HashNet losses equal brute-force per-pair / per-triplet NumPy loops.

The losses compute in float32 (the network's precision), the loops in float64 from the same
float32 inputs: tolerances rtol 1e-5 (sums of a few hundred terms of size ~1).
"""

import itertools
import types

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from hashjax.methods import csq
from hashjax.methods import dpsh
from hashjax.methods import dtsh
from hashjax.methods import hashnet

RTOL = 1e-5


def random_batch(multilabel, n=11, bits=12, scale=1.5, seed=0):
  rng = np.random.default_rng(seed)
  u = rng.normal(scale=scale, size=(n, bits)).astype(np.float32)
  if multilabel:
    labels = (rng.random((n, 5)) < 0.35).astype(np.int32)
  else:
    labels = rng.integers(0, 3, n).astype(np.int32)
  return u, labels


def similar(labels, i, j):
  return labels[i] == labels[j] if labels.ndim == 1 else float(np.dot(labels[i], labels[j])) > 0


def softplus(x):
  return np.log1p(np.exp(-abs(x))) + max(x, 0.0)


# ------------------------------------------------------------------ DPSH
def brute_force_dpsh(u, labels, quant_weight):
  n = len(u)
  u = u.astype(np.float64)
  total, pairs = 0.0, 0
  for i, j in itertools.combinations(range(n), 2):
    theta = 0.5 * float(u[i] @ u[j])
    s = 1.0 if similar(labels, i, j) else 0.0
    total -= s * theta - np.log1p(np.exp(theta))
    pairs += 1
  quant = sum(float(np.sum((np.sign(u[i]) - u[i]) ** 2)) for i in range(n))
  return total / pairs + quant_weight * quant / n


@pytest.mark.parametrize('multilabel', [False, True])
def test_dpsh_matches_brute_force(multilabel):
  u, labels = random_batch(multilabel)
  loss, metrics = dpsh.pair_loss(jnp.asarray(u), jnp.asarray(labels), quant_weight=0.7)
  np.testing.assert_allclose(float(loss), brute_force_dpsh(u, labels, 0.7), rtol=RTOL)
  np.testing.assert_allclose(float(loss), float(metrics['pair_loss'] + metrics['quant_loss']), rtol=1e-6)


def test_dpsh_is_stable_for_large_inner_products():
  u, labels = random_batch(False, scale=30.0)  # Theta up to ~1e4: e^Theta overflows float32
  loss, _ = dpsh.pair_loss(jnp.asarray(u), jnp.asarray(labels), quant_weight=0.0)
  grads = jax.grad(lambda x: dpsh.pair_loss(x, jnp.asarray(labels), quant_weight=0.0)[0])(jnp.asarray(u))
  assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grads)))


# ------------------------------------------------------------------ DTSH
def brute_force_dtsh(u, labels, margin, quant_weight):
  n = len(u)
  u = u.astype(np.float64)
  total, count = 0.0, 0
  for q, p, m in itertools.product(range(n), repeat=3):
    if p == q or m == q or not similar(labels, q, p) or similar(labels, q, m):
      continue
    j = 0.5 * float(u[q] @ u[p]) - 0.5 * float(u[q] @ u[m]) - margin
    total -= j - np.log1p(np.exp(j))
    count += 1
  triplets = total / count if count else 0.0
  return triplets + quant_weight * float(np.mean((np.sign(u) - u) ** 2)), count


@pytest.mark.parametrize('multilabel', [False, True])
def test_dtsh_matches_brute_force(multilabel):
  u, labels = random_batch(multilabel, n=9)
  loss, metrics = dtsh.triplet_loss(jnp.asarray(u), jnp.asarray(labels), margin=5.0, quant_weight=0.5)
  expected, count = brute_force_dtsh(u, labels, 5.0, 0.5)
  assert count > 0 and int(metrics['num_triplets']) == count
  np.testing.assert_allclose(float(loss), expected, rtol=RTOL)


def test_dtsh_without_valid_triplets_is_quantisation_only():
  u, _ = random_batch(False, n=6)
  labels = np.zeros(6, np.int32)  # one class: no negatives
  loss, metrics = dtsh.triplet_loss(jnp.asarray(u), jnp.asarray(labels), margin=5.0, quant_weight=1.0)
  assert float(metrics['triplet_loss']) == 0.0 and float(metrics['num_triplets']) == 0.0
  np.testing.assert_allclose(float(loss), np.mean((np.sign(u) - u) ** 2), rtol=RTOL)


def test_dtsh_multilabel_image_without_labels_is_never_its_own_negative():
  labels = np.array([[0, 0], [1, 0], [1, 0], [0, 1]], np.int32)  # image 0 shares nothing, even with itself
  mask = np.asarray(dtsh.triplet_mask(jnp.asarray(labels)))
  assert not mask[0].any()  # no positive for image 0
  for q in range(4):
    assert not mask[q, q].any() and not mask[q, :, q].any()


def test_dtsh_ideal_codes_give_small_loss():
  bits = 16
  codes = np.array([[1.0] * bits, [-1.0] * bits])
  u = np.repeat(codes, 3, axis=0)
  labels = np.array([0, 0, 0, 1, 1, 1])
  loss, _ = dtsh.triplet_loss(jnp.asarray(u), jnp.asarray(labels), margin=5.0, quant_weight=1.0)
  # J = Theta+ - Theta- - alpha = 8 - (-8) - 5 = 11: loss softplus(-11) ~ 1.7e-5, no quantisation error.
  np.testing.assert_allclose(float(loss), np.log1p(np.exp(-11.0)), rtol=1e-4)


# ------------------------------------------------------------------ HashNet
def brute_force_hashnet(h, labels, alpha):
  n = len(h)
  h = h.astype(np.float64)
  pos, neg = [], []
  for i, j in itertools.combinations(range(n), 2):
    x = alpha * float(h[i] @ h[j])
    s = 1.0 if similar(labels, i, j) else 0.0
    loss = (1 - s) * x if x > 15 else np.log1p(np.exp(x)) - s * x
    (pos if s else neg).append(loss)
  total = len(pos) + len(neg)
  # (1/|S|) sum w_ij l_ij with w = |S|/|S1| (similar), |S|/|S0| (dissimilar).
  weighted = sum(total / len(pos) * v for v in pos) + sum(total / len(neg) * v for v in neg)
  return weighted / total


@pytest.mark.parametrize('multilabel', [False, True])
@pytest.mark.parametrize('alpha', [10.0 / 12, 3.0])  # 3.0: some x > 15 takes the linear branch
def test_hashnet_matches_brute_force(multilabel, alpha):
  u, labels = random_batch(multilabel)
  h = np.tanh(u)
  if alpha > 1:
    assert np.max(alpha * (h @ h.T)[np.triu_indices(len(h), 1)]) > 15
  loss, _ = hashnet.pair_loss(jnp.asarray(h), jnp.asarray(labels), alpha=alpha)
  np.testing.assert_allclose(float(loss), brute_force_hashnet(h, labels, alpha), rtol=RTOL)


def test_hashnet_gradient_finite_on_linear_branch():
  u, labels = random_batch(False)
  grads = jax.grad(lambda x: hashnet.pair_loss(jnp.tanh(x), jnp.asarray(labels), alpha=100.0)[0])(jnp.asarray(u))
  assert np.all(np.isfinite(np.asarray(grads)))


def test_hashnet_beta_schedule():
  beta = lambda step: float(hashnet.beta_at(jnp.int32(step), gamma=0.005, power=0.5, every=200))
  # The official counter counts this pass: beta rises when step + 1 reaches 200, 400, ...
  assert beta(0) == 1.0 and beta(198) == 1.0
  np.testing.assert_allclose(
    [beta(199), beta(398), beta(399), beta(1999)], [np.sqrt(2.0), np.sqrt(2.0), np.sqrt(3.0), np.sqrt(11.0)], rtol=1e-6
  )
  assert float(
    jax.jit(lambda s: hashnet.beta_at(s, gamma=0.005, power=0.5, every=200))(jnp.int32(599))
  ) == pytest.approx(2.0)


def test_hashnet_rejects_bad_config():
  config = mlc.ConfigDict(dict(sigmoid_param=None, beta_gamma=0.005, beta_power=0.5, beta_every=0))
  with pytest.raises(ValueError, match='beta_every'):
    hashnet.validate(types.SimpleNamespace(loss=config))


# ------------------------------------------------------------------ CSQ
def brute_force_csq(z, targets, quant_weight):
  z = z.astype(np.float64)
  n, bits = z.shape
  total, quant = 0.0, 0.0
  for i in range(n):
    for k in range(bits):
      u = np.tanh(z[i, k])
      p, t = (u + 1) / 2, (targets[i, k] + 1) / 2
      total -= t * np.log(p) + (1 - t) * np.log(1 - p)
      quant += (abs(u) - 1) ** 2
  return total / (n * bits) + quant_weight * quant / (n * bits)


@pytest.mark.parametrize('multilabel', [False, True])
def test_csq_matches_brute_force(multilabel):
  z, labels = random_batch(multilabel, bits=16, scale=1.0)
  num_classes = 5 if multilabel else 3
  centers = csq.hash_centers(16, num_classes)
  tie = csq.tie_breaker(16, 0)
  targets = np.asarray(csq.label_centers(jnp.asarray(labels), centers, tie))
  loss, _ = csq.center_loss(jnp.asarray(z), jnp.asarray(targets), quant_weight=1e-2)
  np.testing.assert_allclose(float(loss), brute_force_csq(z, targets, 1e-2), rtol=RTOL)


def test_csq_is_stable_for_saturated_outputs():
  z = jnp.array([[40.0, -40.0, 0.0]])  # tanh = +-1 exactly in float32: PyTorch's BCE would clamp log(0)
  loss, _ = csq.center_loss(z, jnp.array([[1.0, -1.0, 1.0]]), quant_weight=0.0)
  np.testing.assert_allclose(float(loss), np.log(2.0) / 3, rtol=1e-5)  # only the z = 0 bit costs


@pytest.mark.parametrize('bits', [8, 16, 64])
def test_csq_hadamard_centers(bits):
  centers = csq.hash_centers(bits, 2 * bits)
  assert set(np.unique(centers)) == {-1.0, 1.0}
  dist = (bits - centers @ centers.T) / 2
  upper = np.triu_indices(2 * bits, 1)
  assert set(np.unique(dist[upper])) == {bits / 2, bits}  # row i of H and of -H are complements
  first = csq.hash_centers(bits, bits)  # rows of H alone: exactly K/2 apart
  np.testing.assert_array_equal(csq.pairwise_hamming(first), bits / 2)


@pytest.mark.parametrize('bits,num_classes', [(48, 10), (12, 10), (24, 100), (16, 40)])
def test_csq_random_centers(bits, num_classes):
  centers = csq.hash_centers(bits, num_classes, seed=3)
  np.testing.assert_array_equal(centers, csq.hash_centers(bits, num_classes, seed=3))  # deterministic
  assert centers.shape == (num_classes, bits)
  np.testing.assert_array_equal(np.sum(centers > 0, axis=1), bits // 2)  # balanced
  dist = csq.pairwise_hamming(centers)
  if num_classes <= 2 * bits:  # achievable: the documented goals are met
    assert dist.mean() >= bits / 2 and dist.min() >= csq.min_center_distance(bits)
  assert len({tuple(c) for c in centers}) == num_classes  # distinct


def test_csq_multilabel_centers():
  bits = 8
  centers = csq.hash_centers(bits, 4)
  tie = csq.tie_breaker(bits, 0)
  labels = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], np.int32)
  targets = np.asarray(csq.label_centers(jnp.asarray(labels), centers, tie))
  np.testing.assert_array_equal(targets[0], centers[0])
  two = centers[0] + centers[1]  # Hadamard rows agree on half the bits: the other half are ties
  np.testing.assert_array_equal(targets[1], np.where(two == 0, tie, np.sign(two)))
  assert np.sum(two == 0) == bits // 2
  np.testing.assert_array_equal(targets[2], np.sign(centers[0] + centers[1] + centers[2]))  # odd: no ties
  np.testing.assert_array_equal(targets[3], tie)  # no label: the tie vector itself
  class_ids = np.asarray(csq.label_centers(jnp.array([2, 0]), centers, tie))
  np.testing.assert_array_equal(class_ids, centers[[2, 0]])


def test_csq_centers_are_method_state_from_the_dataset_class_count():
  config = mlc.ConfigDict(dict(quant_weight=1e-4, center_seed=0))
  ctx = types.SimpleNamespace(loss=config, bits=16, num_classes=4)
  state = csq.init_state(ctx, jax.random.key(0))
  np.testing.assert_array_equal(state['centers'], csq.hash_centers(16, 4, 0))
  np.testing.assert_array_equal(state['tie'], csq.tie_breaker(16, 0))
  forward = lambda params, images, train, rng: images
  batch = {'image': jnp.zeros((4, 16)), 'label': jnp.array([0, 1, 2, 3]), 'method_state': state}
  loss, _ = csq.loss_fn(None, batch, None, forward=forward, config=config)
  np.testing.assert_allclose(float(loss), np.log(2.0) + 1e-4, rtol=1e-5)  # z = 0: BCE log 2, (|0| - 1)^2 = 1


# ------------------------------------------------------------------ configs and jitted loss_fn
@pytest.mark.parametrize('name', ['csq', 'dpsh', 'dtsh', 'hashnet'])
@pytest.mark.parametrize('arg', [None, 'quick'])
def test_configs_validate_and_jit(name, arg):
  from hashjax import methods  # pylint: disable=g-import-not-at-top
  from hashjax.config import validate as config_validate  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top

  c = helpers.load_config(name, arg)
  config_validate.validate(c)
  assert c.method == name and c.model.name == 'dsh_net'
  assert (c.dataset.name, c.bits, c.num_steps) == (('digits', 16, 300) if arg else ('fashion_mnist', 48, 0))
  # The method's loss runs under jit on its config with a stand-in network (images are the outputs).
  forward = lambda params, images, train, rng: images * params
  rng = np.random.default_rng(1)
  batch = {
    'image': jnp.asarray(rng.normal(size=(8, c.bits)), jnp.float32),
    'label': jnp.asarray(rng.integers(0, 3, 8)),
    'step': jnp.int32(250),
  }
  method = methods.get(name)
  ctx = types.SimpleNamespace(loss=c.loss, bits=c.bits, num_classes=3)
  batch['method_state'] = method.init_state(ctx, jax.random.key(0)) if method.init_state else {}
  loss, grad = jax.jit(jax.value_and_grad(lambda p: method.loss_fn(p, batch, None, forward=forward, config=c.loss)[0]))(
    jnp.float32(1.0)
  )
  assert np.isfinite(float(loss)) and np.isfinite(float(grad))
