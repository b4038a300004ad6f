"""The `features` dataset (npz / npy, memory-mapped, multi-hot, protocols, bad files), feature
views, the `mlp` models and the training-free baselines on feature vectors."""

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import ml_collections
import ml_dtypes
import numpy as np
import pytest

from hashjax import baselines
from hashjax import models
from hashjax.data import feature_rows
from hashjax.data import feature_views
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.data.formats import features as features_format
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.metrics import retrieval_metrics
from hashjax.train import trainer
from tests import helpers

RNG = np.random.default_rng(0)
SIZES = {'train': 60, 'test': 20, 'database': 30}


def _split(n, d=6, classes=3, dtype=np.float32):
  labels = np.arange(n) % classes
  return (np.eye(classes, d)[labels] * 3 + RNG.standard_normal((n, d))).astype(dtype), labels.astype(np.int64)


def _write(directory, kind='npz', dtype=np.float32, splits=SIZES, multi_hot=False):
  os.makedirs(directory, exist_ok=True)
  out = {}
  for name, n in splits.items():
    x, y = _split(n, dtype=dtype)
    if multi_hot:
      y = np.eye(3, dtype=np.uint8)[y] | np.eye(3, dtype=np.uint8)[(y + 1) % 3] * (np.arange(n)[:, None] % 2)
    if kind == 'npz':
      np.savez(os.path.join(directory, f'{name}.npz'), features=x, labels=y)
    else:
      np.save(os.path.join(directory, f'{name}_features.npy'), x)
      np.save(os.path.join(directory, f'{name}_labels.npy'), y)
    out[name] = (x, y)
  return out


@pytest.mark.parametrize('kind', ['npz', 'npy'])
def test_npz_and_npy_pairs_are_memory_mapped_splits(tmp_path, kind):
  written = _write(tmp_path, kind)
  source = sources.load('features', str(tmp_path))
  assert list(source.splits) == ['train', 'test', 'database'] and source.num_classes == 3
  for name, (x, y) in written.items():
    rows = source.splits[name].images
    assert isinstance(rows, feature_rows.FeatureRows) and isinstance(rows._parts[0], np.memmap)
    np.testing.assert_array_equal(np.asarray(rows), x)
    np.testing.assert_array_equal(source.splits[name].labels, y)
  # The pool of a protocol is a view over the three memory maps: gathers read only the rows asked for.
  p = protocols.build(source, 'full')
  assert isinstance(p.images, feature_rows.FeatureRows) and p.is_features
  pool = np.concatenate([written[s][0] for s in SIZES])
  ids = np.array([105, 3, 61, 79, 80, 3])
  np.testing.assert_array_equal(p.images[ids], pool[ids])
  np.testing.assert_array_equal(p.images[ids.reshape(2, 3)], pool[ids].reshape(2, 3, -1))
  np.testing.assert_array_equal(p.images[90:], pool[90:])
  np.testing.assert_array_equal(p.images.subset(p.query)[[1, 0]], pool[p.query][[1, 0]])
  assert p.images[7].shape == (6,)
  np.testing.assert_array_equal(p.query, np.arange(60, 80))  # full: test queries vs the database split
  np.testing.assert_array_equal(p.database, np.arange(80, 110))


def test_every_protocol_applies(tmp_path):
  _write(tmp_path, splits={'train': 120, 'test': 30})
  source = sources.load('features', str(tmp_path))
  val = protocols.build(source, 'validation')
  assert len(val.query) == 20 and np.array_equal(val.train, val.database) and val.query.max() < 120
  per_class = protocols.build(source, 'per_class', query_per_class=5, train_per_class=20)
  assert len(per_class.query) == 15 and len(per_class.train) == 60
  split = protocols.build(source, 'random_split', query_size=10, train_size=50)
  assert len(split.query) == 10 and len(split.train) == 50
  assert len(protocols.build(source, 'test_vs_test').database) == 30


def test_float16_bfloat16_and_multi_hot(tmp_path):
  _write(tmp_path / 'f16', dtype=np.float16, multi_hot=True)
  source = sources.load('features', str(tmp_path / 'f16'))
  assert source.splits['train'].images.dtype == np.float16 and source.num_classes == 3
  assert source.splits['train'].labels.shape == (60, 3) and source.splits['train'].labels[1].sum() == 2
  written = _write(tmp_path / 'bf16', 'npy', dtype=ml_dtypes.bfloat16)  # np.save stores it as '<V2'
  rows = sources.load('features', str(tmp_path / 'bf16')).splits['test'].images
  assert rows.dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(np.asarray(rows, np.float32), written['test'][0].astype(np.float32))


def _expect_error(tmp_path, message, error=ValueError):
  with pytest.raises(error) as e:
    sources.load('features', str(tmp_path))
  assert message in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_bad_files_fail_in_one_line_naming_the_file_and_the_fix(tmp_path):
  _write(tmp_path, 'npy', splits={'train': 10, 'test': 5})
  np.save(tmp_path / 'test_labels.npy', np.zeros(4, np.int64))
  _expect_error(tmp_path, 'test_features.npy has 5 rows but')
  np.save(tmp_path / 'test_labels.npy', np.zeros(5, np.int64))
  bad = np.ones((5, 6), np.float32)
  bad[3, 2] = np.inf
  np.save(tmp_path / 'test_features.npy', bad)
  _expect_error(tmp_path, 'test_features.npy holds non-finite values (NaN or inf; the first in row 3)')
  np.save(tmp_path / 'test_features.npy', np.ones((5, 7), np.float32))
  _expect_error(tmp_path, 'test_features.npy has 7 features per row but')
  np.save(tmp_path / 'test_features.npy', np.ones((5, 6), np.int32))
  _expect_error(tmp_path, 'features must be float16, bfloat16, float32 or float64')
  os.remove(tmp_path / 'test_labels.npy')
  _expect_error(tmp_path, 'test_labels.npy is missing', sources.DatasetUnavailableError)
  os.remove(tmp_path / 'test_features.npy')
  _expect_error(tmp_path, 'no test split in', sources.DatasetUnavailableError)
  x, y = _split(5)
  np.savez_compressed(tmp_path / 'test.npz', features=x, labels=y)
  _expect_error(
    tmp_path, 'is compressed (np.savez_compressed), which cannot be memory-mapped: re-save it with np.savez'
  )
  np.savez(tmp_path / 'test.npz', feats=x, labels=y)
  _expect_error(tmp_path, "has no 'features' array")
  np.save(tmp_path / 'test_features.npy', x)
  _expect_error(tmp_path, 'holds both test.npz and test_*.npy')
  with pytest.raises(sources.DatasetUnavailableError, match='set --config.dataset.data_dir'):
    sources.load('features', None)


def test_unfinished_extraction_is_refused(tmp_path):
  _write(tmp_path, 'npy')
  progress = {'complete': False, 'rows': {'train': [20, 60], 'test': [0, 20]}}
  (tmp_path / features_format.PROGRESS).write_text(json.dumps(progress))
  _expect_error(tmp_path, 'rerun the same extract_features command', sources.DatasetUnavailableError)
  (tmp_path / features_format.PROGRESS).write_text(json.dumps({**progress, 'complete': True}))
  sources.load('features', str(tmp_path))


def test_npz_member_offsets_survive_zip64_headers(tmp_path):
  x, y = _split(7)
  with zipfile.ZipFile(tmp_path / 'train.npz', 'w', zipfile.ZIP_STORED) as z:  # as np.savez: zip64 extras
    for name, array in (('labels', y), ('features', x)):
      with z.open(f'{name}.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, array)
  np.savez(tmp_path / 'test.npz', features=x, labels=y)
  np.testing.assert_array_equal(np.asarray(sources.load('features', str(tmp_path)).splits['train'].images), x)


def test_normalization_is_feature_standardisation_not_pixels(tmp_path):
  written = _write(tmp_path, splits={'train': 60, 'test': 20})
  p = protocols.build(sources.load('features', str(tmp_path)), 'full')
  mean, std = trainer.normalization('dataset', p)
  np.testing.assert_allclose(mean, written['train'][0].mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(std, written['train'][0].std(0) + 1e-6, rtol=1e-5)
  mean, std = trainer.normalization('none', p)
  assert not mean.any() and (std == 1).all()
  with pytest.raises(ValueError, match="normalize='imagenet' is for images"):
    trainer.normalization('imagenet', p)


def test_feature_views():
  x = jnp.asarray(RNG.standard_normal((64, 40)), jnp.float32)
  key = jax.random.key(1)
  views = jax.jit(feature_views.views, static_argnames=('dropout', 'noise', 'mix'))
  same = views(x, key, dropout=0.0, noise=0.0, mix=0.0)
  np.testing.assert_array_equal(same, x)
  dropped = np.asarray(views(x, key, dropout=0.25, noise=0.0, mix=0.0))
  zero = dropped == 0
  assert 0.18 < zero.mean() < 0.32
  np.testing.assert_allclose(dropped[~zero], np.asarray(x)[~zero] / 0.75, rtol=1e-6)
  noisy = np.asarray(views(x, key, dropout=0.0, noise=0.5, mix=0.0)) - np.asarray(x)
  assert 0.45 < noisy.std() < 0.55
  mixed = np.asarray(views(x, key, dropout=0.0, noise=0.0, mix=0.3))
  assert 0 < np.abs(mixed - np.asarray(x)).mean() < np.abs(np.asarray(x)).mean()
  np.testing.assert_array_equal(mixed, views(x, key, dropout=0.0, noise=0.0, mix=0.3))  # seeded
  strengths = ml_collections.ConfigDict(dict(mix=0.0, dropout=0.0, noise=0.0))
  with pytest.raises(ValueError, match='is an image augmentation'):
    feature_views.check('crop', strengths)
  with pytest.raises(ValueError, match='makes identical views'):
    feature_views.check('feature_views', strengths)


def _model(name, **kwargs):
  config = ml_collections.ConfigDict(dict(name=name, **kwargs))
  graphdef, params = models.build(config, 16, (40,), jax.random.key(0), num_classes=3)
  return (
    graphdef,
    params,
    jax.jit(models.make_forward(graphdef), static_argnames=('train', 'with_features', 'features_only')),
  )


def test_mlp_model():
  x = jnp.asarray(RNG.standard_normal((8, 40)), jnp.float32)
  graphdef, params, forward = _model('mlp', hidden=(32, 24), activation='gelu', dropout=0.5, norm='layer')
  assert [params['body']['layers'][i]['kernel'].shape for i in (0, 1)] == [(40, 32), (32, 24)]
  assert 'scale' in params['body']['norms'][0]
  codes = forward(params, x, train=False)
  assert codes.shape == (8, 16) and codes.dtype == jnp.float32
  features, same = forward(params, x, train=False, with_features=True)
  assert features.shape == (8, 24)
  np.testing.assert_array_equal(same, codes)
  np.testing.assert_array_equal(forward(params, x, train=False, features_only=True), features)
  trained = forward(params, x, train=True, rng=jax.random.key(3))
  assert not np.allclose(trained, codes)  # dropout is on in training
  np.testing.assert_array_equal(trained, forward(params, x, train=True, rng=jax.random.key(3)))
  _, linear, forward = _model('mlp', hidden=(), head_activation='tanh')
  assert set(linear) == {'head'} and np.abs(forward(linear, x, train=False)).max() < 1
  np.testing.assert_array_equal(forward(linear, x, train=False, features_only=True), x)  # features = input
  _, dlbhc, forward = _model('dlbhc_mlp', hidden=(32,), num_classes=0)
  out = forward(dlbhc, x, train=False)
  assert out['latent'].shape == (8, 16) and out['logits'].shape == (8, 3)
  assert ((out['latent'] > 0) & (out['latent'] < 1)).all()
  for bad, message in (
    (dict(hidden=(0,)), 'positive integer widths'),
    (dict(activation='relu6'), 'valid: relu, gelu, silu, tanh'),
    (dict(norm='batch'), 'valid: none, layer, rms'),
    (dict(dropout=1.0), r'\[0, 1\)'),
  ):
    with pytest.raises(ValueError, match=message):
      _model('mlp', **bad)


def test_new_baselines():
  x = RNG.standard_normal((200, 10)) * np.arange(1, 11)  # variance grows with the column
  sign = baselines.get('sign')(x, 4)
  np.testing.assert_array_equal(np.flatnonzero(sign.projection.any(1)), [6, 7, 8, 9])  # the most variable
  np.testing.assert_array_equal(sign.encode(x), np.where(x[:, 6:] >= x[:, 6:].mean(0), 1, -1))
  orth = baselines.get('orth_lsh')(x, 6, seed=3)
  np.testing.assert_allclose(orth.projection.T @ orth.projection, np.eye(6), atol=1e-12)
  assert not np.allclose(orth.projection, baselines.get('orth_lsh')(x, 6, seed=4).projection)
  for name in ('sign', 'orth_lsh'):
    with pytest.raises(ValueError, match='bits <= feature dim'):
      baselines.get(name)(x, 11)
    rebuilt = baselines.from_arrays(baselines.get(name)(x, 5).to_arrays())
    np.testing.assert_array_equal(rebuilt.encode(x), baselines.get(name)(x, 5).encode(x))


@pytest.mark.parametrize('name', ['itq', 'sign'])
def test_baselines_read_the_features_dataset(tmp_path, name):
  _write(tmp_path / 'data', dtype=np.float16, splits={'train': 90, 'test': 30})
  config = helpers.load_config(name, 'features,bits=4')
  config.dataset.data_dir = str(tmp_path / 'data')
  config.eval.topk, config.eval.pn = (20,), (5,)
  got = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  p = trainer.load_protocol(config)
  x = np.asarray(p.images, np.float64)
  encoder = baselines.get(name)(x[p.train], 4)
  want = retrieval_metrics(
    pack_codes(encoder.encode(x[p.query])),
    p.labels[p.query],
    pack_codes(encoder.encode(x[p.database])),
    p.labels[p.database],
    bits=4,
    topk=(20,),
    pn=(5,),
  )
  assert got['mAP'] == pytest.approx(want['mAP'], rel=1e-12) and got['mAP'] > 0.6  # chance: 1/3
  assert 'feature vectors memory-mapped from' in got['fit_on']
