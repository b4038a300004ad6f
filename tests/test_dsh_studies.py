"""Seed 004's DSH studies: training from a fixed set of random pairs, and pair verification
(a classifier on |b1 - b2| predicting similar / dissimilar)."""

import itertools

import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from hashjax import pair_verification as pair_verification_command
from hashjax.analysis import pair_verification as pv
from hashjax.methods import dsh
from hashjax.train import trainer
from tests import helpers


# ------------------------------------------------------------------ fixed pairs
def test_fixed_pairs_are_exactly_num_pairs_distinct_partners():
  partners, active = dsh.fixed_pairs(num_train=7, num_pairs=17, seed=3)
  assert partners.shape == active.shape == (7, 3)  # ceil(17 / 7)
  assert active.sum() == 17 and active[:, :2].all() and active[:3, 2].all() and not active[3:, 2].any()
  assert (partners != np.arange(7)[:, None]).all() and partners.min() >= 0 and partners.max() < 7
  again, _ = dsh.fixed_pairs(num_train=7, num_pairs=17, seed=3)
  np.testing.assert_array_equal(partners, again)
  other, _ = dsh.fixed_pairs(num_train=7, num_pairs=17, seed=4)
  assert not np.array_equal(partners, other)


def _fixed_numpy(u1, u2, labels, partner_labels, mask, margin, alpha):
  total, count = 0.0, 0
  for i, c in itertools.product(range(len(u1)), range(u2.shape[1])):
    if not mask[i, c]:
      continue
    a, b = u1[i].astype(np.float64), u2[i, c].astype(np.float64)
    if labels.ndim == 1:
      y = 0.0 if labels[i] == partner_labels[i, c] else 1.0
    else:
      y = 0.0 if labels[i] @ partner_labels[i, c] > 0 else 1.0
    d = np.sum((a - b) ** 2)
    total += 0.5 * (1 - y) * d + 0.5 * y * max(margin - d, 0.0)
    total += alpha * (np.sum(np.abs(np.abs(a) - 1)) + np.sum(np.abs(np.abs(b) - 1)))
    count += 1
  return total / count


@pytest.mark.parametrize('multilabel', [False, True])
def test_fixed_pair_loss_matches_numpy_loop(multilabel):
  rng = np.random.default_rng(0)
  n, r, bits = 6, 3, 5
  u1 = rng.normal(scale=1.5, size=(n, bits)).astype(np.float32)
  u2 = rng.normal(scale=1.5, size=(n, r, bits)).astype(np.float32)
  if multilabel:
    labels, partner_labels = (rng.random((n, 4)) < 0.4).astype(np.int32), (rng.random((n, r, 4)) < 0.4).astype(np.int32)
  else:
    labels, partner_labels = rng.integers(0, 3, n).astype(np.int32), rng.integers(0, 3, (n, r)).astype(np.int32)
  mask = rng.random((n, r)) < 0.7
  batch = {
    'image': jnp.asarray(u1),
    'label': jnp.asarray(labels),
    'partner_image': jnp.asarray(u2),
    'partner_label': jnp.asarray(partner_labels),
    'partner_mask': jnp.asarray(mask),
  }
  config = mlc.ConfigDict(dict(margin=None, alpha=0.01, pairs='fixed'))
  loss, metrics = dsh.loss_fn({}, batch, None, forward=lambda p, x, **kw: x, config=config)
  expected = _fixed_numpy(u1, u2, labels, partner_labels, mask, 2.0 * bits, 0.01)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert float(metrics['pairs_per_batch']) == mask.sum()


def test_fixed_pairs_batches_and_steps():
  config = helpers.load_config('dsh', 'quick,pairs=fixed')
  assert config.loss.pairs == 'fixed' and config.batch_size == 64 and config.loss.num_pairs == 6000
  config.update(batch_size=16)
  config.model.width = 0.25
  config.loss.num_pairs = 2000
  run = trainer.build(config)
  batch = run.batches[0]
  positions = np.asarray(run.batches.order[0])
  partners, active = dsh.fixed_pairs(len(run.protocol.train), 2000, config.loss.pair_seed)
  assert batch['partner_image'].shape == (16, 2, 16, 16, 1) and batch['partner_image'].dtype == np.float32
  np.testing.assert_array_equal(batch['partner_label'], run.protocol.labels[run.protocol.train[partners[positions]]])
  np.testing.assert_array_equal(batch['partner_mask'], active[positions])
  state = run.state
  for step in range(2):
    state, metrics = run.step_fn(state, trainer.pipeline.to_global(run.batches[step], run.data_sharding))
    assert np.isfinite(float(metrics['loss'])) and 0 < float(metrics['pairs_per_batch']) <= 32


def test_unknown_pair_mode_fails_early():
  config = helpers.load_config('dsh', 'quick')
  config.loss.pairs = 'triplets'
  with pytest.raises(ValueError, match='valid: batch, fixed'):
    trainer.build(config)


# ------------------------------------------------------------------ pair verification
def test_sample_pairs_distinct_and_balanced():
  labels = np.repeat(np.arange(10), 20)
  rng = np.random.default_rng(0)
  i, j = pv.sample_pairs(labels, 5000, rng)
  assert len(i) == 5000 and (i != j).all()
  assert 0.05 < pv.similar(labels, i, j).mean() < 0.15  # random pairs: ~1/10 similar
  i, j = pv.sample_pairs(labels, 1001, rng, balanced=True)
  assert len(i) == 1001 and (i != j).all() and pv.similar(labels, i, j).sum() == 500
  multi = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
  np.testing.assert_array_equal(
    pv.similar(multi, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 3])), [True, False, True, False]
  )


def test_verification_metrics_hand_made():
  y = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
  scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.1, 0.0])
  m = pv.verification_metrics(y, scores, 0.5)
  # predicted similar: 0.9, 0.8, 0.7 -> 2 of 3 correct; 2 of the 3 similar pairs found
  assert m['precision'] == pytest.approx(2 / 3, abs=1e-6) and m['recall'] == pytest.approx(2 / 3, abs=1e-6)
  assert m['accuracy'] == pytest.approx(6 / 8)
  # ranking: + + - + ... -> AP = (1 + 1 + 3/4) / 3
  assert m['average_precision'] == pytest.approx((1 + 1 + 0.75) / 3, abs=1e-6)
  np.testing.assert_array_equal(
    pv.pair_features(np.array([[1, -1, 1], [1, 1, -1]], np.float32), np.array([0]), np.array([1])), [[0, 1, 1]]
  )


def _class_codes(n_per_class, classes, bits, flip, seed):
  """Codes = one random center per class (the same for every seed) with bits flipped w.p. `flip`."""
  centers = np.where(np.random.default_rng(99).random((classes, bits)) < 0.5, -1.0, 1.0)
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(classes), n_per_class)
  codes = centers[labels] * np.where(rng.random((len(labels), bits)) < flip, -1.0, 1.0)
  return codes.astype(np.float32), labels


def test_verify_separates_class_codes_and_the_cli(tmp_path, capsys):
  train_codes, train_labels = _class_codes(60, 5, 16, 0.1, 0)
  test_codes, test_labels = _class_codes(20, 5, 16, 0.1, 1)
  out = pv.verify(
    train_codes,
    train_labels,
    test_codes,
    test_labels,
    num_pairs=4000,
    num_test_pairs=2000,
    hidden=16,
    epochs=10,
    lr=1e-2,
    batch_size=100,
    seed=0,
  )
  c = out['classifier']
  assert c['average_precision'] > 0.9 and c['precision'] > 0.8 and c['recall'] > 0.8
  assert out['hamming_average_precision'] > 0.9 and 0.1 < out['test_similar_fraction'] < 0.3
  assert c['train_loss'][-1] < c['train_loss'][0]
  noise = np.random.default_rng(2).choice([-1.0, 1.0], size=test_codes.shape).astype(np.float32)
  chance = pv.verify(
    train_codes,
    train_labels,
    noise,
    test_labels,
    num_pairs=4000,
    num_test_pairs=2000,
    hidden=0,
    epochs=3,
    batch_size=100,
  )
  assert chance['classifier']['average_precision'] < 0.4  # random codes: AP ~ the similar fraction
  paths = {}
  for name, array in dict(
    train_codes=train_codes, train_labels=train_labels, test_codes=test_codes, test_labels=test_labels
  ).items():
    paths[name] = str(tmp_path / f'{name}.npy')
    np.save(paths[name], array)
  argv = [f'--{k}={v}' for k, v in paths.items()] + ['--pairs=2000', '--test_pairs=500', '--epochs=2']
  assert pair_verification_command.main(argv) == 0
  assert 'precision' in capsys.readouterr().out
  assert pair_verification_command.main(['--train_codes', paths['train_codes']]) == 2
  assert 'pass --workdir' in capsys.readouterr().err


def test_verify_workdir(tmp_path):
  config = helpers.tiny_dsh_config(num_steps=4)
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(config, workdir)
  out = pv.verify_workdir(workdir, num_pairs=2000, num_test_pairs=500, hidden=8, epochs=2)
  assert out['step'] == 4 and out['bits'] == 16 and 'query set (297)' in out['sets']
  assert np.isfinite(out['classifier']['average_precision'])
  assert (tmp_path / 'run' / 'pair_verification.json').exists()
