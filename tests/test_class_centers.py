"""DCWH and IDCWH: losses against per-sample NumPy loops, center updates on hand-made batches,
learnable-center gradients against finite differences, and the trainer's center refresh.

Losses compute in float32 from float32 inputs, the loops in float64: rtol 1e-5.
"""

import types

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from hashjax.config import validate as config_validate
from hashjax.methods import dcwh
from hashjax.methods import idcwh
from hashjax.train import trainer
from tests import helpers
from tests import refresh_reference

RTOL = 1e-5


def _batch(multilabel, n=9, bits=6, classes=4, seed=0):
  rng = np.random.default_rng(seed)
  u = rng.normal(scale=1.3, size=(n, bits)).astype(np.float32)
  centers = rng.normal(size=(classes, bits)).astype(np.float32)
  if multilabel:
    labels = (rng.random((n, classes)) < 0.4).astype(np.int32)
    labels[0] = 0  # an image with no label contributes no class-wise term
  else:
    labels = rng.integers(0, classes - 1, n).astype(np.int32)  # the last class is absent
  return u, centers, labels


def _targets(labels, classes):
  return labels.astype(np.float64) if labels.ndim == 2 else np.eye(classes)[labels]


def _loss(module, u, centers, labels, **config):
  """The loss with the centers as trained parameters (IDCWH, DCWH learnable_centers) or as method
  state (DCWH's recomputed centers)."""
  forward = lambda params, images, **kw: images  # the "network" returns the batch's outputs
  state = module is dcwh and not config['learnable_centers']
  params = {'model': {}, 'method': {} if state else {'centers': centers}}
  batch = {'image': jnp.asarray(u), 'label': jnp.asarray(labels), 'method_state': {'centers': centers} if state else {}}
  return module.loss_fn(params, batch, None, forward=forward, config=mlc.ConfigDict(config))


DCWH_CONFIG = dict(
  inv_var=1.0, cubic_weight=10.0, vertex_weight=0.01, cubic_precedence_quirk=False, learnable_centers=False
)


def _dcwh_numpy(u, centers, labels, inv_var, cubic_weight, vertex_weight, quirk):
  u, centers = u.astype(np.float64), centers.astype(np.float64)
  y = _targets(labels, len(centers))
  b = len(u)
  cw = 0.0
  for i in range(b):
    logits = np.array([-(inv_var / 2) * np.sum((u[i] - c) ** 2) for c in centers])
    log_p = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    cw -= np.sum(y[i] * log_p)
  cw /= b
  below = sum(max(-1.1 - x, 0.0) for x in u.ravel())
  above = sum(max(x - 1.1, 0.0) for x in u.ravel())
  cubic = below + above / b if quirk else (below + above) / b
  vertex = sum(np.sum((np.sign(row) - row) ** 2) for row in u) / b
  return cw + (cubic_weight * cubic + vertex_weight * vertex) / b


@pytest.mark.parametrize('multilabel', [False, True])
@pytest.mark.parametrize('quirk', [False, True])
def test_dcwh_loss_matches_numpy_loop(multilabel, quirk):
  u, centers, labels = _batch(multilabel)
  config = dict(DCWH_CONFIG, inv_var=0.7, cubic_precedence_quirk=quirk)
  loss, metrics = _loss(dcwh, u, centers, labels, **config)
  expected = _dcwh_numpy(u, centers, labels, 0.7, 10.0, 0.01, quirk)
  np.testing.assert_allclose(float(loss), expected, rtol=RTOL)
  assert 0 <= float(metrics['center_accuracy']) <= 1


def test_dcwh_recomputed_centers_are_state_learnable_ones_are_trained():
  u, centers, labels = _batch(False)
  grad = jax.grad(lambda c: _loss(dcwh, u, c, labels, **dict(DCWH_CONFIG, learnable_centers=True))[0])
  assert np.abs(grad(jnp.asarray(centers))).max() > 1e-3
  for learnable in (False, True):
    ctx = types.SimpleNamespace(
      loss=mlc.ConfigDict(dict(DCWH_CONFIG, learnable_centers=learnable)), bits=6, num_classes=4
    )
    params, state = dcwh.init_params(ctx, jax.random.key(0)), dcwh.init_state(ctx, jax.random.key(0))
    assert (params, state)[learnable] == {} and (state, params)[learnable]['centers'].shape == (4, 6)


def test_dcwh_refresh_is_the_class_means_and_keeps_absent_classes():
  outputs = np.array([[1, 2], [3, 4], [10, 10], [-1, 0], [99, 99]], np.float32)
  labels, mask = np.array([0, 0, 2, 2, 1]), np.array([1, 1, 1, 1, 0], np.float32)  # the last row is padding
  old = np.full((4, 2), 7.0, np.float32)
  np.testing.assert_allclose(dcwh.class_means(outputs, labels, mask, old), [[2, 3], [7, 7], [4.5, 5], [7, 7]])
  multi = dcwh.class_means(outputs, np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 1]]), mask, np.zeros((2, 2)))
  np.testing.assert_allclose(multi, [[2, 3], [1, 2]])  # class 1 = mean of rows 1 and 3


@pytest.mark.parametrize('multilabel', [False, True])
def test_dcwh_jitted_refresh_equals_the_numpy_refresh(multilabel):
  rng = np.random.default_rng(5)
  outputs = rng.normal(size=(300, 24)).astype(np.float32)
  labels = (rng.random((300, 7)) < 0.3).astype(np.int32) if multilabel else rng.integers(0, 6, 300)  # class 6 absent
  old = rng.normal(size=(7, 24)).astype(np.float32)
  got = jax.jit(dcwh.refresh, static_argnums=0)(None, outputs, labels, np.ones(300, np.float32), {'centers': old})
  np.testing.assert_allclose(
    got['centers'], refresh_reference.dcwh_class_means(outputs, labels, old), rtol=1e-5, atol=1e-6
  )


def _idcwh_numpy(h, centers, labels, sigma, gamma, beta):
  h, centers = h.astype(np.float64), centers.astype(np.float64)
  y = _targets(labels, len(centers))
  n, bits = h.shape
  sgn = lambda x: np.where(x >= 0, 1.0, -1.0)
  clw = 0.0
  for i in range(n):
    logits = np.array([-np.sum((h[i] - c) ** 2) / (2 * sigma**2) for c in centers])
    log_p = logits - np.log(np.sum(np.exp(logits)))
    clw -= np.sum(y[i] * log_p)
  clw /= n
  terms = []
  for i in range(len(centers)):  # step a then step b, for each class present in the batch
    members = [sgn(h[k]) for k in range(n) if y[k, i] > 0]
    if not members:
      continue
    u_i = sgn(np.sum(members, axis=0))
    for j, mu in enumerate(centers):
      theta = 0.5 * bits * (u_i @ mu) / (np.linalg.norm(u_i) * np.linalg.norm(mu))
      s = 1.0 if i == j else 0.0
      terms.append(np.log1p(np.exp(theta)) - s * theta)
  csl = np.mean(terms)
  quant = sum(np.sum((sgn(row) - row) ** 2) for row in h) / n
  return clw + gamma * csl + beta * quant


@pytest.mark.parametrize('multilabel', [False, True])
def test_idcwh_loss_matches_numpy_loop(multilabel):
  h, centers, labels = _batch(multilabel, seed=1)
  loss, _ = _loss(idcwh, h, centers, labels, sigma=0.8, gamma=0.3, beta=0.05)
  np.testing.assert_allclose(float(loss), _idcwh_numpy(h, centers, labels, 0.8, 0.3, 0.05), rtol=RTOL)


def test_idcwh_binary_centers_hand_made():
  codes = jnp.array([[0.5, -2.0, 0.1], [-0.3, -1.0, -0.2], [0.0, 3.0, -1.0], [-1.0, 1.0, 1.0]])
  targets = jnp.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], jnp.float32)
  u, present = idcwh.batch_binary_centers(codes, targets)
  # class 0: signs (+,-,+) + (-,-,-) = (0,-2,0) -> sgn(0) = +1; class 1: (+,+,-) + (-,+,+) = (0,2,0)
  np.testing.assert_array_equal(u[:2], [[1, -1, 1], [1, 1, 1]])
  np.testing.assert_array_equal(present, [True, True, False])


def test_idcwh_center_gradients_match_finite_differences():
  h, centers, labels = _batch(False, seed=2)
  config = dict(sigma=1.0, gamma=0.5, beta=0.01)
  grad = np.asarray(jax.grad(lambda c: _loss(idcwh, h, c, labels, **config)[0])(jnp.asarray(centers)))
  eps, numeric = 1e-4, np.zeros_like(centers, np.float64)
  for idx in np.ndindex(centers.shape):
    plus, minus = centers.astype(np.float64), centers.astype(np.float64)
    plus[idx] += eps
    minus[idx] -= eps
    numeric[idx] = (_idcwh_numpy(h, plus, labels, **config) - _idcwh_numpy(h, minus, labels, **config)) / (2 * eps)
  np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)
  assert np.abs(grad[-1]).max() > 0  # an absent class's center still moves (pushed from the others)


@pytest.mark.parametrize('method', ['dcwh', 'idcwh'])
def test_eight_devices_match_one(method):
  def config():
    c = helpers.load_config(method, 'quick')
    c.update(batch_size=32)
    c.model.width = 0.25
    return c

  state1, loss1 = helpers.first_steps(config(), 1)
  state8, loss8 = helpers.first_steps(config(), 8)
  np.testing.assert_allclose(loss8, loss1, rtol=2e-5, atol=1e-6)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
    (state8.params['method'], state8.method_state),
    (state1.params['method'], state1.method_state),
  )


def test_trainer_refreshes_dcwh_centers_to_the_class_means(tmp_path):
  config = helpers.load_config('dcwh', 'quick')
  config.update(batch_size=32, num_steps=6)
  config.model.width = 0.25
  config.loss.refresh_epochs = 0.1  # every few steps
  run = trainer.build(config)
  assert 0 < run.refresh_every_steps < 6
  assert run.state.params['method'] == {}  # recomputed centers are state, not parameters
  initial = np.asarray(run.state.method_state['centers'])
  refreshed = run.refresh(run.state)
  means = np.asarray(refreshed.method_state['centers'])
  outputs = trainer.evaluator.encode_set(
    jax.jit(lambda p, x: run.encode(p, x)),
    run.state.params,
    run.protocol.images,
    run.protocol.train,
    256,
    run.data_sharding,
  )  # to_codes is the identity for DCWH: the outputs themselves
  labels = run.protocol.labels[run.protocol.train]
  np.testing.assert_allclose(means, refresh_reference.dcwh_class_means(outputs, labels, initial), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(means[3], outputs[labels == 3].mean(0), rtol=1e-4, atol=1e-5)
  assert not np.allclose(initial, means)
  final = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert final['step'] == 6 and np.isfinite(final['mAP'])


@pytest.mark.parametrize(
  'arg,optimizer,sigma', [(None, 'adam', 4.0), ('sgd', 'sgd', 4.0), ('quick', 'sgd', 2.0), ('paper', 'sgd', 4.0)]
)
def test_idcwh_config_settings(arg, optimizer, sigma):
  """The full settings use Adam (chosen at sigma 4 on validation); :sgd, :quick and :paper keep SGD;
  the centers learn at half the network's rate in every setting (the slides' 5e-3 vs 1e-2)."""
  c = helpers.load_config('idcwh', arg)
  assert c.model.requires_pretrained == (arg == 'paper')  # :paper fine-tunes ImageNet GoogLeNet
  c.model.pretrained = 'none' if arg == 'paper' else ''
  config_validate.validate(c)
  assert (c.optimizer.name, c.loss.sigma, c.optimizer.lr_multipliers) == (optimizer, sigma, 'method/=0.5')


@pytest.mark.parametrize('method', ['dcwh', 'dsdh'])
def test_method_state_ignores_lr_multipliers_and_weight_decay(method):
  """A user who sets lr_multipliers for the network and weight decay leaves the method's state
  untouched: it is not among the parameters (before, `method/=0` was all that froze it)."""

  def run(lr_multipliers):
    c = helpers.load_config(method, 'quick')
    c.update(batch_size=32)
    c.model.width = 0.25
    c.optimizer.update(weight_decay=5e-3, lr_multipliers=lr_multipliers)
    return helpers.first_steps(c, 1)

  (plain, plain_losses), (scaled, scaled_losses) = run(''), run('model/=1')
  assert plain.params['method'] == {} and plain.method_state
  np.testing.assert_array_equal(plain_losses, scaled_losses)
  jax.tree.map(np.testing.assert_array_equal, (plain.params, plain.method_state), (scaled.params, scaled.method_state))
  initial = trainer.build(helpers.load_config(method, 'quick')).state.method_state if method == 'dcwh' else None
  if initial is not None:  # no refresh in three steps: the centers are exactly their initial values
    np.testing.assert_array_equal(plain.method_state['centers'], initial['centers'])
