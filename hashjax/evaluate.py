"""Retrieval metrics of saved hash codes, printed as one JSON object.

  python -m hashjax.evaluate --workdir runs/X     # a training run's latest checkpoint
  python -m hashjax.evaluate --query_codes Q.npy --query_labels QL.npy \
      --db_codes D.npy --db_labels DL.npy [--topk K] \
      [--ties stable|numpy|expected] [--radius 2] [--pn 100,500,1000] [--shard_db]

Codes: (n, bits) ±1, {0,1} or real-valued (sign taken, sign(0) = +1), or
already packed uint32 (n, ceil(bits/32)), which needs --bits. Any uint32 array
is read as packed; an array whose values are all 0 or 1 (any dtype) is read as
{0,1} bits (bit = value), otherwise bit = (value >= 0). Labels: (n,) class ids or (n, C) multi-hot.
Output keys: mAP, mAP@K (with --topk), P@H<=r, R@H<=r, P@N (a dict N -> value).
Metric definitions: hashjax/retrieval/metrics.py. Bad input: a message on
stderr, exit code 2.
"""

import argparse
import json
import os
import sys

from hashjax.cli import command
from hashjax.retrieval import code_files


def _parse_pn(text: str) -> tuple[int, ...]:
  try:
    pn = tuple(int(v) for v in text.split(',') if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f'--pn must be integers like 100,500: {text!r}') from None
  if any(v < 1 for v in pn):
    raise argparse.ArgumentTypeError(f'--pn values must be >= 1: {text!r}')
  return pn


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog='python -m hashjax.evaluate', description=__doc__.split('\n\n')[0])
  p.add_argument(
    '--workdir',
    default=None,
    help="evaluate a training run's latest checkpoint instead of "
    'code files; writes eval_metrics.json, codes.npz, '
    'pr_curve.png and p_at_n.png there',
  )
  p.add_argument('--query_codes')
  p.add_argument('--query_labels')
  p.add_argument('--db_codes')
  p.add_argument('--db_labels')
  p.add_argument('--topk', type=int, default=None, help='also report mAP@K')
  p.add_argument(
    '--ties',
    choices=('stable', 'numpy', 'expected'),
    default='stable',
    help='order of equal distances: database index (stable), a host np.argsort '
    "(numpy, as DeepHash-pytorch), or every metric's expectation over random orders "
    '(expected: from per-distance counts, the fastest)',
  )
  p.add_argument('--radius', type=int, default=2)
  p.add_argument('--pn', type=_parse_pn, default=(), help='e.g. 100,500,1000')
  p.add_argument('--bits', type=int, default=None, help='code length; required for packed uint32 codes')
  p.add_argument('--zero_relevant', choices=('zero', 'drop'), default='zero')
  p.add_argument('--query_chunk', type=int, default=None)
  p.add_argument(
    '--shard_db',
    action='store_true',
    help='split the database over every visible device (each scans its slice; '
    'ties stable or expected); on a CPU-only host one device per core '
    '(JAX_NUM_CPU_DEVICES=N overrides)',
  )
  p.add_argument(
    '--tsne', type=int, default=2000, help='with --workdir: query codes in the t-SNE plot codes_tsne.png (0: no plot)'
  )
  p.add_argument(
    '--step', type=int, default=None, help='with --workdir: evaluate this checkpoint step (default: the latest)'
  )
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  return p


def run(argv=None) -> dict:
  parser = _parser()
  args = parser.parse_args(argv)
  files = ('query_codes', 'query_labels', 'db_codes', 'db_labels')
  if args.workdir:
    if any(getattr(args, f) for f in files):
      parser.error('give either --workdir or the four code/label files, not both')
    from hashjax.eval import workdir_eval

    return workdir_eval.evaluate_workdir(args.workdir, tsne_sample=args.tsne, step=args.step)
  missing = [f'--{f}' for f in files if not getattr(args, f)]
  if missing:
    parser.error(f'missing {", ".join(missing)} (or give --workdir)')
  if args.shard_db and 'JAX_NUM_CPU_DEVICES' not in os.environ:
    import jax

    # Before any JAX operation; only the CPU backend reads it. Each CPU device scans its slice on
    # its own thread (benchmarks/notes/retrieval_engine.md,
    # "The database split over the CPU's cores": 2.2x on two cores at 60k codes).
    try:
      jax.config.update('jax_num_cpu_devices', os.cpu_count() or 1)
    except RuntimeError:  # JAX already running in this process (a caller's): keep its devices
      pass
  from hashjax.retrieval.metrics import retrieval_metrics
  from hashjax.retrieval.search import db_mesh

  qc, qbits = code_files.packed_codes(code_files.load_npy(args.query_codes, 'query codes'), 'query codes', args.bits)
  dc, dbits = code_files.packed_codes(code_files.load_npy(args.db_codes, 'database codes'), 'database codes', args.bits)
  if qbits != dbits:
    raise ValueError(f'query codes have {qbits} bits, database codes {dbits}')
  m = retrieval_metrics(
    qc,
    code_files.load_npy(args.query_labels, 'query labels'),
    dc,
    code_files.load_npy(args.db_labels, 'database labels'),
    bits=qbits,
    topk=() if args.topk is None else (args.topk,),
    radius=args.radius,
    pn=args.pn,
    ties=args.ties,
    zero_relevant=args.zero_relevant,
    query_chunk=args.query_chunk,
    mesh=db_mesh() if args.shard_db else None,
  )
  out = {k: v for k, v in m.items() if not k.startswith('P@') or 'H' in k}
  out['P@N'] = {str(n): m[f'P@{n}'] for n in args.pn}
  return out


def main(argv=None) -> int:
  args = _parser().parse_args(argv)

  def evaluate():
    print(json.dumps(run(argv)))

  return command.run(evaluate, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
