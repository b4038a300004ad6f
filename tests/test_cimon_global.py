"""CIMON graph=global: the official host-side graph, its per-batch blocks, and the sharded step."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy.spatial.distance import pdist
from scipy.spatial.distance import squareform

from hashjax.methods import cimon
from hashjax.methods import cimon_graph
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers


def test_host_weights_agree_with_jnp_weights():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(4, 16))
  f = (centers[rng.integers(0, 4, 60)] + 0.8 * rng.normal(size=(60, 16))).astype(np.float32)
  d = np.asarray(cimon.cosine_distance(jnp.asarray(f)))
  expected, _ = cimon.confidence_weights(jnp.asarray(d), 0.3)
  np.testing.assert_allclose(cimon_graph.confidence_weights(d.astype(np.float64), 0.3), np.asarray(expected), atol=2e-5)

  s, w = cimon_graph.similarity_weight_matrix(f, threshold=0.3, num_clusters=4)
  d64 = squareform(pdist(f.astype(np.float64), 'cosine'))
  np.testing.assert_array_equal(s, np.where(d64 <= 0.3, 1.0, -1.0))
  w1 = cimon_graph.confidence_weights(d64, 0.3)
  assert np.all((np.abs(w - w1) < 1e-6) | (w == 0)) and np.mean(w > 0) > 0.5
  assert s.dtype == w.dtype == np.float32


def tiny_global_config(**overrides):
  c = helpers.load_config('cimon', 'quick,graph=global')
  # A 240-image training pool (24 per class) keeps the host graph small.
  c.dataset.protocol = 'per_class'
  c.dataset.protocol_args = ml_collections.ConfigDict(dict(query_per_class=10, train_per_class=24))
  c.loss.num_clusters = 10
  c.loss.graph_features = 'network'  # two views, two graphs (a fixed source: tests/test_cimon_features.py)
  c.num_steps, c.batch_size, c.bits, c.model.width = 3, 32, 16, 0.25
  c.log_every_steps = c.checkpoint.every_steps = 3
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 256
  for k, v in overrides.items():
    c[k] = v
  return c


def test_batches_carry_graph_blocks_and_eight_devices_match_one():
  helpers.require_eight_devices()
  runs, losses, params = [], [], []
  for num_devices in (1, 8):
    run = trainer.build(tiny_global_config(num_devices=num_devices))
    state, run_losses = run.state, []
    for step in range(3):
      state, metrics = run.step_fn(state, trainer.pipeline.to_global(run.batches[step], run.data_sharding))
      run_losses.append(float(metrics['loss']))
    runs.append(run)
    losses.append(run_losses)
    params.append(state.params)
  np.testing.assert_allclose(losses[1], losses[0], rtol=2e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5), *params)

  # The blocks are S[I][:, I] of the graph built over the training pool, I = the batch's positions.
  run = runs[0]
  blocks = run.batches.extras(np.arange(len(run.protocol.train)))  # the whole graph
  assert blocks['graph_s1'].shape == (240, 240)
  batch = run.batches[5]
  positions = np.asarray(run.batches.order[5])
  for key in cimon_graph.GRAPH_KEYS:
    np.testing.assert_array_equal(batch[key], blocks[key][np.ix_(positions, positions)])
  assert 0 < np.mean(blocks['graph_s1'] > 0) < 1
  assert not np.array_equal(blocks['graph_s1'], blocks['graph_s2'])  # two differently augmented views


def test_global_quick_config_trains_and_init_from_builds_the_graph_from_its_parameters(tmp_path):
  source = str(tmp_path / 'source')
  final = trainer.train_and_evaluate(tiny_global_config(), source)
  assert final['step'] == 3 and math.isfinite(final['mAP']) and 0 < final['mAP'] <= 1
  # A run reusing those parameters builds its graph from their features, not from a fresh network.
  fresh = trainer.build(tiny_global_config())
  reused = trainer.build(tiny_global_config(init_from=source))
  loaded, step = checkpoint.load_params(source, fresh.state.params)
  assert step == 3 and reused.init_from_step == 3
  jax.tree.map(np.testing.assert_array_equal, reused.state.params, loaded)
  pool = np.arange(len(fresh.protocol.train))
  assert not np.array_equal(reused.batches.extras(pool)['graph_w1'], fresh.batches.extras(pool)['graph_w1'])
