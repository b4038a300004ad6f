"""CIMON's fixed graph-feature sources (pixels, PCA) and how the two graph modes use them."""

import ml_collections
import numpy as np
import pytest

from hashjax.baselines import _common
from hashjax.methods import cimon_features
from hashjax.methods import cimon_graph
from hashjax.train import trainer
from tests import helpers


def test_pixels_pool_large_images_by_block_means():
  rng = np.random.default_rng(0)
  small = rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
  np.testing.assert_allclose(cimon_features.pixels(small), small.reshape(3, -1) / 255.0, rtol=1e-6)
  large = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
  pooled = cimon_features.pixels(large)
  assert pooled.shape == (2, 32 * 32 * 3) and pooled.dtype == np.float32
  expected = np.zeros((2, 32, 32, 3))
  for i in range(32):
    for j in range(32):
      expected[:, i, j] = large[:, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3].reshape(2, 9, 3).mean(axis=1) / 255.0
  np.testing.assert_allclose(pooled, expected.reshape(2, -1), rtol=1e-5)


def test_pca_features_are_the_top_components_of_the_chosen_images():
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8)
  indices = np.array([7, 3, 41, 12, 0, 33, 9, 20, 18, 44])
  config = ml_collections.ConfigDict(dict(graph_features='pca', graph_pca_dim=4))
  f = cimon_features.fixed_features(config, images, indices)
  x = images[indices].reshape(10, -1) / 255.0
  mean, components, _ = _common.pca(x, 4)
  np.testing.assert_allclose(f, (x - mean) @ components, atol=1e-5)
  assert f.shape == (10, 4) and f.dtype == np.float32
  assert (
    cimon_features.fixed_features(ml_collections.ConfigDict(dict(graph_features='network')), images, indices) is None
  )
  assert 'pca (4 principal components' in cimon_features.describe(config)


@pytest.mark.parametrize(
  'value,message',
  [
    (dict(graph_features='imagenet'), 'valid: network, pixels, pca'),
    (dict(graph_features='pca', graph_pca_dim=1), 'graph_pca_dim must be >= 2'),
  ],
)
def test_bad_feature_source_fails_at_build(value, message):
  c = helpers.load_config('cimon', 'quick')
  c.loss.update(value)
  with pytest.raises(ValueError, match=message):
    trainer.build(c)


def tiny_config(**loss):
  c = helpers.load_config('cimon', 'quick')
  c.num_steps, c.batch_size, c.bits, c.model.width = 3, 32, 16, 0.25
  c.augment = 'crop'
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 3, 20
  c.loss.update(loss)
  return c


def test_batch_graph_rows_come_from_the_fixed_source():
  run = trainer.build(tiny_config(graph_features='pca', graph_pca_dim=16))
  fixed = cimon_features.fixed_features(run.config.loss, run.protocol.images, run.protocol.train)
  batch = run.batches[4]
  np.testing.assert_array_equal(batch['graph_features'], fixed[np.asarray(run.batches.order[4])])
  assert 'graph_features' not in trainer.build(tiny_config(graph_features='network')).batches[0]


def test_global_graph_from_a_fixed_source_is_one_graph_for_both_views():
  c = tiny_config(graph_features='pixels')
  c.loss.graph, c.loss.threshold, c.loss.num_clusters = 'global', 0.3, 10
  c.dataset.protocol = 'per_class'
  c.dataset.protocol_args = ml_collections.ConfigDict(dict(query_per_class=10, train_per_class=24))
  run = trainer.build(c)
  blocks = run.batches.extras(np.arange(len(run.protocol.train)))
  s, w = cimon_graph.similarity_weight_matrix(
    cimon_features.pixels(run.protocol.images[run.protocol.train]), threshold=0.3, num_clusters=10, center_features=True
  )
  for key, expected in (('graph_s1', s), ('graph_s2', s), ('graph_w1', w), ('graph_w2', w)):
    np.testing.assert_array_equal(blocks[key], expected)
