"""The STL-10 study: `python -m hashjax.classify` on a trained run's frozen codes, the sets it uses,
and the configs/cimon.py:stl10 setting (its data cannot be fetched offline: only the clear error)."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from hashjax import classify
from hashjax import models
from hashjax.analysis import code_classifier
from hashjax.config import validate as config_validate
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.train import trainer
from tests import helpers


@pytest.fixture(scope='module')
def cimon_run(tmp_path_factory):
  """configs/cimon.py:quick cut to a few steps of a small network: a workdir with a checkpoint."""
  workdir = str(tmp_path_factory.mktemp('cimon_run'))
  c = helpers.load_config('cimon', 'quick')
  c.num_steps, c.batch_size, c.bits, c.model.width = 6, 32, 32, 0.25
  c.log_every_steps = c.checkpoint.every_steps = 6
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 2, 10
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 512
  trainer.train_and_evaluate(c, workdir)
  return workdir


def test_classify_run_writes_metrics_and_figures(cimon_run, capsys):
  assert classify.main(['--workdir', cimon_run, '--epochs', '12', '--hidden', '64', '--lr', '3e-3']) == 0
  assert 'test accuracy MLP' in capsys.readouterr().out
  with open(os.path.join(cimon_run, 'classify_metrics.json')) as f:
    m = json.load(f)
  assert (m['train_images'], m['test_images'], m['bits'], m['num_classes']) == (1500, 297, 32, 10)
  for name in ('mlp', 'linear'):
    assert 0 <= m[name]['test_accuracy'] <= 1 and 0 <= m[name]['train_accuracy'] <= 1
    assert len(m[name]['curves']['train_loss']) == len(m[name]['curves']['test_accuracy']) == 12
  assert m['mlp']['hidden'] == 64 and m['linear']['hidden'] == 0
  # 32 bits of a barely trained network still separate digits far above chance (0.1).
  assert m['mlp']['test_accuracy'] > 3 * m['chance']
  for name in ('classify_metrics.json', 'classify_curves.png', 'codes_pca.png'):
    assert os.path.getsize(os.path.join(cimon_run, name)) > 0


def test_workdir_without_checkpoint_is_one_clear_line(cimon_run, tmp_path, capsys):
  shutil.copy(os.path.join(cimon_run, 'config.json'), tmp_path)
  assert classify.main(['--workdir', str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert '\n' not in err and 'has no checkpoint' in err and 'python -m hashjax.main' in err
  assert classify.main(['--workdir', str(tmp_path / 'nothing')]) == 2
  assert 'not a hashjax workdir' in capsys.readouterr().err


def toy_source():
  rng = np.random.default_rng(0)
  split = lambda n, labelled: sources.Split(
    rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8),
    rng.integers(0, 3, n).astype(np.int32) if labelled else np.full(n, -1, np.int32),
  )
  return sources.Source(
    'toy', {'train': split(30, True), 'test': split(12, True), 'unlabelled': split(50, False)}, 3, 'toy'
  )


def test_classification_sets():
  source = toy_source()
  # 'unlabelled' (STL-10): train on unlabelled images; classify with the labelled train split vs test.
  p = protocols.build(source, 'unlabelled', seed=1, train_size=20)
  assert len(p.train) == 20 and np.all(p.labels[p.train] == -1) and len(p.images) == 30 + 12 + 20
  train_idx, test_idx, _ = code_classifier.classification_sets(p)
  np.testing.assert_array_equal(train_idx, p.database)
  np.testing.assert_array_equal(test_idx, p.query)
  np.testing.assert_array_equal(p.images[p.query], source.splits['test'].images)
  # test_vs_test: every database image is a query, so the (labelled) training images trainer.
  p = protocols.build(source, 'test_vs_test')
  train_idx, test_idx, _ = code_classifier.classification_sets(p)
  assert not set(train_idx) & set(test_idx)
  assert np.all(p.labels[train_idx] >= 0) and len(train_idx) == 30  # the train split; unlabelled images never
  with pytest.raises(ValueError, match='train_size must be in'):
    protocols.build(source, 'unlabelled', train_size=51)


def test_fit_learns_separable_codes():
  rng = np.random.default_rng(0)
  centers = np.where(rng.random((4, 24)) < 0.5, -1.0, 1.0)
  y = rng.integers(0, 4, 600)
  flips = np.where(rng.random((600, 24)) < 0.1, -1.0, 1.0)  # 10% of the bits flipped
  x = (centers[y] * flips).astype(np.float32)
  for hidden in (0, 32):
    r = code_classifier.fit(
      x[:400], y[:400], x[400:], y[400:], num_classes=4, hidden=hidden, epochs=10, lr=1e-2, batch_size=64
    )
    assert r['test_accuracy'] > 0.95 and r['curves']['train_loss'][-1] < r['curves']['train_loss'][0]


def test_stl10_config_validates_and_names_the_missing_dataset(tmp_path):
  c = helpers.load_config('cimon', 'stl10')
  with pytest.raises(ValueError, match='python -m hashjax.weights convert --arch vgg11_bn'):
    config_validate.validate(c)  # the student run fine-tunes ImageNet weights: required
  c.model.pretrained = 'none'
  config_validate.validate(c)
  assert (c.dataset.name, c.dataset.protocol, c.dataset.protocol_args.train_size) == ('stl10', 'unlabelled', 20000)
  assert (c.batch_size, c.bits, c.loss.graph, c.loss.num_clusters, c.loss.threshold) == (256, 128, 'batch', 5, 0.3)
  assert (c.model.name, c.model.head_activation, c.model.head_dropout) == ('vgg11_bn', 'tanh', 0.5)
  # The network builds at STL-10's 96 x 96 (at 1/8 of the channels, to stay fast).
  model = c.model.copy_and_resolve_references()
  model.width = 0.125
  models.build(model, c.bits, (96, 96, 3), jax.random.key(0))
  c.dataset.data_dir = str(tmp_path)  # an empty folder: never a prepared copy
  with pytest.raises(sources.DatasetUnavailableError, match='python -m hashjax.prepare_data stl10'):
    trainer.load_protocol(c)
  with pytest.raises(ValueError, match='stl10 is a complete setting'):
    helpers.load_config('cimon', 'stl10,graph=global')
