"""Per-process input: images read record by record when indexed (hashjax/data/lazy_images.py), so
each process decodes only its rows of every batch; a lazy dataset trains exactly as in memory."""

import jax
import numpy as np
import pytest

from hashjax.data import lazy_images
from hashjax.data import pipeline
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers


class CountingRecords:
  """A random-access record source (as tfds.data_source) that remembers which records were read."""

  def __init__(self, images, labels):
    self.images, self.labels, self.read = images, labels, []

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    self.read.append(i)
    return {'image': self.images[i][..., 0], 'label': self.labels[i]}  # grey, no channel axis, as tfds mnist


def _lazy_digits():
  """The digits source with every split behind CountingRecords; returns (source, records by split)."""
  digits = sources.load_digits()
  records = {name: CountingRecords(s.images, s.labels) for name, s in digits.splits.items()}
  splits = {name: sources.split_from_records(r) for name, r in records.items()}
  for r in records.values():
    r.read.clear()  # labels and the first image's shape were read
  return sources.Source('digits', splits, 10, 'lazy digits'), records


def test_lazy_images_index_like_numpy():
  rng = np.random.default_rng(0)
  a, b = rng.integers(0, 255, (7, 4, 5, 1), np.uint8), rng.integers(0, 255, (5, 4, 5, 1), np.uint8)
  lazy = lazy_images.concatenate([lazy_images.LazyImages.from_records([{'image': x} for x in a]), b])
  whole = np.concatenate([a, b])
  assert lazy.shape == whole.shape and lazy.dtype == np.uint8 and lazy.ndim == 4 and len(lazy) == 12
  for index in (3, 9, slice(2, 11, 3), np.array([11, 0, 7]), np.array([[1, 8], [10, 2]]), whole[:, 0, 0, 0] > 99):
    np.testing.assert_array_equal(lazy[index], whole[index])
  view = lazy_images.take(lazy, np.array([10, 4, 6]))
  assert isinstance(view, lazy_images.LazyImages)
  np.testing.assert_array_equal(np.asarray(view), whole[[10, 4, 6]])
  np.testing.assert_array_equal(view[::2], whole[[10, 6]])
  np.testing.assert_array_equal(lazy.reshape(12, -1), whole.reshape(12, -1))
  with pytest.raises(ValueError, match='different shapes'):
    lazy_images.concatenate([lazy, rng.integers(0, 255, (2, 3, 3, 1), np.uint8)])


@pytest.mark.parametrize('process', (0, 1))
def test_each_process_reads_only_its_rows(monkeypatch, process):
  source, records = _lazy_digits()
  protocol = protocols.build(source, 'full')
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  monkeypatch.setattr(jax, 'process_index', lambda: process)
  batches = pipeline.TrainBatches(protocol.images, protocol.labels, protocol.train, 64, seed=0)
  batch = batches[5]
  # The pool is train then test: the training set's pool indices are the train split's records.
  mine = batches.global_indices(5)[32 * process : 32 * (process + 1)]
  assert sorted(records['train'].read) == sorted(mine) and not records['test'].read
  memory = protocols.build(sources.load_digits(), 'full')
  np.testing.assert_array_equal(batch['image'], memory.images[mine])
  records['train'].read.clear()
  # Evaluation: this process's half of every fixed-size batch (the last one padded by repetition).
  got = [local for local, _ in pipeline.eval_batches(protocol.images, protocol.database, 100)]
  want = [local for local, _ in pipeline.eval_batches(memory.images, memory.database, 100)]
  for g, w in zip(got, want, strict=True):
    np.testing.assert_array_equal(g, w)
  assert len(records['train'].read) == 50 * len(got)


def test_lazy_dataset_trains_as_in_memory(tmp_path, monkeypatch):
  config = helpers.tiny_dsh_config(num_steps=3)
  in_memory = trainer.train_and_evaluate(config, str(tmp_path / 'memory'))
  monkeypatch.setitem(sources.SOURCES, 'digits', lambda data_dir=None, lazy=False: _lazy_digits()[0])
  lazy = trainer.train_and_evaluate(
    helpers.tiny_dsh_config(num_steps=3, **{'dataset.reads': 'per_process'}), str(tmp_path / 'lazy')
  )
  assert lazy['mAP'] == in_memory['mAP']
  (p1, _), (p2, _) = (
    checkpoint.load_params(str(tmp_path / d), trainer.build(config).state.params) for d in ('memory', 'lazy')
  )
  jax.tree.map(np.testing.assert_array_equal, p1, p2)


def test_unknown_reads_mode_names_the_valid_ones(tmp_path):
  with pytest.raises(ValueError, match='dataset.reads.*auto, memory, per_process'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(**{'dataset.reads': 'mmap'}), str(tmp_path))
