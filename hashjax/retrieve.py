"""Retrieval demo of a trained run: queries and their nearest database images by Hamming distance.

  python -m hashjax.retrieve --workdir runs/X [--queries 8] [--k 10] [--seed 0]   # random test queries
  python -m hashjax.retrieve --workdir runs/X --query_index 3 --query_index 17      # given test queries
  python -m hashjax.retrieve --workdir runs/X --query path/to/image.png --k 10 --out grid.png

Writes one image (default WORKDIR/retrieval_grid.png): a row per query, the query then its top-k
with their Hamming distances, framed green where they share the query's label (red otherwise; no
frame for an image file, which has no label). Codes come from the workdir's latest checkpoint;
ranking is the exact `retrieval.search.topk_search` (ties by database order). An image file is
converted to the dataset's channels and size first.

Metrics mode (DLBHC's retrieval study; the seed's `run_retrieval.py --rand N`):

  python -m hashjax.retrieve --workdir runs/X --per_class N [--pk 10,50,100,500,1000] [--topk 1000]
      [--pool topm|radius] [--pool_size 1000] [--radius 2] [--hist_query 0]

N random queries per class from the protocol's query split (0: all of them) against the whole
database: mAP@topk and P@k over all those queries, for plain Hamming ranking and for
coarse-to-fine search (`retrieval.coarse_to_fine`: the Hamming candidate pool re-ranked by
Euclidean distance on the features the model returns with `with_features=True`, e.g. DLBHC's
fc7). Writes WORKDIR/retrieval_metrics.json and WORKDIR/label_histogram.png (the labels among
one query's top `topk` by both rankings) and prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from hashjax import cli
from hashjax import evaluate_run
from hashjax import evaluator
from hashjax import methods
from hashjax import models
from hashjax import plots
from hashjax import run_files
from hashjax import train
from hashjax import train_step
from hashjax.retrieval import coarse_to_fine as coarse_to_fine_lib
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import search


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


def make_retrieval_grid(workdir: str, num_queries: int = 8, k: int = 10, seed: int = 0, path: str | None = None,
                        query_indices=None, query_image: str | None = None, step: int | None = None) -> str:
  """Draws the top-k of `query_indices` (positions in the protocol's query set), of an image file, or
  of `num_queries` random queries, with checkpoint `step` (default: the latest); returns the figure's path."""
  config, run, params, step = evaluate_run.load_run(workdir, step)
  protocol, bs = run.protocol, config.eval.batch_size
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
  distances, indices = search.topk_search(codes_lib.pack_codes(q), codes_lib.pack_codes(db), k, bits=bits)
  distances, indices = np.asarray(distances), np.asarray(indices)
  retrieved_ids = protocol.database[indices]
  relevant = None if labels is None else shares_label(labels, protocol.labels[retrieved_ids])
  title = (f'{config.method} {bits} bits, {config.dataset.name} (step {step}): {what}, top-{k} by Hamming distance'
           + ('' if relevant is None else f', precision {relevant.mean():.2f}'))
  return plots.retrieval_grid(images, protocol.images[retrieved_ids], distances, relevant,
                              path or os.path.join(workdir, 'retrieval_grid.png'), title)


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
  """Jitted `encode(params, uint8 images) -> [codes | features]` (one array, bits + D columns, so
  `evaluator.encode_set` gathers it): the run's network called with `with_features=True`."""
  protocol = run.protocol
  h, w, c = protocol.images.shape[1:]
  size = config.get('image_size') or None
  graphdef, _ = models.build(config.model, config.bits, (size, size, c) if size else (h, w, c), jax.random.key(0))
  network = models.make_forward(graphdef)
  mean, std = train.normalization(config.get('normalize', 'dataset'), protocol)
  preprocess = train_step.make_preprocess(mean, std, size, 'none')
  to_codes = methods.get(config.method).to_codes

  def encode(params, images):
    # The trainer's params are {'model': network, 'method': the method's own} (train.build).
    features, outputs = network(params['model'], preprocess(images, train=False), train=False, with_features=True)
    return jnp.concatenate([to_codes(outputs), features.reshape(features.shape[0], -1)], axis=1)
  repl = jax.sharding.NamedSharding(run.mesh, jax.sharding.PartitionSpec())
  return jax.jit(encode, in_shardings=(repl, run.data_sharding), out_shardings=run.data_sharding)


def label_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Items per class among `labels` (class ids, or multi-hot rows: each label counts)."""
  if labels.ndim == 1:
    return np.bincount(labels, minlength=num_classes)
  return (np.asarray(labels) != 0).sum(axis=0)


def retrieval_metrics_per_class(workdir: str, per_class: int, pk=(10, 50, 100, 500, 1000), topk: int = 1000,
                                pool: str = 'topm', pool_size: int = 1000, radius: int = 2, hist_query: int = 0,
                                seed: int = 0, step: int | None = None) -> dict:
  """mAP@topk and P@k of plain Hamming ranking and of coarse-to-fine search for `per_class` random
  queries per class against the database (checkpoint `step`, default the latest); writes
  retrieval_metrics.json and label_histogram.png."""
  config, run, params, step = evaluate_run.load_run(workdir, step)
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
    raise ValueError(f'coarse-to-fine search needs a model that returns features (with_features=True: '
                     f'dlbhc_*, dsh_net_tanh, the backbone models); {config.model.name!r} does not ({e})') from None
  db = evaluator.encode_set(encode, params, protocol.images, protocol.database, bs, run.data_sharding)
  bits = config.bits
  qp, dp = (codes_lib.pack_codes(x[:, :bits], binary01=False) for x in (q, db))  # sign rule: >= 0 is 1
  ql, dl = protocol.labels[query_ids], protocol.labels[protocol.database]

  hamming = metrics_lib.retrieval_metrics(qp, ql, dp, dl, bits=bits, topk=(topk,), radius=config.eval.radius,
                                          pn=pk, ties='stable')
  depth = max(topk, *pk)
  ranking = coarse_to_fine_lib.coarse_to_fine(qp, dp, q[:, bits:], db[:, bits:], k=depth, bits=bits, pool=pool,
                                              pool_size=pool_size, radius=radius)
  fine = metrics_lib.ranked_list_metrics(ql, dl[ranking.indices], topk=(topk,), pn=pk)
  fine['pool_fraction'] = float(ranking.in_pool[:, :topk].mean())  # of the top items, from the pool

  # The label histogram of one query's top items, by both rankings.
  _, plain = search.topk_search(qp[hist_query:hist_query + 1], dp, topk, bits=bits)
  counts = {'Hamming': label_counts(dl[np.asarray(plain)[0]], protocol.num_classes),
            'coarse-to-fine': label_counts(dl[ranking.indices[hist_query, :topk]], protocol.num_classes)}
  query_label = int(ql[hist_query]) if ql.ndim == 1 else None
  title = (f'{config.method} {bits} bits, {config.dataset.name} (step {step}): labels of the top {topk}'
           f'\nfor query {int(query_ids[hist_query])}' + (f' (label {query_label})' if query_label is not None else ''))
  figure = plots.label_histogram(counts, os.path.join(workdir, 'label_histogram.png'), title=title,
                                 query_label=query_label)
  out = {
      'step': step, 'bits': bits, 'per_class': per_class, 'num_queries': len(query_ids), 'database': ndb,
      'query_seed': seed, 'topk': topk, 'pk': list(pk),
      'coarse_to_fine_pool': {'pool': pool, 'pool_size': pool_size, **({'radius': radius} if pool == 'radius' else {})},
      'hamming': {key: value for key, value in hamming.items() if key.startswith(('mAP', 'P@'))},
      'coarse_to_fine': fine,
      'histogram': {'query_pool_id': int(query_ids[hist_query]), 'query_label': query_label,
                    **{name: c.tolist() for name, c in counts.items()}},
      'files': [os.path.join(workdir, 'retrieval_metrics.json'), figure],
  }
  run_files.write_json(workdir, 'retrieval_metrics.json', out)
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.retrieve', description=__doc__.split('\n\n')[0])
  p.add_argument('--workdir', required=True, help='a training run folder (config.json + checkpoints/)')
  p.add_argument('--queries', type=int, default=8, help='random test queries, one row each')
  p.add_argument('--query_index', type=int, action='append', default=[], help='a test query by position; repeat')
  p.add_argument('--query', default=None, help='an image file as the query')
  p.add_argument('--k', type=int, default=10, help='retrieved images per query')
  p.add_argument('--seed', type=int, default=0, help='which random queries are drawn')
  p.add_argument('--out', default=None, help='output PNG (default WORKDIR/retrieval_grid.png)')
  metrics_mode = p.add_argument_group('metrics mode (--per_class): Hamming vs coarse-to-fine')
  metrics_mode.add_argument('--per_class', type=int, default=None,
                            help='N random queries per class (0: all queries); selects metrics mode')
  metrics_mode.add_argument('--pk', default='10,50,100,500,1000', help='Precision@k cut-offs, comma-separated')
  metrics_mode.add_argument('--topk', type=int, default=1000, help='mAP over the top K; histogram of the top K')
  metrics_mode.add_argument('--pool', default='topm', choices=coarse_to_fine_lib.POOLS,
                            help='coarse pool: the top M by Hamming distance, or those within --radius of them')
  metrics_mode.add_argument('--pool_size', type=int, default=1000, help='M: Hamming candidates per query')
  metrics_mode.add_argument('--radius', type=int, default=2, help='Hamming radius of --pool radius')
  metrics_mode.add_argument('--hist_query', type=int, default=0, help='which chosen query the histogram shows')
  p.add_argument('--step', type=int, default=None, help='checkpoint step to encode with (default: the latest)')
  p.add_argument('--verbosity', default=None, help=cli.VERBOSITY_HELP)
  args = p.parse_args(argv)
  if args.query and args.query_index:
    p.error('give --query or --query_index, not both')
  if args.per_class is not None and (args.query or args.query_index):
    p.error('--per_class computes metrics over sampled queries; it takes no --query or --query_index')

  def retrieve():
    if args.per_class is not None:
      pk = tuple(int(k) for k in args.pk.split(',') if k.strip())
      out = retrieval_metrics_per_class(args.workdir, args.per_class, pk, args.topk, args.pool, args.pool_size,
                                        args.radius, args.hist_query, args.seed, step=args.step)
      print(json.dumps({k: out[k] for k in ('num_queries', 'hamming', 'coarse_to_fine', 'files')}, indent=1))
      return
    print(make_retrieval_grid(args.workdir, args.queries, args.k, args.seed, args.out, args.query_index, args.query,
                              step=args.step))
  return cli.run(retrieve, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
