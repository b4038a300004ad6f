"""The configs' :features variants, training on feature vectors, and `python -m hashjax.extract_features`
(from a config, from a trained run, resumed after an interruption), round-tripped into the dataset."""

import json
import os

import jax
import numpy as np
import pytest

from hashjax import baselines
from hashjax import methods
from hashjax import models
from hashjax.cli import command
from hashjax.config import validate as config_validate
from hashjax.data import sources
from hashjax.data.formats import features as features_format
from hashjax.eval import features as features_lib
from hashjax.eval import workdir_eval
from hashjax.train import trainer
from tests import helpers

# Every method with a :features variant (the autoencoder has none: README, "Foundation-model features").
SUPERVISED = ('dsh', 'csq', 'dpsh', 'dtsh', 'hashnet', 'dcwh', 'idcwh', 'greedyhash', 'dsdh')
FEATURE_CONFIGS = (*SUPERVISED, 'dlbhc', 'cimon', *sorted(baselines.BASELINES))


@pytest.fixture(scope='module')
def digits_features(tmp_path_factory):
  """The digits as 64-d float16 feature vectors (pixels in [0, 1]) in the npz layout."""
  out = tmp_path_factory.mktemp('digits_features')
  for name, split in sources.load('digits').splits.items():
    x = (split.images.reshape(len(split.images), -1) / 255.0).astype(np.float16)
    np.savez(out / f'{name}.npz', features=x, labels=split.labels)
  return str(out)


@pytest.mark.parametrize('name', FEATURE_CONFIGS)
def test_every_features_config_validates(name):
  for arg in ('features', 'features,quick', 'features,bits=32'):
    c = helpers.load_config(name, arg)
    assert c.dataset.name == 'features' and c.image_size == 0, arg
    if name not in baselines.BASELINES:
      assert c.model.name in models.FEATURE_MODELS and c.normalize == 'dataset', arg
    config_validate.validate(c)


def test_features_settings_that_do_not_apply_fail_at_validation():
  c = helpers.load_config('dsh', 'features')
  for key, value, message in (
    ('augment', 'crop_flip', 'is an image augmentation; feature vectors'),
    ('image_size', 32, 'image_size=32 resizes images'),
    ('normalize', 'imagenet', "normalize='imagenet' is for images"),
  ):
    bad = c.copy_and_resolve_references()
    bad[key] = value
    with pytest.raises(ValueError, match=message):
      config_validate.validate(bad)
  bad = helpers.load_config('dsh', 'quick')
  bad.dataset.name = 'features'
  with pytest.raises(ValueError, match='model dsh_net takes images; .*model.name=mlp'):
    config_validate.validate(bad)
  with pytest.raises(ValueError, match='pick one'):
    helpers.load_config('dcwh', 'features,paper')
  cimon = helpers.load_config('cimon', 'features')
  assert (cimon.loss.graph_features, cimon.augment, cimon.model.head_activation) == (
    'features',
    'feature_views',
    'tanh',
  )
  assert methods.get('cimon').num_views == 2


def _tiny(name, data_dir, **overrides):
  c = helpers.load_config(name, 'features,quick')
  c.dataset.data_dir = data_dir
  c.batch_size, c.num_steps, c.log_every_steps, c.checkpoint.every_steps = 64, 150, 50, 150
  c.num_devices = 1  # a faster compile (the config extraction below runs on all 8 simulated devices)
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 512
  for key, value in overrides.items():
    c[key] = value
  return c


@pytest.fixture(scope='module')
def trained_dsh(digits_features, tmp_path_factory):
  """(workdir, final metrics) of DSH's MLP trained briefly on the digits' feature vectors."""
  workdir = str(tmp_path_factory.mktemp('dsh_features_run'))
  return workdir, trainer.train_and_evaluate(_tiny('dsh', digits_features), workdir)


def test_two_features_configs_train(trained_dsh, digits_features, tmp_path):
  _, final = trained_dsh
  assert final['step'] == 150 and final['mAP'] > 0.6  # LSH on these vectors: ~0.3 at 16 bits
  c = _tiny('dlbhc', digits_features, num_steps=100)
  c.model.hidden = (128,)
  final = trainer.train_and_evaluate(c, str(tmp_path))
  assert final['step'] == 100 and final['mAP'] > 0.3  # chance: 0.1
  with open(os.path.join(tmp_path, 'metrics.jsonl')) as f:
    train_rows = [r for r in map(json.loads, f) if r['split'] == 'train']
  assert train_rows[-1]['loss'] < train_rows[0]['loss']


def test_cimon_builds_its_graph_from_the_stored_vectors(digits_features):
  """CIMON:features (its step compiles for ~10 s, so not trained here: see test_cimon_train.py for the
  loop): each batch carries the stored vectors of its images, the graph's source."""
  c = helpers.load_config('cimon', 'features,quick')
  c.dataset.data_dir = digits_features
  protocol = trainer.load_protocol(c)
  ctx = methods.Context(c, protocol)
  methods.get('cimon').validate(ctx)
  extras = methods.get('cimon').batch_extras(ctx, None)
  positions = np.array([4, 0, 1499])
  rows = extras(positions)['graph_features']
  assert rows.dtype == np.float32
  np.testing.assert_array_equal(rows, np.asarray(protocol.images[protocol.train[positions]], np.float32))
  c.loss.graph_features = 'pixels'
  with pytest.raises(ValueError, match="'pixels' reads images; on the features dataset use 'features'"):
    methods.get('cimon').validate(ctx)
  assert (
    'features ('
    in methods.get('cimon').describe(methods.Context(helpers.load_config('cimon', 'features'), None))['graph_features']
  )


def _config_for_extraction():
  c = helpers.load_config('dsh', 'quick')
  c.model.width = 0.25
  c.eval.batch_size = 200
  return c


@pytest.fixture(scope='module')
def extracted(tmp_path_factory):
  """An uninterrupted extraction of the quick DSH network's features (random init) of the digits."""
  out = str(tmp_path_factory.mktemp('extracted') / 'feats')
  return out, features_lib.extract(out, config=_config_for_extraction(), chunk_batches=2)


def test_extract_from_a_config_round_trips_into_the_dataset(extracted, tmp_path):
  out, progress = extracted
  assert progress['complete'] and progress['rows'] == {'train': [1500, 1500], 'test': [297, 297]}
  assert progress['width'] == 125 and progress['model'] == 'dsh_net'  # fc1: 500 x width 0.25
  config = _config_for_extraction()
  run = trainer.build(config, for_training=False)
  digits = sources.load('digits')
  source = sources.load('features', out)
  featurize = jax.jit(
    lambda p, x: run.ctx.forward(p, run.ctx.preprocess(x, train=False), train=False, features_only=True)
  )
  for name in ('train', 'test'):
    want = featurize(run.state.params, digits.splits[name].images[:40])  # one batch, unsharded
    np.testing.assert_allclose(source.splits[name].images[np.arange(40)], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(source.splits[name].labels, digits.splits[name].labels)
  c = helpers.load_config('itq', 'features,bits=16')
  c.dataset.data_dir = out
  c.eval.topk, c.eval.pn = (50,), (10,)
  assert trainer.train_and_evaluate(c, str(tmp_path / 'itq'))['mAP'] > 0.25  # chance: 0.1


class _Killed(Exception):
  pass


def test_extract_resumes_after_an_interruption(extracted, tmp_path):
  out = str(tmp_path / 'feats')
  calls = []

  def kill_after_two_chunks(split, done, total):
    calls.append((split, done, total))
    if len(calls) == 2:
      raise _Killed

  with pytest.raises(_Killed):
    features_lib.extract(out, config=_config_for_extraction(), chunk_batches=2, on_chunk=kill_after_two_chunks)
  with open(os.path.join(out, features_format.PROGRESS)) as f:
    assert json.load(f)['rows'] == {'train': [800, 1500], 'test': [0, 297]}
  with pytest.raises(sources.DatasetUnavailableError, match='rerun the same extract_features command'):
    sources.load('features', out)
  with pytest.raises(ValueError, match="other settings .*dtype: 'float32' -> 'float16'"):
    features_lib.extract(out, config=_config_for_extraction(), dtype='float16')
  calls.clear()
  progress = features_lib.extract(
    out, config=_config_for_extraction(), chunk_batches=2, on_chunk=lambda *a: calls.append(a)
  )
  assert progress['complete'] and calls[0] == ('train', 1200, 1500)  # continued, not restarted
  want = features_lib.extract(extracted[0], config=_config_for_extraction())  # finished: returned as it is
  assert want['complete']
  for name in ('train', 'test'):
    np.testing.assert_array_equal(np.load(f'{out}/{name}_features.npy'), np.load(f'{extracted[0]}/{name}_features.npy'))
  os.makedirs(tmp_path / 'other')
  np.save(tmp_path / 'other' / 'x.npy', np.zeros(2))
  with pytest.raises(ValueError, match='already holds x.npy not written by an extraction'):
    features_lib.extract(str(tmp_path / 'other'), config=_config_for_extraction())


def test_extract_from_a_trained_run(trained_dsh, tmp_path):
  workdir, _ = trained_dsh
  out = str(tmp_path / 'feats')
  progress = features_lib.extract(out, workdir=workdir, dtype='float16')
  assert progress['width'] == 1024 and progress['weights'] == f'{workdir} step 150' and progress['dtype'] == 'float16'
  config, run, params, _ = workdir_eval.load_run(workdir)
  test = run.protocol.images[run.protocol.query[:50]]
  want = run.ctx.forward(params, run.ctx.preprocess(test, train=False), train=False, features_only=True)
  got = sources.load('features', out).splits['test'].images[np.arange(50)]
  assert got.dtype == np.float16
  np.testing.assert_allclose(got.astype(np.float32), want, rtol=2e-3, atol=2e-3)
  assert config.dataset.name == 'features'  # features of features: the MLP's last hidden layer


def test_bad_sources_fail_in_one_line(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    features_lib.extract(str(tmp_path / 'out'), workdir=str(tmp_path / 'nothing'))
  assert 'is not a hashjax workdir' in command.describe(e.value) and '\n' not in command.describe(e.value)
  with pytest.raises(ValueError, match='model autoencoder has no feature layer; models with one: .*mlp'):
    features_lib.extract(str(tmp_path / 'out'), config=helpers.load_config('autoencoder', 'quick'))
  with pytest.raises(ValueError, match='exactly one of'):
    features_lib.extract(str(tmp_path / 'out'))
  assert not os.path.exists(tmp_path / 'out')  # nothing written
