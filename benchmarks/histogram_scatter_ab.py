"""Histogram scatter layouts, side by side in one process: (row, value) index pairs vs flat indices.

  PYTHONPATH=. python benchmarks/histogram_scatter_ab.py [--nq 2000] [--db 1000000] [--rounds 2]

Times `topk_search` (k=100 and 1000) and the `expected` metrics (10k x 60k) with the library's
flat-index histograms (`retrieval.select.row_histograms`) and with the (row, value) scatter it
replaced, patched back in; random 64-bit codes. Prints the times and a checksum of the results,
which must be equal between the two.
"""

import argparse
import time

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from hashjax.retrieval import per_query
from hashjax.retrieval import search


def pairs_histogram(qc, dbc, vc, *, bits):
  """search._histogram before: scatter-add at (row, distance)."""
  rows = lax.broadcasted_iota(jnp.int32, (qc.shape[0], dbc.shape[1]), 0)
  step = lambda h, c: (h.at[rows, search._distances(qc, dbc, vc, c, bits)].add(1), None)
  return lax.scan(step, jnp.zeros((qc.shape[0], bits + 2), jnp.int32), jnp.arange(dbc.shape[0]))[0]


def pairs_histograms(d, rel, bits):
  """per_query._histograms before."""
  rows = lax.broadcasted_iota(jnp.int32, d.shape, 0)
  h = jnp.zeros((d.shape[0], 2 * (bits + 1)), jnp.int32).at[rows, d * 2 + rel.astype(jnp.int32)].add(1)
  return {'hist_all': h[:, 0::2] + h[:, 1::2], 'hist_rel': h[:, 1::2]}


def timed(fn):
  jax.clear_caches()
  fn(warm=True)
  t0 = time.perf_counter()
  out = fn(warm=False)
  return time.perf_counter() - t0, out


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--nq', type=int, default=2000)
  p.add_argument('--db', type=int, default=1_000_000)
  p.add_argument('--rounds', type=int, default=2)
  a = p.parse_args()
  rng = np.random.default_rng(0)
  q = rng.integers(0, 2**32, (a.nq, 2), dtype=np.uint32)
  db = rng.integers(0, 2**32, (a.db, 2), dtype=np.uint32)
  qe, ql = rng.integers(0, 2**32, (10000, 2), dtype=np.uint32), rng.integers(0, 10, 10000)
  dbe, dl = db[:60000], rng.integers(0, 10, 60000)

  def topk(k):
    def run(warm):
      d, i = search.topk_search(q[:64] if warm else q, db, k, bits=64)
      return int(np.asarray(i).sum())

    return run

  def expected(warm):
    n = 64 if warm else len(qe)
    out = per_query.per_query_stats(qe[:n], ql[:n], dbe, dl, bits=64, ties='expected', ks=(1000,))
    return float(np.mean(out['ap']))

  flat = (search._histogram, per_query._histograms)
  for r in range(a.rounds):
    for name, (h, hs) in (('(row, value) scatter', (pairs_histogram, pairs_histograms)), ('flat scatter', flat)):
      search._histogram, per_query._histograms = h, hs
      for k in (100, 1000):
        s, c = timed(topk(k))
        print(f'round {r + 1} {name}: topk k={k} {a.nq} x {a.db}: {s:.2f} s (index checksum {c})', flush=True)
      s, m = timed(expected)
      print(f'round {r + 1} {name}: expected metrics 10k x 60k: {s:.2f} s (mAP {m:.10f})', flush=True)
  search._histogram, per_query._histograms = flat


if __name__ == '__main__':
  main()
