"""The top-10 retrieval figure of a trained run: a few random test queries and their nearest
database images by Hamming distance of the codes, framed green where they share the query's label.

  python -m hashjax.retrieval_grid --workdir runs/ae_mnist [--queries 8] [--k 10] [--seed 0]

Writes `retrieval_grid.png` into the workdir (or --out) and prints its path. Codes come from the
workdir's latest checkpoint through `evaluate_run.encode_workdir`; ranking is the exact
`retrieval.search.topk_search` (ties by database order).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from hashjax import checkpoint
from hashjax import evaluate_run
from hashjax import plots
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import search


def shares_label(query_labels: np.ndarray, retrieved_labels: np.ndarray) -> np.ndarray:
  """(Q, K) bool: a retrieved item is relevant if it has the query's class (or any of its labels)."""
  if query_labels.ndim == 1:
    return retrieved_labels == query_labels[:, None]
  return np.einsum('qc,qkc->qk', query_labels.astype(np.int64), retrieved_labels.astype(np.int64)) > 0


def make_retrieval_grid(workdir: str, num_queries: int = 8, k: int = 10, seed: int = 0,
                        path: str | None = None) -> str:
  """Encodes the workdir's query and database sets, draws `num_queries` random queries' top-k; returns the path."""
  config, protocol, q, db, step = evaluate_run.encode_workdir(workdir)
  if not 1 <= num_queries <= len(q):
    raise ValueError(f'--queries must be in [1, {len(q)}] (the number of queries), got {num_queries}')
  if not 1 <= k <= len(db):
    raise ValueError(f'--k must be in [1, {len(db)}] (the database size), got {k}')
  bits = q.shape[1]
  chosen = np.sort(np.random.default_rng(seed).choice(len(q), num_queries, replace=False))
  distances, indices = search.topk_search(codes_lib.pack_codes(q[chosen]), codes_lib.pack_codes(db), k,
                                          bits=bits)
  distances, indices = np.asarray(distances), np.asarray(indices)
  query_ids, retrieved_ids = protocol.query[chosen], protocol.database[indices]
  relevant = shares_label(protocol.labels[query_ids], protocol.labels[retrieved_ids])
  title = (f'{config.method} {bits} bits, {config.dataset.name} (step {step}): top-{k} by Hamming distance, '
           f'precision {relevant.mean():.2f}')
  return plots.retrieval_grid(protocol.images[query_ids], protocol.images[retrieved_ids], distances, relevant,
                              path or os.path.join(workdir, 'retrieval_grid.png'), title)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.retrieval_grid', description=__doc__.split('\n\n')[0])
  p.add_argument('--workdir', required=True, help='a training run folder (config.json + checkpoints/)')
  p.add_argument('--queries', type=int, default=8, help='random test queries, one row each')
  p.add_argument('--k', type=int, default=10, help='retrieved images per query')
  p.add_argument('--seed', type=int, default=0, help='which queries are drawn')
  p.add_argument('--out', default=None, help='output PNG (default WORKDIR/retrieval_grid.png)')
  args = p.parse_args(argv)
  try:
    path = make_retrieval_grid(args.workdir, args.queries, args.k, args.seed, args.out)
  except (ValueError, FileNotFoundError, checkpoint.CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(path)
  return 0


if __name__ == '__main__':
  sys.exit(main())
