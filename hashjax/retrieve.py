"""Retrieval demo of a trained run: queries and their nearest database images by Hamming distance.

  python -m hashjax.retrieve --workdir runs/X [--queries 8] [--k 10] [--seed 0]   # random test queries
  python -m hashjax.retrieve --workdir runs/X --query_index 3 --query_index 17      # given test queries
  python -m hashjax.retrieve --workdir runs/X --query path/to/image.png --k 10 --out grid.png
  python -m hashjax.retrieve --workdir runs/X --radius 2 --k 10                     # hash-table lookup

Writes one image (default WORKDIR/retrieval_grid.png): a row per query, the query then its top-k
with their Hamming distances, framed green where they share the query's label (red otherwise; no
frame for an image file, which has no label). Codes come from the workdir's latest checkpoint;
ranking is the exact `retrieval.search.topk_search` (ties by database order); with `--radius R`,
the images within Hamming radius R are looked up in a hash table of the database codes
(`retrieval.hash_table`: every code within R of the query is probed), nearest first, up to k. An
image file is converted to the dataset's channels and size first.

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
import sys

from hashjax.cli import command
from hashjax.eval import retrieval_examples
from hashjax.retrieval import coarse_to_fine as coarse_to_fine_lib


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
  metrics_mode.add_argument(
    '--per_class', type=int, default=None, help='N random queries per class (0: all queries); selects metrics mode'
  )
  metrics_mode.add_argument('--pk', default='10,50,100,500,1000', help='Precision@k cut-offs, comma-separated')
  metrics_mode.add_argument('--topk', type=int, default=1000, help='mAP over the top K; histogram of the top K')
  metrics_mode.add_argument(
    '--pool',
    default='topm',
    choices=coarse_to_fine_lib.POOLS,
    help='coarse pool: the top M by Hamming distance, or those within --radius of them',
  )
  metrics_mode.add_argument('--pool_size', type=int, default=1000, help='M: Hamming candidates per query')
  metrics_mode.add_argument('--hist_query', type=int, default=0, help='which chosen query the histogram shows')
  p.add_argument(
    '--radius',
    type=int,
    default=None,
    help='the database images within this Hamming radius (hash-table lookup) instead of the '
    'top-k; metrics mode: the radius of --pool radius (default 2)',
  )
  p.add_argument('--step', type=int, default=None, help='checkpoint step to encode with (default: the latest)')
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = p.parse_args(argv)
  if args.query and args.query_index:
    p.error('give --query or --query_index, not both')
  if args.per_class is not None and (args.query or args.query_index):
    p.error('--per_class computes metrics over sampled queries; it takes no --query or --query_index')

  def retrieve():
    if args.per_class is not None:
      pk = tuple(int(k) for k in args.pk.split(',') if k.strip())
      out = retrieval_examples.retrieval_metrics_per_class(
        args.workdir,
        args.per_class,
        pk,
        args.topk,
        args.pool,
        args.pool_size,
        2 if args.radius is None else args.radius,
        args.hist_query,
        args.seed,
        step=args.step,
      )
      print(json.dumps({k: out[k] for k in ('num_queries', 'hamming', 'coarse_to_fine', 'files')}, indent=1))
      return
    print(
      retrieval_examples.make_retrieval_grid(
        args.workdir,
        args.queries,
        args.k,
        args.seed,
        args.out,
        args.query_index,
        args.query,
        step=args.step,
        radius=args.radius,
      )
    )

  return command.run(retrieve, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
