"""CIMON's per-batch graph pipeline in jnp against the official SciPy / scikit-learn route, in one process.

  python benchmarks/cimon_graph_pipeline.py [--batches 256,1024] [--data gaussian,fashion_mnist]
                                            [--dim 4096] [--clusters 5] [--threshold 0.3]
                                            [--repeats 7] [--step]

Pipeline = cosine distances + threshold graph S + confidence weights w1 + spectral clustering
(-> mask w2, W = w1 * w2) of one view's features (B, D):
  * jnp: `hashjax.methods.cimon.similarity_graph`, jitted, as the per-batch train step runs it
    (eigen_solver 'subspace', the config's default, and 'eigh', the dense solver; labels by
    k-means, the config's default, or Yu-Shi 'discretize', the official assignment);
  * official: `hashjax.methods.cimon_graph.official_graph`: scipy `pdist(F, 'cosine')`, the
    official NumPy/SciPy half-Gaussian fit (100-bin loop, `norm.fit`), scikit-learn
    `SpectralClustering(n_clusters, random_state=0, assign_labels='discretize')` on the unit
    features (its RBF affinity, ARPACK), as luoxiao12/CIMON does.
Each route runs once to warm up (compile), then `--repeats` interleaved rounds; the median counts.
ARI = adjusted Rand index of the jnp clusters against scikit-learn's on the same features; for
scale, the table also gives scikit-learn's own assign_labels='kmeans' (the jnp route's k-means)
against its 'discretize' (the official), and the fraction of pairs with S = +1.

Data: 'gaussian' = `--clusters` clusters in `--dim` dimensions around a shared mean (cosine distance
~0.2 within a cluster, ~0.6 between: fc7-like, on either side of the threshold); 'fashion_mnist' =
the 784 pixels of Fashion-MNIST training images of 5 classes (trouser, pullover, sandal, bag,
ankle boot; local IDX files, see README).

--step also times the real jitted CIMON train step (hashjax.train.trainer.build of
configs/cimon.py:fashion_mnist with graph_features='network': DSH network with the tanh head, 500-d
graph features, two views, so two graphs per step) at each batch size, beside the pipeline alone
on (B, 500) features twice.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from sklearn.cluster import SpectralClustering  # pylint: disable=wrong-import-position
from sklearn.metrics import adjusted_rand_score  # pylint: disable=wrong-import-position

from hashjax.methods import cimon  # pylint: disable=wrong-import-position
from hashjax.methods import cimon_graph  # pylint: disable=wrong-import-position

FASHION_CLASSES = (1, 2, 5, 8, 9)


def gaussian_features(n: int, dim: int, clusters: int, seed: int):
  rng = np.random.default_rng(seed)
  mean, centers = rng.normal(size=(1, dim)), rng.normal(size=(clusters, dim))
  truth = rng.integers(0, clusters, n)
  return (mean + centers[truth] + 0.7 * rng.normal(size=(n, dim))).astype(np.float32), truth


def fashion_features(n: int, seed: int):
  from hashjax.data import sources  # pylint: disable=g-import-not-at-top

  split = sources.load('fashion_mnist').splits['train']
  pool = np.flatnonzero(np.isin(split.labels, FASHION_CLASSES))
  keep = np.random.default_rng(seed).choice(pool, n, replace=False)
  return split.images[keep].reshape(n, -1).astype(np.float32) / 255.0, split.labels[keep]


def timed(fn, rounds: list):
  t = time.perf_counter()
  out = fn()
  rounds.append(time.perf_counter() - t)
  return out


def pipeline_rows(args):
  rows = []
  graph_args = dict(threshold=args.threshold, num_clusters=args.clusters)
  jnp_routes = {
    f'{solver} {assign}': jax.jit(
      lambda f, key, solver=solver, assign=assign: cimon.similarity_graph(
        f, key, eigen_solver=solver, assign_labels=assign, **graph_args
      )
    )
    for solver, assign in (('subspace', 'kmeans'), ('subspace', 'discretize'), ('eigh', 'kmeans'))
  }
  for data in args.data.split(','):
    for batch in (int(b) for b in args.batches.split(',')):
      features, truth = (
        gaussian_features(batch, args.dim, args.clusters, batch)
        if data == 'gaussian'
        else fashion_features(batch, batch)
      )
      on_device, key = jax.device_put(features), jax.random.key(0)
      routes = {'official': lambda: cimon_graph.official_graph(features, **graph_args)[2]}
      for solver, fn in jnp_routes.items():
        routes[f'jnp {solver}'] = lambda fn=fn: np.asarray(jax.block_until_ready(fn(on_device, key)[2]['clusters']))
      labels = {name: fn() for name, fn in routes.items()}  # warm-up: compiles
      times = {name: [] for name in routes}
      for _ in range(args.repeats):
        for name, fn in routes.items():
          timed(fn, times[name])
      official_ms = 1e3 * np.median(times['official'])
      s_official = cimon_graph.official_graph(features, **graph_args)[0]
      # For scale: how far scikit-learn's own two label assignments (k-means, as the jnp route,
      # vs discretize, as the official) disagree on the same features.
      unit = features / np.linalg.norm(features, axis=1, keepdims=True)
      sk_kmeans = SpectralClustering(n_clusters=args.clusters, random_state=0, assign_labels='kmeans').fit(unit).labels_
      sk_ari = adjusted_rand_score(labels['official'], sk_kmeans)
      for name in routes:
        ms = 1e3 * np.median(times[name])
        row = dict(
          data=data,
          dim=features.shape[1],
          batch=batch,
          route=name,
          ms=ms,
          speedup=official_ms / ms,
          ari_sklearn=adjusted_rand_score(labels['official'], labels[name]),
          ari_truth=adjusted_rand_score(truth, labels[name]),
          positive=float(np.mean(s_official > 0)),
          sk_ari=sk_ari,
        )
        rows.append(row)
        print(
          f'  {data} d={row["dim"]} B={batch} {name}: {ms:.1f} ms, x{row["speedup"]:.1f}, '
          f'ARI vs sklearn {row["ari_sklearn"]:.3f}',
          flush=True,
        )
  return rows


def step_rows(args):
  """The real train step vs two graphs alone, per batch size (same process, interleaved)."""
  from hashjax.config import files as config_files  # pylint: disable=g-import-not-at-top
  from hashjax.data import pipeline  # pylint: disable=g-import-not-at-top
  from hashjax.train import trainer  # pylint: disable=g-import-not-at-top

  rows = []
  for batch in (int(b) for b in args.batches.split(',')):
    config = config_files.load_config_file(os.path.join(ROOT, 'configs', 'cimon.py') + ':fashion_mnist')
    config.batch_size, config.num_steps = batch, 100
    config.loss.graph_features = 'network'  # two graphs per step, from the network's features
    run = trainer.build(config)
    state = run.state
    step_batch = lambda i: pipeline.to_global(run.batches[i], run.data_sharding)
    loss = config.loss
    graphs = jax.jit(
      lambda f, key: [
        cimon.similarity_graph(
          f[i],
          k,
          threshold=loss.threshold,
          num_clusters=loss.num_clusters,
          gamma=loss.gamma,
          kmeans_restarts=loss.kmeans_restarts,
          kmeans_iters=loss.kmeans_iters,
          center_features=loss.center_features,
          eigen_solver=loss.eigen_solver,
          assign_labels=loss.assign_labels,
        )[:2]
        for i, k in enumerate(jax.random.split(key))
      ]
    )
    features = jax.random.normal(jax.random.key(1), (2, batch, 500))
    state, _ = jax.block_until_ready(run.step_fn(state, step_batch(0)))  # compile
    jax.block_until_ready(graphs(features, jax.random.key(0)))
    step_t, graph_t = [], []
    for i in range(args.step_repeats):
      b = step_batch(i + 1)
      t = time.perf_counter()
      state, _ = jax.block_until_ready(run.step_fn(state, b))
      step_t.append(time.perf_counter() - t)
      timed(lambda: jax.block_until_ready(graphs(features, jax.random.key(i))), graph_t)
    row = dict(batch=batch, step_ms=1e3 * np.median(step_t), graphs_ms=1e3 * np.median(graph_t))
    row['share'] = row['graphs_ms'] / row['step_ms']
    rows.append(row)
    print(
      f'  step B={batch}: {row["step_ms"]:.0f} ms, two graphs alone {row["graphs_ms"]:.1f} ms '
      f'({100 * row["share"]:.1f}%)',
      flush=True,
    )
  return rows


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--batches', default='256,1024')
  p.add_argument('--data', default='gaussian,fashion_mnist')
  p.add_argument('--dim', type=int, default=4096, help='feature dimension of the gaussian data')
  p.add_argument('--clusters', type=int, default=5)
  p.add_argument('--threshold', type=float, default=0.3)
  p.add_argument('--repeats', type=int, default=7)
  p.add_argument('--step', action='store_true', help='also time the real train step')
  p.add_argument('--step_repeats', type=int, default=5)
  args = p.parse_args()
  print(
    f'jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs; '
    f'{args.clusters} clusters, threshold {args.threshold}, median of {args.repeats}',
    flush=True,
  )
  rows = pipeline_rows(args)
  print(
    '\n| data | B | route | ms | speed-up vs official | ARI vs sklearn | ARI vs truth '
    '| sklearn kmeans vs discretize | S = +1 |\n|---|---|---|---|---|---|---|---|---|'
  )
  for r in rows:
    print(
      f'| {r["data"]} ({r["dim"]}-d) | {r["batch"]} | {r["route"]} | {r["ms"]:.1f} | {r["speedup"]:.1f}x '
      f'| {r["ari_sklearn"]:.3f} | {r["ari_truth"]:.3f} | {r["sk_ari"]:.3f} | {100 * r["positive"]:.0f}% |'
    )
  if args.step:
    rows = step_rows(args)
    print('\n| B | train step (ms) | two graphs alone (ms) | share |\n|---|---|---|---|')
    for r in rows:
      print(f'| {r["batch"]} | {r["step_ms"]:.0f} | {r["graphs_ms"]:.1f} | {100 * r["share"]:.1f}% |')


if __name__ == '__main__':
  main()
