"""GreedyHash and DSDH: losses against per-sample / per-pair NumPy loops, the straight-through
gradient, DSDH's W and DCC B updates against brute-force minimisation, sharded = single-device,
and a tiny DSDH training run with its per-epoch refresh.

Losses compute in float32 from float32 inputs, the loops in float64: rtol 1e-5.
"""

import itertools
import types

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from hashjax.eval import evaluator
from hashjax.methods import dsdh
from hashjax.methods import greedyhash
from hashjax.train import trainer
from tests import helpers
from tests import refresh_reference as ref

RTOL = 1e-5


def _batch(multilabel, n=9, bits=6, classes=4, seed=0):
  rng = np.random.default_rng(seed)
  h = rng.normal(scale=1.3, size=(n, bits)).astype(np.float32)
  if multilabel:
    labels = (rng.random((n, classes)) < 0.4).astype(np.int32)
    labels[0] = 0  # an image with no label
  else:
    labels = rng.integers(0, classes, n).astype(np.int32)
  return h, labels


def _identity_forward(params, images, **kwargs):
  return images  # the "network" returns the batch's outputs


# ------------------------------------------------------------------ GreedyHash
def _classifier(bits, classes, seed=3):
  rng = np.random.default_rng(seed)
  return {
    'kernel': rng.normal(size=(bits, classes)).astype(np.float32),
    'bias': rng.normal(size=classes).astype(np.float32),
  }


def _greedy_numpy(h, labels, clf, alpha):
  h = h.astype(np.float64)
  kernel, bias = clf['kernel'].astype(np.float64), clf['bias'].astype(np.float64)
  n, classes = len(h), kernel.shape[1]
  ce = 0.0
  for i in range(n):
    logits = np.sign(h[i]) @ kernel + bias
    log_p = logits - logits.max() - np.log(np.sum(np.exp(logits - logits.max())))
    if labels.ndim == 1:
      target = np.eye(classes)[labels[i]]
    else:
      target = labels[i] / max(labels[i].sum(), 1)
    ce -= np.sum(target * log_p)
  quant = np.mean([abs(abs(x) - 1.0) ** 3 for x in h.ravel()])
  return ce / n + alpha * quant


@pytest.mark.parametrize('multilabel', [False, True])
def test_greedyhash_loss_matches_numpy_loop(multilabel):
  h, labels = _batch(multilabel)
  clf = _classifier(h.shape[1], 4)
  params = {'model': {}, 'method': jax.tree.map(jnp.asarray, clf)}
  loss, metrics = greedyhash.loss_fn(
    params,
    {'image': jnp.asarray(h), 'label': jnp.asarray(labels)},
    None,
    forward=_identity_forward,
    config=mlc.ConfigDict(dict(quant_weight=0.1)),
  )
  np.testing.assert_allclose(float(loss), _greedy_numpy(h, labels, clf, 0.1), rtol=RTOL)
  assert 0 <= float(metrics['code_accuracy']) <= 1


def test_greedyhash_gradient_is_straight_through():
  """d loss / d h = (d CE / d b at b = sign(h)) + the cubic term's own gradient: sign's backward is
  the identity."""
  h, labels = _batch(False, seed=1)
  clf = _classifier(h.shape[1], 4)
  grad = jax.grad(
    lambda x: greedyhash.greedy_loss(x, jnp.asarray(labels), jax.tree.map(jnp.asarray, clf), quant_weight=0.1)[0]
  )(jnp.asarray(h))
  h64, n = h.astype(np.float64), len(h)
  logits = np.sign(h64) @ clf['kernel'] + clf['bias']
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  d_ce_d_b = (p - np.eye(4)[labels]) @ clf['kernel'].T / n
  r = np.abs(h64) - 1.0
  d_quant = 0.1 * 3 * r**2 * np.sign(r) * np.sign(h64) / h.size
  np.testing.assert_allclose(np.asarray(grad), d_ce_d_b + d_quant, rtol=1e-4, atol=1e-7)
  # With sign's true (zero) derivative only the cubic term would remain: the CE part is really there.
  assert np.abs(d_ce_d_b).max() > 1e-3


def test_greedyhash_straight_through_sign_values():
  h = jnp.array([-2.0, -0.1, 0.0, 0.3])
  np.testing.assert_array_equal(greedyhash.straight_through_sign(h), [-1, -1, 0, 1])
  np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(3.0 * greedyhash.straight_through_sign(x)))(h), 3.0)


# ------------------------------------------------------------------ DSDH loss
def _dsdh_numpy(u, labels, b, eta, num_train):
  u, b = u.astype(np.float64), b.astype(np.float64)
  n = len(u)
  total, pairs = 0.0, 0
  for i, j in itertools.combinations(range(n), 2):
    theta = 0.5 * float(u[i] @ u[j])
    s = float(labels[i] == labels[j]) if labels.ndim == 1 else float(labels[i] @ labels[j] > 0)
    total += np.log1p(np.exp(theta)) - s * theta
    pairs += 1
  quant = sum(np.sum((b[i] - u[i]) ** 2) for i in range(n)) / n
  return total / pairs + eta / (num_train - 1) * quant


def _dsdh_state(num_train, bits, classes, seed=5):
  rng = np.random.default_rng(seed)
  codes = np.where(rng.random((num_train, bits)) < 0.5, -1.0, 1.0).astype(np.float32)
  return {'B': jnp.asarray(codes), 'W': jnp.asarray(rng.normal(size=(bits, classes)), jnp.float32)}


@pytest.mark.parametrize('multilabel', [False, True])
def test_dsdh_loss_matches_numpy_loop(multilabel):
  u, labels = _batch(multilabel, seed=2)
  state = _dsdh_state(num_train=40, bits=u.shape[1], classes=4)
  index = np.array([3, 17, 0, 39, 8, 22, 5, 11, 30], np.int32)
  batch = {
    'image': jnp.asarray(u),
    'label': jnp.asarray(labels),
    'train_index': jnp.asarray(index),
    'method_state': state,
  }
  config = mlc.ConfigDict(dict(eta=7.0, mu=1.0, nu=0.1, dcc_iters=2))
  loss, metrics = dsdh.loss_fn({'model': {}, 'method': {}}, batch, None, forward=_identity_forward, config=config)
  b = np.asarray(state['B'])[index]
  np.testing.assert_allclose(float(loss), _dsdh_numpy(u, labels, b, 7.0, 40), rtol=RTOL)
  np.testing.assert_allclose(float(metrics['code_agreement']), np.mean(np.where(u >= 0, 1, -1) == b))


# ------------------------------------------------------------------ DSDH W and B updates
def _problem(n=7, bits=3, classes=3, seed=0, multilabel=False, eta_over_mu=0.3):
  rng = np.random.default_rng(seed)
  u = rng.normal(size=(n, bits))
  if multilabel:
    y = (rng.random((n, classes)) < 0.5).astype(np.float64)
  else:
    y = np.eye(classes)[rng.integers(0, classes, n)]
  b = np.where(rng.random((n, bits)) < 0.5, -1.0, 1.0)
  w = rng.normal(size=(bits, classes))
  return b, u, y, w


def _f32(*arrays):
  return [jnp.asarray(a, jnp.float32) for a in arrays]


@pytest.mark.parametrize('multilabel', [False, True])
def test_w_update_minimises_the_ridge_objective(multilabel):
  b, _, y, _ = _problem(multilabel=multilabel)
  w = np.asarray(dsdh.update_w(*_f32(b, y), nu_over_mu=0.5), np.float64)
  objective = lambda w: np.sum((y - b @ w) ** 2) + 0.5 * np.sum(w**2)
  np.testing.assert_allclose(b.T @ (b @ w - y) + 0.5 * w, 0.0, atol=1e-5)  # stationary point (convex)
  np.testing.assert_allclose(w, ref.update_w(b, y, 0.5), rtol=1e-5, atol=1e-6)  # the float64 reference
  rng = np.random.default_rng(1)
  assert all(objective(w) <= objective(w + 1e-3 * rng.normal(size=w.shape)) for _ in range(5))
  # Masked rows take no part: W of the first 5 rows alone.
  mask = jnp.asarray([1, 1, 1, 1, 1, 0, 0], jnp.float32)
  np.testing.assert_allclose(
    dsdh.update_w(*_f32(b, y), 0.5, mask), ref.update_w(b[:5], y[:5], 0.5), rtol=1e-5, atol=1e-6
  )


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_dcc_sweep_sets_each_bit_to_its_brute_force_minimiser(seed):
  """Bit k of one sweep = the best of all 2^N columns given bits < k (new) and > k (old)."""
  b, u, y, w = _problem(n=6, bits=3, seed=seed)
  mu, eta = 1.0, 0.7
  new = np.asarray(dsdh.update_b(*_f32(b, u, y, w), eta / mu))
  np.testing.assert_array_equal(new, ref.update_b(b, u, y, w, eta / mu))
  current = b.copy()
  for k in range(b.shape[1]):
    best, best_value = None, np.inf
    for column in itertools.product([-1.0, 1.0], repeat=len(b)):
      trial = current.copy()
      trial[:, k] = column
      value = ref.b_objective(trial, u, y, w, mu, eta)
      if value < best_value:
        best, best_value = np.array(column), value
    np.testing.assert_array_equal(new[:, k], best)
    current[:, k] = best


def _global_minimum(u, y, w, mu, eta):
  """The B-subproblem separates over images: enumerate all 2^K codes of each."""
  codes = np.array(list(itertools.product([-1.0, 1.0], repeat=w.shape[0])))
  best = np.zeros_like(u)
  for i in range(len(u)):
    values = [mu * np.sum((y[i] - c @ w) ** 2) + eta * np.sum((c - u[i]) ** 2) for c in codes]
    best[i] = codes[int(np.argmin(values))]
  return best


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_dcc_never_increases_the_objective_and_ends_coordinatewise_optimal(seed):
  b, u, y, w = _problem(n=12, bits=4, seed=seed)
  mu, eta = 1.0, 0.2
  sweep = jax.jit(dsdh.update_b)
  values = [ref.b_objective(b, u, y, w, mu, eta)]
  for _ in range(20):
    b = np.asarray(sweep(*_f32(b, u, y, w), eta / mu), np.float64)
    values.append(ref.b_objective(b, u, y, w, mu, eta))
  assert all(later <= earlier + 1e-6 for earlier, later in zip(values, values[1:]))
  for i, k in itertools.product(range(len(b)), range(b.shape[1])):  # no single flip improves
    flipped = b.copy()
    flipped[i, k] *= -1
    assert ref.b_objective(flipped, u, y, w, mu, eta) >= values[-1] - 1e-6
  assert values[-1] >= ref.b_objective(_global_minimum(u, y, w, mu, eta), u, y, w, mu, eta) - 1e-6


def test_dcc_reaches_the_global_minimum_when_the_bits_decouple():
  """W with orthogonal rows makes the objective separable per bit: one sweep is exact."""
  b, u, y, _ = _problem(n=8, bits=3, classes=4, seed=4)
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 3)))
  w = 0.8 * q.T  # (3, 4), W W^T = 0.64 I
  new = dsdh.update_b(*_f32(b, u, y, w), 0.4)
  np.testing.assert_array_equal(new, _global_minimum(u, y, w, 1.0, 0.4))


def test_dcc_hand_made():
  """One image, two bits, W = I (2 classes): bit k minimises (y_k - b_k)^2 + eta (b_k - u_k)^2."""
  w, y = np.eye(2), np.array([[1.0, 0.0]])
  # p = y + eta u = [1 - 0.5 * 3, 0 + 0.5 * 1] = [-0.5, 0.5]: the output outweighs the label on bit 0.
  np.testing.assert_array_equal(dsdh.update_b(*_f32(np.ones((1, 2)), [[-3.0, 1.0]], y, w), 0.5), [[-1, 1]])
  # p = [1, 0]: bit 1's z is exactly 0 -> keeps its old value.
  np.testing.assert_array_equal(dsdh.update_b(*_f32([[-1.0, -1.0]], np.zeros((1, 2)), y, w), 0.5), [[1, -1]])


@pytest.mark.parametrize('multilabel', [False, True])
def test_jitted_refresh_equals_the_numpy_refresh_and_init(multilabel):
  """The jnp refresh (the rows padded to a device multiple, mask 0 on the padding) gives the NumPy
  float64 refresh's B and W (W to float32 precision)."""
  b, u, y, _ = _problem(n=300, bits=12, classes=5, seed=6, multilabel=multilabel)
  labels = y.astype(np.int32) if multilabel else np.argmax(y, 1)
  config = mlc.ConfigDict(dict(mu=1.0, nu=0.1, eta=2.0, dcc_iters=10))
  old = {'B': b.astype(np.float32), 'W': np.zeros((12, 5), np.float32)}
  expected = ref.refresh(config, u.astype(np.float32), labels, old)
  pad = lambda x: np.concatenate([x, np.zeros((4,) + x.shape[1:], x.dtype)])  # 304 rows: a multiple of 8
  ctx = types.SimpleNamespace(loss=config)
  refresh = jax.jit(lambda u, labels, mask, state: dsdh.refresh(ctx, u, labels, mask, state))
  got = refresh(pad(u.astype(np.float32)), pad(labels), pad(np.ones(300, np.float32)), old)
  np.testing.assert_array_equal(got['B'], expected['B'])
  np.testing.assert_allclose(got['W'], expected['W'], rtol=1e-4, atol=1e-5)
  # The refresh lowers the paper's B/W objective mu ||Y - BW||^2 + nu ||W||^2 + eta ||B - U||^2.
  full = lambda p: ref.b_objective(p['B'], u, y, p['W'], 1.0, 2.0) + 0.1 * np.sum(np.square(p['W'], dtype=np.float64))
  assert full(jax.tree.map(np.asarray, got)) < full({'B': b, 'W': ref.update_w(b, y, 0.1)})
  protocol = types.SimpleNamespace(train=np.arange(300), labels=labels, num_classes=5)
  ctx = types.SimpleNamespace(loss=config, bits=12, protocol=protocol, num_classes=5, train_labels=labels)
  init = dsdh.init_state(ctx, jax.random.key(0))
  again = dsdh.init_state(ctx, jax.random.key(0))
  np.testing.assert_array_equal(init['B'], again['B'])
  assert set(np.unique(init['B'])) == {-1.0, 1.0} and init['B'].shape == (300, 12)
  np.testing.assert_allclose(init['W'], ref.update_w(np.asarray(init['B']), y, 0.1), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ trainer
def _small(method):
  config = helpers.load_config(method, 'quick')
  config.update(batch_size=32)
  config.model.width = 0.25
  return config


@pytest.mark.parametrize('method', ['greedyhash', 'dsdh'])
def test_eight_devices_match_one(method):
  state1, loss1 = helpers.first_steps(_small(method), 1)
  state8, loss8 = helpers.first_steps(_small(method), 8)
  np.testing.assert_allclose(loss8, loss1, rtol=2e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state8.params, state1.params)


def test_dsdh_trains_with_refresh(tmp_path):
  config = _small('dsdh')
  config.update(num_steps=8, log_every_steps=4)
  config.loss.refresh_epochs = 0.1  # every 4 steps (46 steps per epoch of 32 digits)
  run = trainer.build(config)
  assert run.refresh_every_steps == 5
  batch = run.batches[0]
  np.testing.assert_array_equal(run.protocol.train[batch['train_index']], run.batches.global_indices(0))
  assert run.state.params['method'] == {}  # B and W are state, not parameters
  initial = run.state.method_state
  refreshed = run.refresh(run.state).method_state
  outputs = evaluator.encode_set(
    jax.jit(lambda p, x: run.encode(p, x)),
    run.state.params,
    run.protocol.images,
    run.protocol.train,
    256,
    run.data_sharding,
  )
  expected = ref.refresh(
    config.loss, outputs, run.protocol.labels[run.protocol.train], jax.tree.map(np.asarray, initial)
  )
  assert np.mean(np.asarray(refreshed['B']) == expected['B']) > 0.999  # same outputs up to float noise
  assert np.mean(np.asarray(refreshed['B']) != np.asarray(initial['B'])) > 0.2  # random init -> from U
  final = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert final['step'] == 8 and np.isfinite(final['mAP'])
