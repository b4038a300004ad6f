"""CIMON's loss terms equal direct NumPy/SciPy transcriptions of the official code
(luoxiao12/CIMON `cimon.py`), and the per-batch-graph step is the same on 8 devices as on 1."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.spatial.distance import squareform
from scipy.stats import norm

from hashjax import models
from hashjax.methods import cimon
from hashjax.models import cimon_head
from hashjax.models import dsh_net
from hashjax.train import trainer
from tests import helpers


def official_weights(cos_dist, threshold):
  """`generate_similarity_weight_matrix`'s statistical part, line by line (float64)."""
  max_cnt, max_cos = 0, 0
  interval = 1.0 / 100
  cur = 0
  for _ in range(100):
    cur_cnt = np.sum((cos_dist > cur) & (cos_dist < cur + interval))
    if max_cnt < cur_cnt:
      max_cnt = cur_cnt
      max_cos = cur
    cur += interval
  flat = cos_dist.reshape((-1, 1))
  left = flat[np.where(flat <= max_cos)[0]]
  right = flat[np.where(flat > max_cos)[0]]
  left = np.concatenate([left, 2 * max_cos - left])
  right = np.concatenate([2 * max_cos - right, right])
  left_mean, left_std = norm.fit(left)
  right_mean, right_std = norm.fit(right)
  x = cos_dist
  weight = (x > threshold) * (
    norm.cdf((x - right_mean) / right_std) - norm.cdf((threshold - right_mean) / right_std)
  ) / (1 - norm.cdf((threshold - right_mean) / right_std)) + (x <= threshold) * (
    norm.cdf((threshold - left_mean) / left_std) - norm.cdf((x - left_mean) / left_std)
  ) / norm.cdf((threshold - left_mean) / left_std)
  return np.clip(weight, 0, 1), max_cos, left_std, right_std


def clustered_features(n=40, dim=24, groups=4, seed=0):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(groups, dim))
  return (centers[rng.integers(0, groups, n)] + 0.8 * rng.normal(size=(n, dim))).astype(np.float32)


def test_cosine_distance_matches_scipy():
  f = clustered_features()
  np.testing.assert_allclose(
    np.asarray(cimon.cosine_distance(jnp.asarray(f))), squareform(pdist(f.astype(np.float64), 'cosine')), atol=1e-5
  )
  assert np.all(np.diag(np.asarray(cimon.cosine_distance(jnp.asarray(f)))) == 0)


@pytest.mark.parametrize('seed,threshold', [(0, 0.3), (1, 0.1), (2, 0.8)])
def test_confidence_weights_match_official(seed, threshold):
  # The same float32 distances go to both, so the histogram bins see identical values.
  d = np.asarray(cimon.cosine_distance(jnp.asarray(clustered_features(seed=seed))))
  expected, mode, left_std, right_std = official_weights(d.astype(np.float64), threshold)
  weights, stats = cimon.confidence_weights(jnp.asarray(d), threshold)
  np.testing.assert_allclose(float(stats['mode']), mode, atol=1e-6)
  assert 0 < mode < 1  # a real mode, not the empty-histogram default
  np.testing.assert_allclose(float(stats['sigma_left']), left_std, rtol=1e-4)
  np.testing.assert_allclose(float(stats['sigma_right']), right_std, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(weights), expected, atol=2e-5)
  assert np.asarray(weights).min() >= 0 and np.asarray(weights).max() <= 1


def test_histogram_mode_strict_edges_and_first_bin_on_ties():
  # Values on a bin edge count in neither neighbour; equal counts keep the first bin.
  d = np.zeros((6, 6), np.float32)
  d[0, 1:4] = [0.255, 0.256, 0.257]  # bin 25 (0.25, 0.26): 3
  d[1, 2:5] = [0.505, 0.506, 0.507]  # bin 50: 3, a tie: the first (bin 25) wins
  d[2, 3:5] = [np.float32(0.7), 0.7]  # on an edge: counted nowhere
  np.testing.assert_allclose(float(cimon.histogram_mode(jnp.asarray(d))), 0.25, atol=1e-6)


def test_histogram_counts_equal_the_hundred_comparisons():
  # Values on every float32 edge, one ulp either side of it, out of range and random: the binned
  # count (floor(100 d) and a correction) must pick the bin the 100 strict comparisons pick.
  edges = np.append(cimon._BIN_LEFT, cimon._BIN_RIGHT[-1]).astype(np.float32)
  rng = np.random.default_rng(0)
  values = np.concatenate(
    [
      edges,
      np.nextafter(edges, np.float32(-1)),
      np.nextafter(edges, np.float32(2)),
      [-1e-7, 0.0, 1.0, 1.5, 2.0],
      rng.random(2000).astype(np.float32) * 1.1,
    ]
  )
  values = values[(values == 0) | (np.abs(values) > 1e-30)]  # XLA on CPU flushes denormals to 0
  for bin_ in range(100):  # make each bin in turn the densest by one extra value just inside it
    d = np.concatenate([values, [edges[bin_] + np.float32(0.004)] * 30]).astype(np.float32)
    left = cimon._BIN_LEFT.astype(np.float32)[:, None]
    counts = np.sum((d[None] > left) & (d[None] < cimon._BIN_RIGHT.astype(np.float32)[:, None]), axis=1)
    assert float(cimon.histogram_mode(jnp.asarray(d))) == left[np.argmax(counts), 0], bin_


def test_cluster_agreement_is_official_formula():
  rng = np.random.default_rng(0)
  s = np.where(rng.random((9, 9)) < 0.4, 1.0, -1.0)
  labels = rng.integers(0, 3, 9)
  a = labels[np.newaxis, :]
  expected = ((((a - a.T) == 0) - 1 / 2) * 2 * s + 1) / 2
  np.testing.assert_array_equal(np.asarray(cimon.cluster_agreement(jnp.asarray(s), jnp.asarray(labels))), expected)


def semantic_loop(v, w, s):
  b, bits = v.shape
  total = 0.0
  for i in range(b):
    for j in range(b):
      h = float(np.dot(v[i], v[j])) / bits
      total += w[i, j] * abs(s[i, j]) * (h - s[i, j]) ** 2
  return total / b**2


def nt_xent_loop(v1, v2, tau):
  z = np.concatenate([v1 / np.linalg.norm(v1, axis=1, keepdims=True), v2 / np.linalg.norm(v2, axis=1, keepdims=True)])
  b = len(v1)
  losses = []
  for a in range(2 * b):
    p = (a + b) % (2 * b)
    denominator = sum(np.exp(z[a] @ z[k] / tau) for k in range(2 * b) if k != a)
    losses.append(-np.log(np.exp(z[a] @ z[p] / tau) / denominator))
  return np.mean(losses)


def random_graph(rng, b):
  s = np.where(rng.random((b, b)) < 0.3, 1.0, -1.0)
  s = np.triu(s) + np.triu(s, 1).T
  np.fill_diagonal(s, 1.0)
  return s, rng.random((b, b)) * (rng.random((b, b)) < 0.7)


def test_semantic_and_contrastive_terms_match_loops():
  rng = np.random.default_rng(0)
  b, bits = 7, 12
  v1, v2 = np.tanh(rng.normal(size=(2, b, bits)))
  (s1, w1), (s2, w2) = random_graph(rng, b), random_graph(rng, b)
  np.testing.assert_allclose(
    float(cimon.semantic_term(jnp.asarray(v1), jnp.asarray(w1), jnp.asarray(s1))), semantic_loop(v1, w1, s1), rtol=1e-5
  )
  np.testing.assert_allclose(
    float(cimon.nt_xent(jnp.asarray(v1), jnp.asarray(v2), 0.5)), nt_xent_loop(v1, v2, 0.5), rtol=1e-5
  )
  loss, metrics = cimon.objective(
    jnp.asarray(v1),
    jnp.asarray(v2),
    (jnp.asarray(s1), jnp.asarray(w1)),
    (jnp.asarray(s2), jnp.asarray(w2)),
    tau=0.5,
    eta=0.3,
  )
  # The official order: l(H, W2, S2) + l(H', W1, S1) + l(H', W2, S2) + l(H, W1, S1) + eta * NCE.
  semantic = (
    semantic_loop(v1, w2, s2) + semantic_loop(v2, w1, s1) + semantic_loop(v2, w2, s2) + semantic_loop(v1, w1, s1)
  )
  np.testing.assert_allclose(float(metrics['semantic_loss']), semantic, rtol=1e-5)
  np.testing.assert_allclose(float(loss), semantic + 0.3 * nt_xent_loop(v1, v2, 0.5), rtol=1e-5)
  np.testing.assert_allclose(float(metrics['positive_fraction']), ((s1 > 0).mean() + (s2 > 0).mean()) / 2, rtol=1e-6)


def test_similarity_graph_pieces():
  f = clustered_features(n=48, groups=3, seed=3)
  s, w, _ = cimon.similarity_graph(jnp.asarray(f), jax.random.key(0), threshold=0.3, num_clusters=3)
  d = squareform(pdist(f.astype(np.float64), 'cosine'))
  np.testing.assert_array_equal(
    np.asarray(s)[np.abs(d - 0.3) > 1e-5], np.where(d <= 0.3, 1.0, -1.0)[np.abs(d - 0.3) > 1e-5]
  )
  w1, *_ = official_weights(np.asarray(cimon.cosine_distance(jnp.asarray(f))).astype(np.float64), 0.3)
  w = np.asarray(w)
  # W is w1 where the clustering agrees with S and 0 elsewhere.
  assert np.all((np.abs(w - w1) < 2e-5) | (w == 0))
  assert np.mean(w > 0) > 0.5


def test_dsh_tanh_net_is_tanh_of_dsh_net():
  x = jax.random.normal(jax.random.key(1), (3, 16, 16, 1))
  net = cimon_head.DSHTanhNet(8, (16, 16, 1), width=0.25, rngs=nnx.Rngs(params=jax.random.key(0)))
  assert isinstance(net.backbone, dsh_net.DSHNet)

  @nnx.jit
  def outputs(net, x):
    features, codes = net(x, with_features=True)
    return features, codes, net(x), net.backbone.features(x), jnp.tanh(net.backbone(x))

  features, codes, plain, dsh_features, dsh_tanh = outputs(net, x)
  np.testing.assert_allclose(np.asarray(jax.nn.relu(features)), np.asarray(dsh_features), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(codes), np.asarray(dsh_tanh), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(codes), np.asarray(plain), rtol=1e-6, atol=1e-7)


def test_loss_ignores_labels():
  c = helpers.load_config('cimon', 'quick')
  c.model.width = 0.25
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 2, 5
  graphdef, params = models.build(c.model, 8, (16, 16, 1), jax.random.key(0))
  forward = models.make_forward(graphdef)
  views = tuple(jax.random.normal(k, (12, 16, 16, 1)) for k in jax.random.split(jax.random.key(1), 2))
  batch = {'views': views, 'step': 0}  # no 'label': CIMON is unsupervised
  loss_fn = lambda config: jax.jit(lambda p, b, k: cimon.loss_fn(p, b, k, forward=forward, config=config))
  loss, metrics = loss_fn(c.loss)(params, batch, jax.random.key(2))
  assert np.isfinite(float(loss)) and set(metrics) >= {
    'semantic_loss',
    'contrastive_loss',
    'positive_fraction',
    'mean_weight',
  }
  # (A bad loss config fails once, when the run is built: test_bad_loss_config_fails_at_build.)


@pytest.mark.parametrize(
  'key,value,message',
  [
    ('graph', 'knn', 'valid: batch, global'),
    ('threshold', 2.5, r'in \[0, 2\]'),
    ('num_clusters', 100, r'num_clusters must be in \[2, batch size 64\]'),
    ('tau', 0.0, 'tau must be > 0'),
    ('assign_labels', 'argmax', 'valid: kmeans, discretize'),
  ],
)
def test_bad_loss_config_fails_at_build(key, value, message):
  c = helpers.load_config('cimon', 'quick')
  c.loss[key] = value
  with pytest.raises(ValueError, match=message):
    trainer.build(c)


def tiny_cimon_config(**overrides):
  c = helpers.load_config('cimon', 'quick')
  c.num_steps, c.batch_size, c.bits, c.model.width = 3, 32, 16, 0.25
  c.log_every_steps = c.checkpoint.every_steps = 3
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 256
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 3, 20
  for k, v in overrides.items():
    c[k] = v
  return c


def run_steps(num_devices, graph_features, assign_labels, steps=3):
  # 'crop' keeps compilation short; the SimCLR ops are per-example too (tests/test_augment_simclr.py).
  config = tiny_cimon_config(num_devices=num_devices, augment='crop')
  config.loss.graph_features, config.loss.assign_labels = graph_features, assign_labels
  run = trainer.build(config)
  state, losses, metrics = run.state, [], None
  for step in range(steps):
    state, metrics = run.step_fn(state, trainer.pipeline.to_global(run.batches[step], run.data_sharding))
    losses.append(float(metrics['loss']))
  return run, state, np.array(losses), metrics


@pytest.mark.parametrize('graph_features,assign_labels', [('network', 'kmeans'), ('pca', 'discretize')])
def test_batch_graph_step_eight_devices_match_one(graph_features, assign_labels):
  helpers.require_eight_devices()
  run1, state1, loss1, metrics1 = run_steps(1, graph_features, assign_labels)
  run8, state8, loss8, metrics8 = run_steps(8, graph_features, assign_labels)
  assert run8.mesh.size == 8 and run1.mesh.size == 1
  np.testing.assert_allclose(loss8, loss1, rtol=2e-5, atol=1e-6)
  for key in ('semantic_loss', 'contrastive_loss', 'positive_fraction', 'mean_weight'):
    np.testing.assert_allclose(float(metrics8[key]), float(metrics1[key]), rtol=2e-5, atol=1e-6)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5),
    state8.params,
    state1.params,
  )
  assert 0 < float(metrics1['positive_fraction']) < 1  # the graph has both kinds of pair
