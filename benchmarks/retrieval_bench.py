"""Retrieval engine benchmark: hashjax vs a NumPy port of DeepHash-pytorch.

  python benchmarks/retrieval_bench.py [--nq 10000] [--db 60000] [--bits 64]
      [--ref_queries 10000] [--cases all|name,name] [--repeat 2] [--devices 8]
      [--codes runs/X/codes.npz]

Synthetic single-label data (10 classes; each code = its class centre with
every bit flipped with probability 0.25), so mAP is far from chance and
Hamming ties are massive, as with trained codes. Every case runs in its own
subprocess so ``ru_maxrss`` is that case's peak resident memory. Prints one
JSON line per case. The DeepHash-pytorch loop (benchmarks/
retrieval_dhp_reference.py) runs on the first --ref_queries queries and its
time is scaled linearly to --nq (its cost is exactly linear in queries).
--codes takes a trained run's codes instead (the codes.npz that
`python -m hashjax.evaluate --workdir` writes: its query and database sets,
labels and length; --nq / --db / --bits are then ignored). Trained codes
repeat: hashjax ranks each distinct (code, label) query once.
ours_stable and topk use the native kernels (retrieval/native.py) where they compile;
ours_stable_count and topk_xla are the XLA code. The *_sharded cases split the database over --devices devices (simulated CPU
devices on a CPU host: one process, so ru_maxrss is all devices together; the
per-device figure is XLA's memory analysis of the compiled per-device program).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

CASES = (
  'ours_stable',
  'ours_stable_count',
  'ours_numpy',
  'ours_expected',
  'ours_stable_sharded',
  'ours_expected_sharded',
  'dhp',
  'topk',
  'topk_xla',
  'topk_sharded',
  'faiss',
  'distmat',
)


def make_data(nq, ndb, bits, classes=10, flip=0.25, seed=0):
  rng = np.random.default_rng(seed)
  centres = rng.choice(np.array([-1, 1], np.int8), size=(classes, bits))

  def draw(n):
    y = rng.integers(0, classes, n)
    x = centres[y] * np.where(rng.random((n, bits)) < flip, -1, 1).astype(np.int8)
    return x.astype(np.int8), y

  q, ql = draw(nq)
  d, dl = draw(ndb)
  return q, ql, d, dl


def load_codes(path):
  """(q, ql, d, dl, bits) as +-1 int8 codes from a run's codes.npz."""
  from hashjax.retrieval.codes import unpack_codes

  with np.load(path, allow_pickle=False) as f:
    bits = int(f['bits'])
    unpack = lambda p: unpack_codes(p, bits).astype(np.int8)
    return unpack(f['query_packed']), f['query_labels'], unpack(f['db_packed']), f['db_labels'], bits


def _timed(fn, repeat):
  times, out = [], None
  for _ in range(repeat):
    t0 = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t0)
  return out, times


def _per_device_memory(qp, ql, dp, dl, mesh, **kw):
  """Bytes XLA allocates per device for the sharded program: arguments + outputs + temporaries."""
  from hashjax.retrieval import db_sharded
  from hashjax.retrieval.validate import check_labels

  arrays, static = db_sharded.sharded_inputs(
    qp, check_labels(ql, 'q', len(qp)), dp, check_labels(dl, 'd', len(dp)), mesh=mesh, **kw
  )
  m = db_sharded._sharded.lower(*arrays, **static).compile().memory_analysis()
  return {
    'argument_MiB': m.argument_size_in_bytes / 2**20,
    'output_MiB': m.output_size_in_bytes / 2**20,
    'temp_MiB': m.temp_size_in_bytes / 2**20,
  }


def _faiss_bytes(packed, bits):
  """faiss binary codes: bits / 8 bytes per code, the same bit order as our little-endian words."""
  return np.ascontiguousarray(np.ascontiguousarray(packed).view(np.uint8)[:, : bits // 8])


def run_case(case, a):
  import jax

  if case.endswith('_sharded'):
    jax.config.update('jax_num_cpu_devices', a.devices)
  from hashjax.retrieval.codes import pack_codes
  from hashjax.retrieval.metrics import retrieval_metrics

  if a.codes:
    q, ql, d, dl, a.bits = load_codes(a.codes)
    a.nq, a.db = len(q), len(d)
  else:
    q, ql, d, dl = make_data(a.nq, a.db, a.bits)
  qp, dp = pack_codes(q), pack_codes(d)
  res = {'case': case, 'nq': a.nq, 'db': a.db, 'bits': a.bits, 'codes': a.codes or 'synthetic'}
  if a.codes:
    from hashjax.retrieval.metrics import unique_queries

    res['distinct_queries'] = len(unique_queries(qp, ql)[0])
    res['distinct_query_codes'] = len(np.unique(qp, axis=0))
  if case.startswith('ours_'):
    ties = case.split('_')[1]
    if case == 'ours_stable_count':
      # The XLA counting scan, as on a machine where the native kernel does not compile.
      from hashjax.retrieval import native

      native._load = lambda: 'disabled by the benchmark'
    elif ties == 'stable' and not case.endswith('_sharded'):
      from hashjax.retrieval import native

      res['native_kernel'] = native.available()
    topk = (a.topk,)
    mesh = None
    if case.endswith('_sharded'):
      from hashjax.retrieval.search import db_mesh

      mesh = db_mesh()
      res['devices'] = mesh.size
      res['per_device'] = _per_device_memory(qp, ql, dp, dl, mesh, bits=a.bits, ks=topk, pns=(100, 1000), ties=ties)
    fn = lambda: jax.block_until_ready(
      retrieval_metrics(qp, ql, dp, dl, bits=a.bits, topk=topk, pn=(100, 1000), ties=ties, mesh=mesh)
    )
    out, times = _timed(fn, a.repeat)
    res.update(metrics=out, seconds=times, note='first time includes jit compile')
  elif case == 'dhp':
    from retrieval_dhp_reference import calc_top_map

    n = min(a.ref_queries, a.nq)
    qf, df = q[:n].astype(np.float32), d.astype(np.float32)
    eye = np.eye(int(max(ql.max(), dl.max())) + 1, dtype=np.float32)
    qlf, dlf = eye[ql[:n]], eye[dl]
    for name, k in (('mAP', a.db), (f'mAP@{a.topk}', a.topk)):
      t0 = time.perf_counter()
      m = calc_top_map(df, qf, dlf, qlf, k)
      dt = time.perf_counter() - t0
      res[name] = m
      res[f'seconds_{name}'] = dt
      res[f'seconds_{name}_scaled_to_nq'] = dt * a.nq / n
    res['ref_queries'] = n
  elif case in ('topk', 'topk_xla', 'topk_sharded'):
    from hashjax.retrieval.search import db_mesh
    from hashjax.retrieval.search import topk_search

    mesh = db_mesh() if case == 'topk_sharded' else None
    impl = 'xla' if case == 'topk_xla' else 'auto'
    res['devices'] = 1 if mesh is None else mesh.size
    for k in (100, 1000):
      _, times = _timed(
        lambda: jax.block_until_ready(topk_search(qp, dp, k, bits=a.bits, mesh=mesh, impl=impl)), a.repeat
      )
      res[f'seconds_k{k}'] = times
  elif case == 'faiss':
    try:
      import faiss
    except ImportError:
      res['skipped'] = 'faiss not installed'
      return res
    index = faiss.IndexBinaryFlat(a.bits)
    index.add(_faiss_bytes(dp, a.bits))
    qb = _faiss_bytes(qp, a.bits)
    res['threads'] = faiss.omp_get_max_threads()
    for k in (100, 1000):
      (_, ids), times = _timed(lambda: index.search(qb, k), a.repeat)
      res[f'seconds_k{k}'] = times
      from hashjax.retrieval.search import topk_search

      dist_ours, _ = topk_search(qp[:200], dp, k, bits=a.bits)
      dist_faiss, _ = index.search(qb[:200], k)
      res[f'same_distances_k{k}_first200q'] = bool((np.asarray(dist_ours) == dist_faiss).all())
  elif case == 'distmat':
    # The full (n, db) distance matrix, hashjax.retrieval.hamming_distances vs faiss.hammings.
    from hashjax.retrieval.hamming import hamming_distances

    n = min(a.dm_queries, a.nq)
    ours, times = _timed(lambda: np.asarray(hamming_distances(qp[:n], dp)), a.repeat)
    res.update(dm_queries=n, seconds_ours=times)
    try:
      import faiss
    except ImportError:
      res['faiss'] = 'not installed'
    else:
      qb, db_bytes = (_faiss_bytes(x, a.bits) for x in (qp[:n], dp))
      nbytes = qb.shape[1]

      def faiss_matrix():
        out = np.empty((n, len(db_bytes)), np.int32)
        faiss.hammings(faiss.swig_ptr(qb), faiss.swig_ptr(db_bytes), n, len(db_bytes), nbytes, faiss.swig_ptr(out))
        return out

      theirs, times = _timed(faiss_matrix, a.repeat)
      res.update(seconds_faiss=times, identical=bool((ours == theirs).all()))
  res['maxrss_MiB'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return res


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--nq', type=int, default=10000)
  p.add_argument('--db', type=int, default=60000)
  p.add_argument('--bits', type=int, default=64)
  p.add_argument('--topk', type=int, default=1000)
  p.add_argument('--ref_queries', type=int, default=10000)
  p.add_argument('--repeat', type=int, default=2)
  p.add_argument('--cases', default='all')
  p.add_argument('--devices', type=int, default=8, help='for the *_sharded cases')
  p.add_argument('--codes', default='', help="a run's codes.npz instead of synthetic codes")
  p.add_argument('--dm_queries', type=int, default=2000, help='queries of the distmat case')
  p.add_argument('--one', default=None, help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.one:
    print(json.dumps(run_case(a.one, a)), flush=True)
    return
  cases = CASES if a.cases == 'all' else tuple(a.cases.split(','))
  base = [
    f'--nq={a.nq}',
    f'--db={a.db}',
    f'--bits={a.bits}',
    f'--topk={a.topk}',
    f'--ref_queries={a.ref_queries}',
    f'--repeat={a.repeat}',
    f'--devices={a.devices}',
    f'--codes={a.codes}',
    f'--dm_queries={a.dm_queries}',
  ]
  for case in cases:
    subprocess.run([sys.executable, __file__, *base, f'--one={case}'], check=True)


if __name__ == '__main__':
  main()
