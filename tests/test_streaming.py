"""The streaming input (hashjax/data/streaming.py): decoding workers give exactly the batches of the
in-process path, a resumed feed the batches of the uninterrupted one, processes disjoint shares,
only the batch's images are read, and bad images / dead workers end the run with one clear line."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from hashjax.data import lazy_images
from hashjax.data import pipeline
from hashjax.data import sources
from hashjax.data import streaming
from hashjax.parallel import sharding
from tests import helpers

CLASSES, PER_CLASS, SIZE = 3, 12, 20


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """An image_folder dataset: train/ and test/ of 3 classes, JPEGs of different sizes."""
  root = tmp_path_factory.mktemp('images')
  rng = np.random.default_rng(0)
  for split, count in (('train', PER_CLASS), ('test', 4)):
    for c in range(CLASSES):
      os.makedirs(root / split / f'class{c}')
      for i in range(count):
        h, w = rng.integers(24, 40, 2)
        pixels = (rng.random((h, w, 3)) * 60 + 80 * c).astype(np.uint8)
        Image.fromarray(pixels).save(root / split / f'class{c}' / f'{i}.jpg', quality=90)
  return str(root)


def _train_batches(folder, batch_size=8, seed=0, **kwargs):
  source = sources.load('image_folder', folder, decode_size=SIZE)
  split = source.splits['train']
  return pipeline.TrainBatches(split.images, split.labels, np.arange(len(split.labels)), batch_size, seed, **kwargs)


def _host(batch):
  return {k: np.asarray(v) for k, v in batch.items()}


def _assert_same(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


def test_workers_give_the_batches_of_the_in_process_path_and_resume_exactly(folder):
  batches = _train_batches(folder)
  assert isinstance(batches.images, lazy_images.LazyImages)
  mesh = sharding.make_mesh(2)
  data = sharding.data_sharding(mesh)
  expected = [_host(pipeline.to_global(batches[s], data)) for s in range(7)]
  with streaming.Feed(batches, 0, 7, data, workers=2, prefetch=2) as feed:
    assert feed.streaming and feed.workers == 2
    got = [_host(b) for b in feed]
  for a, b in zip(got, expected):
    _assert_same(a, b)
  assert len(got) == 7 and feed.wait_seconds > 0
  # A run resumed at step 4 reads exactly the batches 4, 5, 6 of the uninterrupted one.
  with streaming.Feed(batches, 4, 7, data, workers=0) as resumed:
    for a, b in zip(resumed, expected[4:]):
      _assert_same(_host(a), b)


def test_in_memory_datasets_keep_the_plain_path():
  images = np.arange(40 * 2 * 2 * 1, dtype=np.uint8).reshape(40, 2, 2, 1)
  batches = pipeline.TrainBatches(images, np.arange(40), np.arange(40), 8, seed=1)
  data = sharding.data_sharding(sharding.make_mesh(1))
  with streaming.Feed(batches, 0, 3, data, workers=4) as feed:
    assert not feed.streaming and feed.workers == 0
    for step, batch in enumerate(feed):
      np.testing.assert_array_equal(batch['image'], images[batches.global_indices(step)])


def test_processes_read_disjoint_shares_of_every_global_batch_and_only_those_images(folder):
  batches = _train_batches(folder, batch_size=12)
  reads = []
  images = batches.images
  counting = lazy_images.LazyImages(
    lambda i: reads.append(int(i)) or images.read_one(i), np.arange(len(images)), images.shape[1:]
  )
  reader = batches.reader()
  shares = [pipeline.BatchReader(counting, reader.labels, reader.indices, reader.order, p, 3)(5) for p in range(3)]
  together = np.concatenate([s['image'] for s in shares])
  np.testing.assert_array_equal(together, images[batches.global_indices(5)])
  np.testing.assert_array_equal(sorted(reads), sorted(batches.global_indices(5)))  # the batch's 12, each once
  assert len(reads) == 12 < len(images)


def test_an_unreadable_image_names_its_file_or_is_skipped_and_counted(folder, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top

  broken = str(tmp_path / 'broken')
  shutil.copytree(folder, broken)
  victim = os.path.join(broken, 'train', 'class1', '3.jpg')
  with open(victim, 'r+b') as f:
    f.truncate(50)
  data = sharding.data_sharding(sharding.make_mesh(1))
  steps = 2 * CLASSES * PER_CLASS // 8  # two epochs (the 4 images past the last whole batch change)
  with pytest.raises(ValueError, match=r'class1/3\.jpg .*cannot decode the image'):
    with streaming.Feed(_train_batches(broken), 0, steps, data, workers=2) as feed:
      for _ in feed:
        pass
  with streaming.Feed(_train_batches(broken, skip_unreadable=True), 0, steps, data, workers=0) as feed:
    assert all(b['image'].shape == (8, SIZE, SIZE, 3) for b in feed)
  assert feed.skipped >= 1


class _DiesInAWorker:
  """A reader that ends its process (as an out-of-memory kill would) when it reaches step 2."""

  def __init__(self, reader):
    self.reader = reader

  def __call__(self, step):
    if int(step) == 2:
      os._exit(9)
    return self.reader(step)


def test_a_dead_worker_ends_the_feed_with_an_error_not_a_stall(folder, monkeypatch):
  batches = _train_batches(folder)
  reader = batches.reader()
  monkeypatch.setattr(batches, 'reader', lambda: _DiesInAWorker(reader))
  data = sharding.data_sharding(sharding.make_mesh(1))
  with pytest.raises(Exception):  # grain's error for the dead worker, raised in the loop
    with streaming.Feed(batches, 0, 6, data, workers=2) as feed:
      for _ in feed:
        pass


def test_training_streams_and_logs_the_input_wait_and_the_throughput_command(folder, tmp_path):
  from hashjax.train import trainer  # pylint: disable=g-import-not-at-top

  config = helpers.tiny_dsh_config(num_steps=4, image_size=16)
  config.dataset.update(name='image_folder', data_dir=folder, decode_size=SIZE, workers=0)  # (spawns cost seconds)
  config.normalize = 'imagenet'  # the dataset's own statistics would decode 10k images first
  final = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert final['step'] == 4 and np.isfinite(final['mAP'])
  rows = [json.loads(line) for line in open(tmp_path / 'run' / 'metrics.jsonl')]
  waits = [r['input_wait_fraction'] for r in rows if r['split'] == 'train']
  assert waits and all(0 <= w <= 1 for w in waits)
  out = subprocess.run(
    [
      sys.executable,
      '-m',
      'hashjax.data.throughput',
      '--config',
      'configs/dsh.py:quick',
      '--batches',
      '3',
      '--skip',
      '1',
      '--config.dataset.name=image_folder',
      f'--config.dataset.data_dir={folder}',
      f'--config.dataset.decode_size={SIZE}',
      '--config.dataset.workers=1',
      '--config.batch_size=8',
    ],
    cwd=helpers.ROOT,
    env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=helpers.ROOT),
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'leaked shared_memory' not in out.stderr  # grain's last unlinks finish before exit
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['streaming'] and result['workers'] == 1 and result['batches'] == 3 and result['images_per_s'] > 0
  assert jax.device_count() == 8  # (the test process's simulated devices are untouched)


def test_a_decode_cache_decodes_each_image_once_and_gives_the_same_batches(folder, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top

  copy = str(tmp_path / 'copy')
  shutil.copytree(folder, copy)
  plain = sources.load('image_folder', copy, decode_size=SIZE).splits['train']
  cached = sources.load('image_folder', copy, decode_size=SIZE, cache_dir=str(tmp_path / 'cache')).splits['train']
  n = len(plain.labels)
  batches = pipeline.TrainBatches(cached.images, cached.labels, np.arange(n), 9, seed=0)
  data = sharding.data_sharding(sharding.make_mesh(1))
  with streaming.Feed(batches, 0, n // 9, data, workers=2) as feed:  # one epoch, decoded by two workers
    first = [_host(b) for b in feed]
  for step, batch in enumerate(first):
    np.testing.assert_array_equal(batch['image'], plain.images[batches.global_indices(step)])
  # Every image read in that epoch now comes from the cache: overwriting the files changes none of them.
  decoded = plain.images[np.arange(n)]
  seen = np.unique(np.concatenate([batches.global_indices(s) for s in range(n // 9)]))
  for path in cached.images._read.reader.paths:  # pylint: disable=protected-access
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(path)
  again = sources.load('image_folder', copy, decode_size=SIZE, cache_dir=str(tmp_path / 'cache')).splits['train']
  np.testing.assert_array_equal(again.images[seen], decoded[seen])
  assert not plain.images[seen[0]].any()  # (the files did change: an uncached read sees the new zeros)
