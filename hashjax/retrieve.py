"""Retrieval demo of a trained run: queries and their nearest database images by Hamming distance.

  python -m hashjax.retrieve --workdir runs/X [--queries 8] [--k 10] [--seed 0]   # random test queries
  python -m hashjax.retrieve --workdir runs/X --query_index 3 --query_index 17      # given test queries
  python -m hashjax.retrieve --workdir runs/X --query path/to/image.png --k 10 --out grid.png

Writes one image (default WORKDIR/retrieval_grid.png): a row per query, the query then its top-k
with their Hamming distances, framed green where they share the query's label (red otherwise; no
frame for an image file, which has no label). Codes come from the workdir's latest checkpoint;
ranking is the exact `retrieval.search.topk_search` (ties by database order). An image file is
converted to the dataset's channels and size first.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image

from hashjax import checkpoint
from hashjax import evaluate_run
from hashjax import evaluator
from hashjax import plots
from hashjax.retrieval import codes as codes_lib
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
                        query_indices=None, query_image: str | None = None) -> str:
  """Draws the top-k of `query_indices` (positions in the protocol's query set), of an image file, or
  of `num_queries` random queries; returns the figure's path."""
  config, run, params, step = evaluate_run.load_run(workdir)
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


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.retrieve', description=__doc__.split('\n\n')[0])
  p.add_argument('--workdir', required=True, help='a training run folder (config.json + checkpoints/)')
  p.add_argument('--queries', type=int, default=8, help='random test queries, one row each')
  p.add_argument('--query_index', type=int, action='append', default=[], help='a test query by position; repeat')
  p.add_argument('--query', default=None, help='an image file as the query')
  p.add_argument('--k', type=int, default=10, help='retrieved images per query')
  p.add_argument('--seed', type=int, default=0, help='which random queries are drawn')
  p.add_argument('--out', default=None, help='output PNG (default WORKDIR/retrieval_grid.png)')
  args = p.parse_args(argv)
  if args.query and args.query_index:
    p.error('give --query or --query_index, not both')
  try:
    path = make_retrieval_grid(args.workdir, args.queries, args.k, args.seed, args.out, args.query_index, args.query)
  except (ValueError, FileNotFoundError, checkpoint.CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
