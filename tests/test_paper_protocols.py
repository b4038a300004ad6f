"""The papers' evaluation settings (common.PAPER_PROTOCOLS): the published split sizes, the mAP@K each
dataset is reported at, picked by the configs' `dataset=` / `protocol=` arguments, and their use on
tiny files in the datasets' own layouts."""

import os

import ml_collections
import numpy as np
import pytest

from hashjax.config import common
from hashjax.config import validate as config_validate
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.train import trainer
from tests import helpers
from tests.test_data_formats import _cifar_pickle
from tests.test_data_formats import _rng
from tests.test_data_formats import _save
from tests.test_data_formats import _write_cifar
from tests.test_data_formats import _write_list


def _labels_only(num_classes, train_per_class, test_per_class):
  """A source with CIFAR's split sizes and class balance, 1x1 images (the protocols read labels only)."""
  splits = {}
  for split, n in (('train', train_per_class), ('test', test_per_class)):
    labels = np.random.default_rng(len(split)).permutation(np.repeat(np.arange(num_classes, dtype=np.int32), n))
    splits[split] = sources.Split(np.zeros((len(labels), 1, 1, 1), np.uint8), labels)
  return sources.Source('synthetic', splits, num_classes, 'labels only')


CIFAR10 = _labels_only(10, 5000, 1000)  # 50,000 train / 10,000 test, 6,000 a class
CIFAR100 = _labels_only(100, 500, 100)


# (query, train, database, how the sets relate) on CIFAR's 60,000 images, as published
# (reference/evaluation.md section 3; DeepHash-pytorch utils/tools.py cifar_dataset).
PUBLISHED_SIZES = {
  'cifar10_mini': (1000, 5000, 54000, 'train apart'),
  'cifar10_1': (1000, 5000, 59000, 'train inside'),
  'cifar10_2': (10000, 50000, 50000, 'database = train'),
  'cifar10_full': (10000, 50000, 50000, 'database = train'),
  'cifar10_cimon': (10000, 5000, 50000, 'train inside'),
  'cifar10_dsh': (10000, 50000, 10000, 'database = query'),
  'cifar100_full': (10000, 50000, 50000, 'database = train'),
}


@pytest.mark.parametrize('name', sorted(PUBLISHED_SIZES))
def test_cifar_protocols_have_the_published_sizes(name):
  setting = common.PAPER_PROTOCOLS[name]
  p = protocols.build(CIFAR100 if setting.dataset == 'cifar100' else CIFAR10, setting.protocol, seed=0)
  query, train, database, relation = PUBLISHED_SIZES[name]
  assert (len(p.query), len(p.train), len(p.database)) == (query, train, database)
  if relation == 'database = query':
    np.testing.assert_array_equal(p.database, p.query)
    return
  assert len(np.intersect1d(p.query, p.database)) == 0 and len(np.intersect1d(p.query, p.train)) == 0
  if relation == 'database = train':
    np.testing.assert_array_equal(p.database, p.train)
  elif relation == 'train inside':
    assert set(p.train) <= set(p.database) and len(p.query) + len(p.database) == 60000
  else:
    assert len(np.intersect1d(p.train, p.database)) == 0 and query + train + database == 60000
  if setting.protocol != 'full' and setting.dataset == 'cifar10':  # drawn per class from all 60,000
    assert set(np.bincount(p.labels[p.query])) == {query // 10}
    assert set(np.bincount(p.labels[p.train])) == {train // 10}
  if name == 'cifar10_full':  # the official split: test queries
    np.testing.assert_array_equal(p.query, np.arange(50000, 60000))


@pytest.mark.parametrize(
  'dataset,protocol,topk',
  [
    ('cifar10', 'full', ()),
    ('cifar100', 'full', ()),
    ('nus_wide_21', 'full', (5000,)),
    ('coco', 'full', (5000,)),
    ('imagenet100', 'full', (1000,)),
    ('mirflickr25k', 'full', ()),
    ('voc2012', 'full', ()),
    ('fashion_mnist', 'full', (1000,)),  # not a paper dataset: the config's own
  ],
)
@pytest.mark.parametrize('config', ['dsh', 'csq', 'itq', 'cimon', 'dlbhc'])
def test_dataset_argument_picks_the_papers_protocol_and_map_cutoff(config, dataset, protocol, topk):
  c = helpers.load_config(config, f'dataset={dataset}')
  if config == 'cimon' and dataset == 'cifar10':
    protocol = 'cimon'  # CIMON's CIFAR-10 is its paper run, in its paper's protocol
  assert (c.dataset.name, c.dataset.protocol) == (dataset, protocol)
  # () = mAP@all only (every run reports it as 'mAP'); DLBHC keeps the seed's mAP@1000 beside it.
  assert tuple(c.eval.topk) == (topk or (1000,) if config == 'dlbhc' else topk)


def test_protocol_argument_names_a_setting_and_its_dataset():
  c = helpers.load_config('dsh', 'protocol=cifar10_1')
  assert (c.dataset.name, c.dataset.protocol, tuple(c.eval.topk)) == ('cifar10', 'cifar10_1', ())
  c = helpers.load_config('dsh', 'protocol=cifar10_dsh,bits=12')
  assert (c.dataset.name, c.dataset.protocol, c.bits) == ('cifar10', 'test_vs_test', 12)
  c = helpers.load_config('itq', 'dataset=cifar10,protocol=cifar10_mini')
  assert (c.dataset.name, c.dataset.protocol) == ('cifar10', 'cifar10_mini')
  # The papers' own runs: CIMON's CIFAR-10 protocol at mAP@all; DCWH / IDCWH :paper on CIFAR-10 full,
  # or another of their settings.
  c = helpers.load_config('cimon')
  assert (c.dataset.protocol, tuple(c.eval.topk)) == ('cimon', ())
  assert helpers.load_config('cimon', 'protocol=cifar10_1').dataset.protocol == 'cifar10_1'
  assert helpers.load_config('dcwh', 'paper').dataset.protocol == 'full'
  c = helpers.load_config('idcwh', 'paper,protocol=cifar10_mini')
  assert (c.dataset.name, c.dataset.protocol, c.model.name) == ('cifar10', 'cifar10_mini', 'googlenet')
  c = helpers.load_config('dcwh', 'paper,dataset=coco')
  assert (c.dataset.name, tuple(c.eval.topk)) == ('coco', (5000,))
  # :quick keeps its own short evaluation.
  assert tuple(helpers.load_config('dsh', 'quick,dataset=cifar10').eval.topk) == (100,)
  for name, setting in common.PAPER_PROTOCOLS.items():
    assert setting.protocol in protocols.RECIPES and setting.dataset in sources.SOURCES, name
  with pytest.raises(ValueError, match="unknown protocol='cifar10-1'; valid names: cifar10_mini, cifar10_1"):
    helpers.load_config('dsh', 'protocol=cifar10-1')
  with pytest.raises(ValueError, match=r'protocol=cifar10_1 is a cifar10 protocol, not one of coco \(coco\)'):
    helpers.load_config('dlbhc', 'dataset=coco,protocol=cifar10_1')
  with pytest.raises(ValueError, match='stl10 is a complete setting'):
    helpers.load_config('cimon', 'stl10,protocol=cifar10_1')


def test_cifar_protocol_on_tiny_pickles(tmp_path):
  """The presets' recipes on a tiny CIFAR-10 archive (12 images a class: 90 train, 30 test), with
  scaled-down per-class counts (2 query, 3 train) through `dataset.protocol_args`."""
  rng = _rng(11)
  labels = rng.permutation(np.repeat(np.arange(10), 12))
  images = rng.integers(0, 256, (120, 32, 32, 3), np.uint8)
  files = {
    'data_batch_1': _cifar_pickle(images[:50], labels=labels[:50]),
    'data_batch_2': _cifar_pickle(images[50:90], labels=labels[50:90]),
    'test_batch': _cifar_pickle(images[90:], labels=labels[90:]),
  }
  archive = _write_cifar(str(tmp_path), files, 'cifar-10-batches-py', 'cifar-10-python.tar.gz')
  sizes = {'cifar10_mini': (20, 30, 70), 'cifar10_1': (20, 30, 100), 'cifar10_2': (20, 30, 30)}
  for name, want in sizes.items():
    c = helpers.load_config('dsh', f'protocol={name}')
    c.dataset.data_dir = archive
    c.dataset.protocol_args = ml_collections.ConfigDict(dict(query_per_class=2, train_per_class=3))
    p = trainer.load_protocol(c)
    assert (len(p.query), len(p.train), len(p.database)) == want, name
    assert set(np.bincount(p.labels[p.query])) == {2} and set(np.bincount(p.labels[p.train])) == {3}
    np.testing.assert_array_equal(p.images[p.query[:3]], images[p.query[:3]])  # the pool: train then test
  c = helpers.load_config('dsh', 'dataset=cifar10')
  c.dataset.data_dir = archive
  p = trainer.load_protocol(c)
  assert (len(p.query), len(p.train), len(p.database)) == (30, 90, 90)


def _nus_wide_lists(root, sizes=(('train', 8), ('test', 4), ('database', 12))):
  rng = _rng(12)
  for split, n in sizes:
    rows = []
    for i in range(n):
      rel = f'images/{split}_{i}.png'
      _save(os.path.join(root, rel), rng.integers(0, 256, (10, 12, 3), np.uint8))
      rows.append((rel, np.eye(21, dtype=int)[i % 3] + np.eye(21, dtype=int)[20]))
    _write_list(os.path.join(root, f'{split}.txt'), rows)


def test_list_dataset_trains_with_its_papers_map_cutoff_and_states_its_weights(tmp_path):
  """configs/dsh.py:dataset=nus_wide_21 on tiny DeepHash-pytorch lists: the lists' own split, mAP@5000,
  and final_metrics.json naming the weights (none here)."""
  root = str(tmp_path / 'nus')
  _nus_wide_lists(root)
  c = helpers.load_config('dsh', 'dataset=nus_wide_21,bits=16')
  c.dataset.data_dir = root
  c.dataset.decode_size = 16
  c.model.width = 0.25
  c.update(batch_size=8, num_epochs=0, num_steps=2, log_every_steps=1)
  c.checkpoint.every_steps = 2
  c.eval.update(pn=(5,), batch_size=64)
  config_validate.validate(c)
  final = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert final['step'] == 2 and 0 <= final['mAP@5000'] <= 1 and 'mAP@1000' not in final
  assert final['weights'] == 'none (random init)'
  with open(tmp_path / 'run' / 'protocol.json') as f:
    assert '"train": 8' in f.read()
