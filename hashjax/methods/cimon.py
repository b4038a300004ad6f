"""CIMON: Comprehensive sImilarity Mining and cOnsistency learNing (Luo et al., IJCAI 2021).

Unsupervised: labels are never read. Following the official code (luoxiao12/CIMON `cimon.py`;
reference/methods.md section 1), for each of the two augmented views of the images:
  * d_ij = 1 - cos(f_i, f_j) on the network's features f (stop-gradient), diagonal exactly 0;
  * S_ij = +1 if d_ij <= t else -1;
  * confidence w1: mirrored half-Gaussians around the histogram mode of d (`confidence_weights`);
  * clustering mask w2 = 1 where "same spectral cluster" agrees with S, else 0; W = w1 * w2.
The loss, with v, v' the tanh outputs of the two views, H = v v^T / L, H' = v' v'^T / L:
  L = l(H, W2, S2) + l(H', W1, S1) + l(H', W2, S2) + l(H, W1, S1) + eta * NT-Xent(v, v'; tau)
  l(H, W, S) = sum_ij W_ij (H_ij - S_ij)^2 / B^2   (diagonal included: it pulls |v_i|^2 / L to 1).

Graph modes (`config.graph`):
  * 'batch': the graph of the global batch, built inside the jitted step from this step's
    features (the STL-10 per-batch variant, reference/methods.md section 2);
  * 'global': the official graph, built once before training over the whole training set with
    numpy / scipy / scikit-learn (`cimon_graph.py`); each batch carries its (B, B) blocks
    S[I][:, I], W[I][:, I] as batch['graph_s1'], ['graph_w1'], ['graph_s2'], ['graph_w2'],
    gathered on the host (`batch_extras`).
The features f come from `loss.graph_features` (`cimon_features.py`): the network (official) or a
fixed source (pixels, PCA) when there are no pretrained weights; with graph=batch a fixed source's
rows ride in batch['graph_features'] and give one graph for both views.
Codes are sign(tanh output).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm
import numpy as np

from hashjax import models
from hashjax import spectral
from hashjax.methods import cimon_features
from hashjax.methods import cimon_graph

GRAPHS = ('batch', 'global')
_TINY = 1e-12

# The official histogram: 100 bins of width 0.01 over [0, 1), left edges accumulated in floating
# point (`cur += interval`), each bin counting cur < d < cur + 0.01 (strict at both edges).
_BIN_WIDTH = 1.0 / 100
_BIN_LEFT = np.cumsum([0.0] + [_BIN_WIDTH] * 99)
_BIN_RIGHT = _BIN_LEFT + _BIN_WIDTH
_BIN_EDGES = np.append(_BIN_LEFT, _BIN_RIGHT[-1])  # _BIN_RIGHT[:-1] == _BIN_LEFT[1:] exactly


def cosine_distance(features: jax.Array) -> jax.Array:
  """(B, B) 1 - cos(f_i, f_j), diagonal exactly 0 (scipy's squareform(pdist(., 'cosine')))."""
  f = features.astype(jnp.float32)
  unit = f / jnp.maximum(jnp.linalg.norm(f, axis=1, keepdims=True), _TINY)
  distance = 1.0 - unit @ unit.T
  return jnp.where(jnp.eye(f.shape[0], dtype=bool), 0.0, distance)


def histogram_mode(distance: jax.Array) -> jax.Array:
  """Left edge of the densest official bin (the first one on ties; 0 if every bin is empty).

  The bins are contiguous (each right edge is the next left edge), so every value falls in bin
  floor(100 d), give or take one for rounding, which the exact edge comparisons settle: one pass
  and a 100-bin scatter-add instead of 100 comparisons of the whole matrix.
  """
  edges = jnp.asarray(_BIN_EDGES, jnp.float32)
  d = distance.reshape(-1)
  guess = jnp.clip(jnp.floor(d * 100).astype(jnp.int32), 0, 99)
  index = jnp.where(d <= edges[guess], guess - 1, jnp.where(d >= edges[guess + 1], guess + 1, guess))
  inside = jnp.clip(index, 0, 99)
  valid = (index >= 0) & (index <= 99) & (d > edges[inside]) & (d < edges[inside + 1])  # strict at both edges
  counts = jnp.zeros(100, jnp.int32).at[jnp.where(valid, index, 100)].add(1, mode='drop')
  return edges[jnp.argmax(counts)]


def confidence_weights(distance: jax.Array, threshold: float) -> tuple[jax.Array, dict]:
  """(B, B) w1 in [0, 1]: 0 at the threshold, towards 1 far from it on either side.

  `norm.fit` of {d <= m} mirrored about the mode m gives mean m and sigma_L = RMS(d - m) over
  d <= m (the MLE, ddof 0); likewise sigma_R over d > m. Then, with Phi the normal CDF,
    d > t:  (Phi((d - m)/sR) - Phi((t - m)/sR)) / (1 - Phi((t - m)/sR))
    d <= t: (Phi((t - m)/sL) - Phi((d - m)/sL)) / Phi((t - m)/sL),   clipped to [0, 1].
  sigma and the denominators are floored at 1e-12 where the official code would divide by 0.
  """
  mode = histogram_mode(distance)
  left = distance <= mode
  sq = jnp.square(distance - mode)
  sigma_left = jnp.sqrt(jnp.sum(jnp.where(left, sq, 0.0)) / jnp.maximum(jnp.sum(left), 1))
  sigma_right = jnp.sqrt(jnp.sum(jnp.where(left, 0.0, sq)) / jnp.maximum(jnp.sum(~left), 1))
  sigma_left, sigma_right = jnp.maximum(sigma_left, _TINY), jnp.maximum(sigma_right, _TINY)
  cdf_t_right = norm.cdf((threshold - mode) / sigma_right)
  cdf_t_left = norm.cdf((threshold - mode) / sigma_left)
  above = (norm.cdf((distance - mode) / sigma_right) - cdf_t_right) / jnp.maximum(1.0 - cdf_t_right, _TINY)
  below = (cdf_t_left - norm.cdf((distance - mode) / sigma_left)) / jnp.maximum(cdf_t_left, _TINY)
  weights = jnp.clip(jnp.where(distance > threshold, above, below), 0.0, 1.0)
  return weights, {'mode': mode, 'sigma_left': sigma_left, 'sigma_right': sigma_right}


def cluster_agreement(similarity: jax.Array, labels: jax.Array) -> jax.Array:
  """(B, B) w2: 1 where "same cluster" agrees with S (+1 same, -1 different), else 0.

  The official ((((A - A.T) == 0) - 1/2) * 2 * S + 1) / 2: masks disagreeing pairs, never flips S.
  """
  same = (labels[:, None] == labels[None, :]).astype(jnp.float32)
  return ((same - 0.5) * 2.0 * similarity + 1.0) / 2.0


def similarity_graph(
  features: jax.Array,
  key: jax.Array,
  *,
  threshold: float,
  num_clusters: int,
  gamma: float = 1.0,
  kmeans_restarts: int = 10,
  kmeans_iters: int = 50,
  center_features: bool = False,
  eigen_solver: str = 'subspace',
  assign_labels: str = 'kmeans',
):
  """(S, W, stats) of one view's features (B, D), as the official `generate_similarity_weight_matrix`.

  `center_features` subtracts the batch mean first (not in the official code): the features of a
  network trained from scratch share a large common direction, which puts every cosine distance
  near 0 and every pair under any threshold; ImageNet-pretrained fc7 features do not need it.
  The spectral clustering's RBF affinity of the unit features is exp(-2 gamma d): it reuses the
  cosine distances instead of a second (B, D) x (D, B) product. stats['clusters'] are its labels.
  """
  if center_features:
    features = features - jnp.mean(features, axis=0, keepdims=True)
  distance = cosine_distance(features)
  similarity = jnp.where(distance <= threshold, 1.0, -1.0)
  w1, stats = confidence_weights(distance, threshold)
  affinity = jnp.exp(-2.0 * gamma * jnp.maximum(distance, 0.0))  # |u_i - u_j|^2 = 2 d_ij for unit u
  labels = spectral.spectral_clustering_affinity(
    affinity,
    num_clusters,
    key,
    num_restarts=kmeans_restarts,
    num_iters=kmeans_iters,
    eigen_solver=eigen_solver,
    assign_labels=assign_labels,
  )
  return similarity, w1 * cluster_agreement(similarity, labels), {**stats, 'clusters': labels}


def semantic_term(codes: jax.Array, weights: jax.Array, similarity: jax.Array) -> jax.Array:
  """l(H, W, S) = sum_ij W_ij |S_ij| (H_ij - S_ij)^2 / B^2 with H = v v^T / L (official SEM_CON_Loss)."""
  b, bits = codes.shape
  h = codes @ codes.T / bits
  return jnp.sum(weights * jnp.abs(similarity) * jnp.square(h - similarity)) / (b * b)


def nt_xent(codes1: jax.Array, codes2: jax.Array, tau: float) -> jax.Array:
  """SimCLR's NT-Xent on L2-normalised codes; the positive stays in the denominator (official)."""
  b = codes1.shape[0]
  z = jnp.concatenate([codes1, codes2])
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), _TINY)
  logits = jnp.where(jnp.eye(2 * b, dtype=bool), -jnp.inf, z @ z.T / tau)
  positive = jnp.sum(z[:b] * z[b:], axis=1) / tau
  return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.concatenate([positive, positive]))


def objective(codes1, codes2, graph1, graph2, *, tau: float, eta: float):
  """The CIMON loss of the two views' tanh outputs and their (S, W) graphs: (loss, metrics)."""
  (s1, w1), (s2, w2) = graph1, graph2
  semantic = (
    semantic_term(codes1, w2, s2)
    + semantic_term(codes2, w1, s1)
    + semantic_term(codes2, w2, s2)
    + semantic_term(codes1, w1, s1)
  )
  contrastive = nt_xent(codes1, codes2, tau)
  metrics = {
    'semantic_loss': semantic,
    'contrastive_loss': contrastive,
    'positive_fraction': (jnp.mean(s1 > 0) + jnp.mean(s2 > 0)) / 2,
    'mean_weight': (jnp.mean(w1) + jnp.mean(w2)) / 2,
  }
  return semantic + eta * contrastive, metrics


def validate(ctx) -> None:
  """Fails on bad `config.loss` values, naming the valid range."""
  config, batch_size = ctx.loss, ctx.config.batch_size
  if config.graph not in GRAPHS:
    raise ValueError(f'unknown loss.graph {config.graph!r}; valid: {", ".join(GRAPHS)}')
  if not 0 <= config.threshold <= 2:
    raise ValueError(f'loss.threshold is a cosine distance, in [0, 2]; got {config.threshold}')
  if config.num_clusters < 2 or (config.graph == 'batch' and config.num_clusters > batch_size):
    raise ValueError(
      f'loss.num_clusters must be in [2, batch size {batch_size}] with graph=batch; got {config.num_clusters}'
    )
  if config.tau <= 0 or config.eta < 0:
    raise ValueError(f'loss.tau must be > 0 and loss.eta >= 0; got tau={config.tau}, eta={config.eta}')
  if config.eigen_solver not in spectral.EIGEN_SOLVERS:
    raise ValueError(f'unknown loss.eigen_solver {config.eigen_solver!r}; valid: {", ".join(spectral.EIGEN_SOLVERS)}')
  if config.assign_labels not in spectral.ASSIGN_LABELS:
    raise ValueError(f'unknown loss.assign_labels {config.assign_labels!r}; valid: {", ".join(spectral.ASSIGN_LABELS)}')
  cimon_features.check(config, is_features=ctx.protocol.is_features)
  if config.kmeans_restarts < 1 or config.kmeans_iters < 1:
    raise ValueError(
      f'loss.kmeans_restarts and loss.kmeans_iters must be >= 1; got {config.kmeans_restarts}, {config.kmeans_iters}'
    )


def loss_fn(params, batch, rng, *, forward, config):
  """Pure CIMON objective on batch['views'] (two augmented views): (params, batch, rng) -> (loss, metrics)."""
  view1, view2 = batch['views']
  rng1, rng2, graph_rng = jax.random.split(rng, 3)
  features1, codes1 = forward(params, view1, train=True, rng=rng1, with_features=True)
  features2, codes2 = forward(params, view2, train=True, rng=rng2, with_features=True)
  extra = {}
  if config.graph == 'batch':
    key1, key2 = jax.random.split(graph_rng)
    graph_args = dict(
      threshold=config.threshold,
      num_clusters=config.num_clusters,
      gamma=config.gamma,
      kmeans_restarts=config.kmeans_restarts,
      kmeans_iters=config.kmeans_iters,
      center_features=config.center_features,
      eigen_solver=config.eigen_solver,
      assign_labels=config.assign_labels,
    )
    if 'graph_features' in batch:  # a fixed source: one graph of the un-augmented images
      s1, w1, stats = similarity_graph(batch['graph_features'], key1, **graph_args)
      s2, w2 = s1, w1
    else:
      s1, w1, stats = similarity_graph(jax.lax.stop_gradient(features1), key1, **graph_args)
      s2, w2, _ = similarity_graph(jax.lax.stop_gradient(features2), key2, **graph_args)
    extra = {'histogram_mode': stats['mode']}
  else:
    s1, w1, s2, w2 = (batch[k] for k in cimon_graph.GRAPH_KEYS)
  loss, metrics = objective(codes1, codes2, (s1, w1), (s2, w2), tau=config.tau, eta=config.eta)
  return loss, {**metrics, **extra}


def batch_extras(ctx, params):
  """graph=global: builds the official graph once and returns the host gather of its batch blocks;
  graph=batch with a fixed feature source: the gather of the batch's feature rows.

  The global graph is data, not state: 4 dense N x N matrices (400 MB at N = 5000) that never change
  after they are built, so every batch carries its blocks, as DSH's fixed pairs, instead of every
  checkpoint and every device holding them.
  """
  protocol = ctx.protocol
  if ctx.loss.graph == 'batch' and ctx.loss.graph_features == 'features':
    # The stored vectors, gathered per batch from the memory map (no copy of the training set).
    train = protocol.train
    return lambda positions: {'graph_features': cimon_features.rows(protocol.images, train[positions])}
  fixed = cimon_features.fixed_features(ctx.loss, protocol.images, protocol.train)
  if ctx.loss.graph == 'batch':
    return None if fixed is None else (lambda positions: {'graph_features': fixed[positions]})
  graph = cimon_graph.build(
    ctx.config,
    ctx.forward,
    ctx.preprocess,
    params,
    protocol.images,
    protocol.train,
    ctx.params_sharding,
    ctx.batch_sharding,
    fixed_features=fixed,
  )
  return cimon_graph.batch_blocks(graph)


def describe(ctx) -> dict:
  """What the run log and final_metrics.json say about this run's graph."""
  return {'graph_features': cimon_features.describe(ctx.loss, models.pretrained_dir(ctx.config.model))}


def to_codes(outputs: jax.Array) -> jax.Array:
  """The tanh outputs; their sign is the code."""
  return outputs
