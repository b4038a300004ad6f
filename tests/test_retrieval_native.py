"""The native kernels (retrieval/native.py) against the XLA code and NumPy; their build (once per host,
and required where .ci/run says so)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from hashjax.retrieval import native
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.metrics import check_inputs
from hashjax.retrieval.per_query import per_query_stats
from hashjax.retrieval.search import topk_search

# .ci/run sets HASHJAX_REQUIRE_NATIVE=1: there a kernel that does not build fails these tests instead of
# skipping them (and test_native_kernels_build_where_required says why), so CI never passes on the
# slower XLA fallback alone. Elsewhere (a machine without g++) they skip.
REQUIRED = os.environ.get('HASHJAX_REQUIRE_NATIVE') == '1'
needs_kernel = pytest.mark.skipif(
  not REQUIRED and not native.available()[0], reason=f'native kernel unavailable: {native.available()[1]}'
)


def test_native_kernels_build_where_required():
  if not REQUIRED:
    pytest.skip('HASHJAX_REQUIRE_NATIVE=1 is not set (.ci/run sets it): the XLA fallback is allowed here')
  ok, why = native.available()
  assert ok, f'the native kernels did not build on this machine (HASHJAX_REQUIRE_NATIVE=1): {why}'


def _case(rng, nq, n, bits, multi, classes=5):
  q = rng.choice(np.array([-1, 1], np.int8), size=(nq, bits))
  db = rng.choice(np.array([-1, 1], np.int8), size=(n, bits))
  db[: n // 3] = db[0]  # a third of the database in one bucket: massive ties
  if multi:
    ql = (rng.random((nq, classes)) < 0.3).astype(np.float32)
    dl = (rng.random((n, classes)) < 0.3).astype(np.float32)
    ql[0] = 0  # a query with no relevant item
  else:
    ql, dl = rng.integers(0, classes, nq), rng.integers(0, classes, n)
    ql[0] = classes  # a class the database lacks
  return check_inputs(pack_codes(q), ql, pack_codes(db), dl, bits)


def _assert_same(got, want, keys=None):
  for k in keys or want:
    np.testing.assert_allclose(np.asarray(got[k], float), np.asarray(want[k], float), atol=1e-6, err_msg=k)


@needs_kernel
@pytest.mark.parametrize('bits', (1, 31, 33, 64, 128))
@pytest.mark.parametrize('multi', (False, True))
def test_native_equals_counting_scan_and_sort(bits, multi):
  rng = np.random.default_rng(bits + 100 * multi)
  args = _case(rng, 23, 401, bits, multi)  # 23 queries: partial groups of 8 on each thread
  kw = dict(bits=bits, ks=(1, 10, 400, 1000), pns=(1, 7, 401), radius=2)
  got = per_query_stats(*args, stable_impl='native', **kw)
  count = per_query_stats(*args, stable_impl='count', **kw)
  sort = per_query_stats(*args, stable_impl='sort', **kw)
  assert got.keys() == count.keys()
  _assert_same(got, count)
  _assert_same(got, sort, keys=sort.keys())
  assert got['ap'][0] == 0 and got['n_rel'][0] == 0


@needs_kernel
@pytest.mark.parametrize('bits', (31, 64, 96, 128, 300))
@pytest.mark.parametrize('multi', (False, True))
def test_native_groups_that_share_a_label(bits, multi):
  """Queries sorted by label run 8 at a time through the shared-relevance scan; the groups at class
  boundaries, and the partial last group, through the per-query one. 96 bits: any code width;
  300 bits: uint64 records."""
  rng = np.random.default_rng(bits + multi)
  nq, n = 45, 300
  q = rng.choice(np.array([-1, 1], np.int8), size=(nq, bits))
  db = rng.choice(np.array([-1, 1], np.int8), size=(n, bits))
  db[::7] = q[3]  # ties at distance 0 for query 3
  if multi:  # few distinct label rows, so groups share one
    rows = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], np.float32)
    ql, dl = rows[rng.integers(0, 3, nq)], (rng.random((n, 4)) < 0.4).astype(np.float32)
  else:
    ql, dl = rng.integers(0, 2, nq), rng.integers(0, 3, n)
  args = check_inputs(pack_codes(q), ql, pack_codes(db), dl, bits)
  kw = dict(bits=bits, ks=(1, 50, 300), pns=(1, 20, 299), radius=2)
  _assert_same(
    per_query_stats(*args, stable_impl='native', **kw), per_query_stats(*args, stable_impl='sort', **kw), keys=None
  )


@needs_kernel
def test_native_all_equal_codes_and_tiny_database():
  """Every item at distance 0 (stable order = index order), and a database smaller than a group."""
  q = np.ones((5, 40), np.int8)
  for n in (1, 3, 9):
    db = np.ones((n, 40), np.int8)
    ql, dl = np.array([0, 1, 2, 0, 1]), np.arange(n) % 3
    args = check_inputs(pack_codes(q), ql, pack_codes(db), dl, 40)
    got = per_query_stats(*args, bits=40, ks=(2,), pns=(1, 2), stable_impl='native')
    for i in range(5):
      rel = (dl == ql[i]).astype(float)
      ranks = np.flatnonzero(rel) + 1
      ap = np.mean(np.arange(1, len(ranks) + 1) / ranks) if len(ranks) else 0.0
      np.testing.assert_allclose(got['ap'][i], ap, rtol=1e-6)
      np.testing.assert_allclose(got['p@1'][i], rel[:1].sum())


def test_pack_labels_sets_one_bit_per_label():
  words = native.pack_labels(np.array([0, 31, 32, 69]), 70)
  assert words.shape == (4, 3) and words.dtype == np.uint32
  assert words[0].tolist() == [1, 0, 0] and words[1].tolist() == [2**31, 0, 0]
  assert words[2].tolist() == [0, 1, 0] and words[3].tolist() == [0, 0, 2**5]
  hot = np.array([[1, 0, 1], [0, 0, 0]], np.float32)
  assert native.pack_labels(hot, 3)[:, 0].tolist() == [5, 0]


def test_unavailable_kernel_falls_back_and_says_why(monkeypatch):
  monkeypatch.setattr(native, '_load', lambda: "no C++ compiler 'g++' on PATH")
  rng = np.random.default_rng(0)
  args = _case(rng, 6, 50, 16, False)
  kw = dict(bits=16, ks=(5,), pns=(5,))
  _assert_same(per_query_stats(*args, **kw), per_query_stats(*args, stable_impl='count', **kw))
  with pytest.raises(RuntimeError, match=r"no C\+\+ compiler.*stable_impl='count'"):
    per_query_stats(*args, stable_impl='native', **kw)


def test_database_beyond_the_kernel_counters_falls_back(monkeypatch):
  """Past 2^24 - 1 codes the kernel's counters overflow: 'auto' takes the counting scan and
  'native' says why (the limit is patched down to test it on a small database)."""
  monkeypatch.setattr(native, 'STABLE_MAX_DB', 40)
  rng = np.random.default_rng(1)
  args = _case(rng, 5, 50, 16, False)
  kw = dict(bits=16, ks=(5,), pns=(5,))
  with pytest.raises(ValueError, match="up to 40 database codes, got 50; use stable_impl='count'"):
    per_query_stats(*args, stable_impl='native', **kw)

  def no_kernel(*a, **k):
    raise AssertionError('auto called the native kernel past its limit')

  monkeypatch.setattr(native, 'stable_stats', no_kernel)
  _assert_same(
    per_query_stats(*args, **kw), per_query_stats(*args, stable_impl='sort', **kw), keys=('ap', 'ap@5', 'p@5')
  )


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setenv('CXX', 'no-such-compiler-hashjax')
  with pytest.raises(RuntimeError, match='no C\\+\\+ compiler .no-such-compiler-hashjax.'):
    native._compile(str(tmp_path / 'k.so'))
  assert not (tmp_path / 'k.so').exists()


@needs_kernel
@pytest.mark.parametrize('bits', (1, 31, 33, 64, 96, 128, 300))  # 96: any width; 300: uint16 rows
def test_native_topk_equals_xla_topk_and_a_stable_argsort(bits):
  rng = np.random.default_rng(bits)
  q = rng.choice(np.array([-1, 1], np.int8), size=(23, bits))
  db = rng.choice(np.array([-1, 1], np.int8), size=(777, bits))
  db[:300] = db[0]  # massive ties
  qp, dp = pack_codes(q), pack_codes(db)
  full = (bits - q.astype(np.int64) @ db.T.astype(np.int64)) // 2
  for k in (1, 7, 300, 777):
    d, i = (np.asarray(x) for x in topk_search(qp, dp, k, bits=bits, impl='native'))
    dx, ix = (np.asarray(x) for x in topk_search(qp, dp, k, bits=bits, impl='xla'))
    np.testing.assert_array_equal(i, ix)
    np.testing.assert_array_equal(d, dx)
    want = np.argsort(full, axis=1, kind='stable')[:, :k]
    np.testing.assert_array_equal(i, want)
    np.testing.assert_array_equal(d, np.take_along_axis(full, want, 1))


def test_topk_impl_choices(monkeypatch):
  qp = pack_codes(np.ones((2, 8), np.int8))
  with pytest.raises(ValueError, match="impl must be 'auto', 'native' or 'xla'"):
    topk_search(qp, qp, 1, impl='faiss')
  monkeypatch.setattr(native, '_load', lambda: 'no compiler here')
  d, i = topk_search(qp, qp, 2)  # auto falls back to the XLA search
  np.testing.assert_array_equal(np.asarray(i), [[0, 1], [0, 1]])
  with pytest.raises(RuntimeError, match='no compiler here'):
    topk_search(qp, qp, 1, impl='native')


# Imported, says so (a file in argv[1]), waits for argv[1]/go, then loads the kernels from the cache
# folder of $HASHJAX_NATIVE_CACHE.
_FIRST_USE = """
import json, os, sys, time
from hashjax.retrieval import native
open(os.path.join(sys.argv[1], f'ready_{os.getpid()}'), 'w').close()
while not os.path.exists(os.path.join(sys.argv[1], 'go')):
  time.sleep(0.005)
print(json.dumps(native.available()))
"""


def test_concurrent_first_use_builds_once(tmp_path):
  """Three processes reach their first kernel call at the same moment with an empty cache: one
  compiles (the compiler, a logging wrapper around the real one, runs once), the other two wait
  for it, and all three load the same library; no temporary file is left behind."""
  cxx = os.environ.get('CXX', 'g++')
  if not REQUIRED and not native.available()[0]:
    pytest.skip(f'native kernel unavailable: {native.available()[1]}')
  log, sync, cache = tmp_path / 'compiles.log', tmp_path / 'sync', tmp_path / 'cache'
  sync.mkdir()
  wrapper = tmp_path / 'cxx'
  wrapper.write_text(f'#!/bin/sh\necho "$$" >> "{log}"\nexec {cxx} "$@"\n')
  wrapper.chmod(0o755)
  env = dict(os.environ, CXX=str(wrapper), HASHJAX_NATIVE_CACHE=str(cache))
  procs = [
    subprocess.Popen(
      [sys.executable, '-c', _FIRST_USE, str(sync)],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    for _ in range(3)
  ]
  deadline = time.monotonic() + 300
  while len(list(sync.glob('ready_*'))) < 3 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
    time.sleep(0.05)
  (sync / 'go').write_text('')  # all three call available() now, with nothing in the cache
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1]) == [True, '']
  assert len(log.read_text().split()) == 1, 'the kernels were compiled more than once'
  built = sorted(f.name for f in cache.iterdir())
  assert len([f for f in built if f.endswith('.so')]) == 1 and len(built) == 2, built  # the library and its lock
