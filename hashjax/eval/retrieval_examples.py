"""A trained run's retrieval, shown and measured: the top-k grid of queries and, for DLBHC's study, per-class Hamming vs coarse-to-fine metrics (`python -m hashjax.retrieve`'s library)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from hashjax import methods
from hashjax.eval import evaluator
from hashjax.eval import plots
from hashjax.eval import workdir_eval
from hashjax.retrieval import coarse_to_fine as coarse_to_fine_lib
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import hash_table
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import search
from hashjax.workdir import run_files


def shares_label(query_labels: np.ndarray, retrieved_labels: np.ndarray) -> np.ndarray:
  """(Q, K) bool: a retrieved item is relevant if it has the query's class (or any of its labels)."""
  if query_labels.ndim == 1:
    return retrieved_labels == query_labels[:, None]
  return np.einsum('qc,qkc->qk', query_labels.astype(np.int64), retrieved_labels.astype(np.int64)) > 0


def load_query_image(path: str, shape: tuple[int, int, int]) -> np.ndarray:
  """An image file as a uint8 (H, W, C) array of the dataset's shape (grey or RGB, resized)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'--query: no image file {path!r}')
  h, w, c = shape
  with Image.open(path) as image:
    image = image.convert('L' if c == 1 else 'RGB').resize((w, h), Image.BILINEAR)
    array = np.asarray(image, np.uint8)
  return array.reshape(h, w, c)


def _check_k(k: int, database_size: int):
  if not 1 <= k <= database_size:
    raise ValueError(f'--k must be in [1, {database_size}] (the database size), got {k}')


def make_retrieval_grid(
  workdir: str,
  num_queries: int = 8,
  k: int = 10,
  seed: int = 0,
  path: str | None = None,
  query_indices=None,
  query_image: str | None = None,
  step: int | None = None,
  radius: int | None = None,
) -> str:
  """Draws the top-k of `query_indices` (positions in the protocol's query set), of an image file, or
  of `num_queries` random queries, with checkpoint `step` (default: the latest); returns the figure's
  path. `radius`: instead, hash-table lookup (`retrieval.hash_table`) of the database images within
  that Hamming radius, nearest first, up to k (blank cells where a query has fewer)."""
  config, run, params, step = workdir_eval.load_run(workdir, step)
  protocol, bs = run.protocol, config.eval.batch_size
  if protocol.is_features:
    raise ValueError(
      f'{workdir} was trained on feature vectors, which have no images to draw: use --per_class N '
      f'(Hamming and coarse-to-fine metrics) or python -m hashjax.evaluate --workdir {workdir}'
    )
  _check_k(k, len(protocol.database))
  db = evaluator.encode_set(run.encode, params, protocol.images, protocol.database, bs, run.data_sharding)
  if query_image:
    images = load_query_image(query_image, protocol.images.shape[1:])[None]
    q = evaluator.encode_set(run.encode, params, images, np.arange(1), bs, run.data_sharding)
    labels, what = None, os.path.basename(query_image)
  else:
    if query_indices:
      chosen = np.asarray(query_indices)
      if chosen.min() < 0 or chosen.max() >= len(protocol.query):
        raise ValueError(f'--query_index must be in [0, {len(protocol.query)}) (the query set), got {list(chosen)}')
    else:
      if not 1 <= num_queries <= len(protocol.query):
        raise ValueError(f'--queries must be in [1, {len(protocol.query)}] (the number of queries), got {num_queries}')
      chosen = np.sort(np.random.default_rng(seed).choice(len(protocol.query), num_queries, replace=False))
    query_ids = protocol.query[chosen]
    images, labels = protocol.images[query_ids], protocol.labels[query_ids]
    q = evaluator.encode_set(run.encode, params, protocol.images, query_ids, bs, run.data_sharding)
    what = f'{len(chosen)} test queries'
  bits = q.shape[1]
  if radius is None:
    distances, indices = search.topk_search(codes_lib.pack_codes(q), codes_lib.pack_codes(db), k, bits=bits)
    distances, indices = np.asarray(distances), np.asarray(indices)
    found, how = np.ones(distances.shape, bool), f'top-{k} by Hamming distance'
  else:
    distances, indices, found = ball_lookup(codes_lib.pack_codes(q), codes_lib.pack_codes(db), bits, radius, k)
    how = (
      f'within Hamming radius {radius} by hash-table lookup ({found.sum(1).mean():.1f} of at most {k} found per query)'
    )
  retrieved_ids = protocol.database[indices]
  relevant = None if labels is None else shares_label(labels, protocol.labels[retrieved_ids])
  title = f'{config.method} {bits} bits, {config.dataset.name} (step {step}): {what}, {how}' + (
    '' if relevant is None or not found.any() else f', precision {relevant[found].mean():.2f}'
  )
  distances = np.where(found, distances, -1)  # -1: a blank cell
  return plots.retrieval_grid(
    images,
    protocol.images[retrieved_ids],
    distances,
    relevant,
    path or os.path.join(workdir, 'retrieval_grid.png'),
    title,
  )


def ball_lookup(q_packed: np.ndarray, db_packed: np.ndarray, bits: int, radius: int, k: int):
  """(distances (Q, k), database positions (Q, k), found (Q, k) bool) of the database codes within
  Hamming `radius` of each query, nearest first (ties by position), up to k, from a hash table."""
  if radius < 0:
    raise ValueError(f'--radius must be >= 0, got {radius}')
  table = hash_table.HashTable(db_packed, bits)
  distances, indices = np.zeros((len(q_packed), k), np.int32), np.zeros((len(q_packed), k), np.int64)
  found = np.zeros((len(q_packed), k), bool)
  for row, query in enumerate(q_packed):
    ids, dists = table.query(query, radius)
    n = min(k, len(ids))
    indices[row, :n], distances[row, :n], found[row, :n] = ids[:n], dists[:n], True
  return distances, indices, found


def sample_per_class(labels: np.ndarray, query: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
  """Sorted positions in `query` (pool ids) of `per_class` random queries of every class; 0: all."""
  if per_class < 0:
    raise ValueError(f'--per_class must be >= 0 (0: every query), got {per_class}')
  if per_class == 0:
    return np.arange(len(query))
  query_labels = labels[query]
  if query_labels.ndim != 1:
    raise ValueError('--per_class N > 0 needs class-id labels; use --per_class 0 (all queries) for multi-label data')
  rng = np.random.default_rng(seed)
  chosen = []
  for c in np.unique(query_labels):
    members = np.flatnonzero(query_labels == c)
    if len(members) < per_class:
      raise ValueError(f'--per_class {per_class}: class {c} has only {len(members)} queries')
    chosen.append(rng.choice(members, per_class, replace=False))
  return np.sort(np.concatenate(chosen))


def make_feature_encoder(config, run):
  """Jitted `encode(params, images) -> [codes | features]` (one array, bits + D columns, so
  `evaluator.encode_set` gathers it): the run's network called with `with_features=True`, on its
  preprocessed inputs (images or feature vectors: `trainer.build`)."""
  forward, preprocess = run.ctx.forward, run.ctx.preprocess
  to_codes = methods.get(config.method).to_codes

  def encode(params, images):
    features, outputs = forward(params, preprocess(images, train=False), train=False, with_features=True)
    return jnp.concatenate([to_codes(outputs), features.reshape(features.shape[0], -1)], axis=1)

  repl = jax.sharding.NamedSharding(run.mesh, jax.sharding.PartitionSpec())
  return jax.jit(encode, in_shardings=(repl, run.data_sharding), out_shardings=run.data_sharding)


def label_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Items per class among `labels` (class ids, or multi-hot rows: each label counts)."""
  if labels.ndim == 1:
    return np.bincount(labels, minlength=num_classes)
  return (np.asarray(labels) != 0).sum(axis=0)


def retrieval_metrics_per_class(
  workdir: str,
  per_class: int,
  pk=(10, 50, 100, 500, 1000),
  topk: int = 1000,
  pool: str = 'topm',
  pool_size: int = 1000,
  radius: int = 2,
  hist_query: int = 0,
  seed: int = 0,
  step: int | None = None,
) -> dict:
  """mAP@topk and P@k of plain Hamming ranking and of coarse-to-fine search for `per_class` random
  queries per class against the database (checkpoint `step`, default the latest); writes
  retrieval_metrics.json and label_histogram.png."""
  config, run, params, step = workdir_eval.load_run(workdir, step)
  protocol, bs = run.protocol, config.eval.batch_size
  ndb = len(protocol.database)
  pk = tuple(int(k) for k in pk)
  if not 1 <= topk <= ndb or any(not 1 <= k <= ndb for k in pk):
    raise ValueError(f'--topk and --pk must be in [1, {ndb}] (the database size), got {topk} and {pk}')
  chosen = sample_per_class(protocol.labels, protocol.query, per_class, seed)
  if not 0 <= hist_query < len(chosen):
    raise ValueError(f'--hist_query must be in [0, {len(chosen)}) (the chosen queries), got {hist_query}')
  query_ids = protocol.query[chosen]
  try:
    encode = make_feature_encoder(config, run)
    q = evaluator.encode_set(encode, params, protocol.images, query_ids, bs, run.data_sharding)
  except TypeError as e:  # models without features reject with_features
    raise ValueError(
      f'coarse-to-fine search needs a model that returns features (with_features=True: '
      f'dlbhc_*, dsh_net_tanh, the backbone models); {config.model.name!r} does not ({e})'
    ) from None
  db = evaluator.encode_set(encode, params, protocol.images, protocol.database, bs, run.data_sharding)
  bits = config.bits
  qp, dp = (codes_lib.pack_codes(x[:, :bits], binary01=False) for x in (q, db))  # sign rule: >= 0 is 1
  ql, dl = protocol.labels[query_ids], protocol.labels[protocol.database]

  hamming = metrics_lib.retrieval_metrics(
    qp, ql, dp, dl, bits=bits, topk=(topk,), radius=config.eval.radius, pn=pk, ties='stable'
  )
  depth = max(topk, *pk)
  ranking = coarse_to_fine_lib.coarse_to_fine(
    qp, dp, q[:, bits:], db[:, bits:], k=depth, bits=bits, pool=pool, pool_size=pool_size, radius=radius
  )
  fine = metrics_lib.ranked_list_metrics(ql, dl[ranking.indices], topk=(topk,), pn=pk)
  fine['pool_fraction'] = float(ranking.in_pool[:, :topk].mean())  # of the top items, from the pool

  # The label histogram of one query's top items, by both rankings.
  _, plain = search.topk_search(qp[hist_query : hist_query + 1], dp, topk, bits=bits)
  counts = {
    'Hamming': label_counts(dl[np.asarray(plain)[0]], protocol.num_classes),
    'coarse-to-fine': label_counts(dl[ranking.indices[hist_query, :topk]], protocol.num_classes),
  }
  query_label = int(ql[hist_query]) if ql.ndim == 1 else None
  title = (
    f'{config.method} {bits} bits, {config.dataset.name} (step {step}): labels of the top {topk}'
    f'\nfor query {int(query_ids[hist_query])}' + (f' (label {query_label})' if query_label is not None else '')
  )
  figure = plots.label_histogram(
    counts, os.path.join(workdir, 'label_histogram.png'), title=title, query_label=query_label
  )
  out = {
    'step': step,
    'bits': bits,
    'per_class': per_class,
    'num_queries': len(query_ids),
    'database': ndb,
    'query_seed': seed,
    'topk': topk,
    'pk': list(pk),
    'coarse_to_fine_pool': {'pool': pool, 'pool_size': pool_size, **({'radius': radius} if pool == 'radius' else {})},
    'hamming': {key: value for key, value in hamming.items() if key.startswith(('mAP', 'P@'))},
    'coarse_to_fine': fine,
    'histogram': {
      'query_pool_id': int(query_ids[hist_query]),
      'query_label': query_label,
      **{name: c.tolist() for name, c in counts.items()},
    },
    'files': [os.path.join(workdir, 'retrieval_metrics.json'), figure],
  }
  run_files.write_json(workdir, 'retrieval_metrics.json', out)
  return out
