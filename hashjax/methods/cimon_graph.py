"""CIMON's official graph (`graph=global`): built once, on the host, over the whole training set.

As `cimon.py: train()` in luoxiao12/CIMON (reference/methods.md sections 1.3-1.5): features of two
augmented views of every training image from the initial network (eval mode), and per view a
dense N x N similarity S and weight W with numpy / scipy / scikit-learn:
  d = squareform(pdist(F, 'cosine')); S = +1 if d <= t else -1; w1 from the mirrored
  half-Gaussians (`confidence_weights`); w2 from SpectralClustering(n_clusters, random_state=0,
  assign_labels='discretize') of the L2-normalised features; W = w1 * w2.
The graph is never rebuilt. Each training batch then carries its blocks S[I][:, I], W[I][:, I]
(`batch_blocks`), gathered on the host. Memory: 4 float32 N x N matrices (400 MB at N = 5000).
"""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils
import numpy as np

from hashjax.data import pipeline

# scipy.stats and sklearn.cluster are imported inside the functions that need them: they take
# about a second to import, and every method's import goes through this module.

GRAPH_KEYS = ('graph_s1', 'graph_w1', 'graph_s2', 'graph_w2')


def confidence_weights(cos_dist: np.ndarray, threshold: float) -> np.ndarray:
  """The official statistical weights w1 (float64), line for line."""
  from scipy.stats import norm  # pylint: disable=g-import-not-at-top

  max_cnt, max_cos = 0, 0
  interval = 1.0 / 100
  cur = 0
  for _ in range(100):
    cur_cnt = np.sum((cos_dist > cur) & (cos_dist < cur + interval))
    if max_cnt < cur_cnt:
      max_cnt, max_cos = cur_cnt, cur
    cur += interval
  flat = cos_dist.reshape(-1)
  left, right = flat[flat <= max_cos], flat[flat > max_cos]
  left_mean, left_std = norm.fit(np.concatenate([left, 2 * max_cos - left]))
  right_mean, right_std = norm.fit(np.concatenate([2 * max_cos - right, right]))
  cdf_t_right = norm.cdf((threshold - right_mean) / right_std)
  cdf_t_left = norm.cdf((threshold - left_mean) / left_std)
  with np.errstate(divide='ignore', invalid='ignore'):
    above = (norm.cdf((cos_dist - right_mean) / right_std) - cdf_t_right) / (1 - cdf_t_right)
    below = (cdf_t_left - norm.cdf((cos_dist - left_mean) / left_std)) / cdf_t_left
  return np.clip(np.where(cos_dist > threshold, above, below), 0, 1)


def official_graph(
  features: np.ndarray, *, threshold: float, num_clusters: int, center_features: bool = False, seed: int = 0
):
  """(S, W, cluster labels) of one view's features, as the official `generate_similarity_weight_matrix`
  (S, W float64 (N, N)); benchmarks/cimon_graph_pipeline.py times it against the jnp pipeline."""
  from scipy.spatial.distance import pdist  # pylint: disable=g-import-not-at-top
  from scipy.spatial.distance import squareform  # pylint: disable=g-import-not-at-top
  from sklearn.cluster import SpectralClustering  # pylint: disable=g-import-not-at-top

  features = np.asarray(features, np.float64)
  if center_features:  # see cimon.similarity_graph: for networks trained from scratch
    features = features - features.mean(axis=0, keepdims=True)
  cos_dist = squareform(pdist(features, 'cosine'))
  similarity = np.where(cos_dist <= threshold, 1.0, -1.0)
  w1 = confidence_weights(cos_dist, threshold)
  unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
  labels = SpectralClustering(n_clusters=num_clusters, random_state=seed, assign_labels='discretize').fit(unit).labels_
  a = labels[np.newaxis, :]
  w2 = ((((a - a.T) == 0) - 1 / 2) * 2 * similarity + 1) / 2
  return similarity, w1 * w2, labels


def similarity_weight_matrix(
  features: np.ndarray, *, threshold: float, num_clusters: int, center_features: bool = False, seed: int = 0
):
  """(S, W) float32 (N, N) of one view's features, as the official `generate_similarity_weight_matrix`."""
  similarity, weights, _ = official_graph(
    features, threshold=threshold, num_clusters=num_clusters, center_features=center_features, seed=seed
  )
  return similarity.astype(np.float32), weights.astype(np.float32)


def make_feature_extractor(forward, preprocess, params_sharding, batch_sharding):
  """Jitted (params, uint8 images, key) -> features of one augmented view, network in eval mode."""

  def features_of(params, raw, key):
    x = preprocess(raw, key, train=True)  # augmented, as the official graph features
    return forward(params, x, train=False, with_features=True)[0]

  return jax.jit(features_of, in_shardings=(params_sharding, batch_sharding, None), out_shardings=batch_sharding)


def extract_features(
  features_of, params, images: np.ndarray, indices: np.ndarray, *, batch_size: int, rng: jax.Array, batch_sharding
) -> np.ndarray:
  """(len(indices), D) features of `indices`' images, in that order, one key per batch."""
  out = []
  for i, (local, valid) in enumerate(pipeline.eval_batches(images, indices, batch_size)):
    batch = jax.make_array_from_process_local_data(batch_sharding, local)
    f = features_of(params, batch, jax.random.fold_in(rng, i))
    out.append(np.asarray(multihost_utils.process_allgather(f, tiled=True))[:valid])
  return np.concatenate(out)


def build(
  config,
  forward,
  preprocess,
  params,
  images,
  indices,
  params_sharding,
  batch_sharding,
  fixed_features: np.ndarray | None = None,
):
  """The four (N, N) matrices {graph_s1, graph_w1, graph_s2, graph_w2} over the training pool.

  `fixed_features` (N, D) (a fixed source, cimon_features.py) give one graph, shared by both views.
  """
  graph_args = dict(
    threshold=config.loss.threshold,
    num_clusters=config.loss.num_clusters,
    center_features=config.loss.center_features,
    seed=0,
  )
  if fixed_features is not None:
    s, w = similarity_weight_matrix(fixed_features, **graph_args)
    return {'graph_s1': s, 'graph_w1': w, 'graph_s2': s, 'graph_w2': w}
  features_of = make_feature_extractor(forward, preprocess, params_sharding, batch_sharding)
  rng = jax.random.fold_in(jax.random.key(config.seed), 2021)  # apart from the training stream
  graph = {}
  for view, key in zip((1, 2), jax.random.split(rng)):
    f = extract_features(
      features_of, params, images, indices, batch_size=config.eval.batch_size, rng=key, batch_sharding=batch_sharding
    )
    graph[f'graph_s{view}'], graph[f'graph_w{view}'] = similarity_weight_matrix(f, **graph_args)
  return graph


def batch_blocks(graph: dict[str, np.ndarray]):
  """positions (B,) in the training pool -> {key: M[positions][:, positions]} for each matrix."""

  def blocks(positions: np.ndarray) -> dict[str, np.ndarray]:
    return {k: graph[k][np.ix_(positions, positions)] for k in GRAPH_KEYS}

  return blocks
