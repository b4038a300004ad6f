"""Metrics over a database split across the 8 simulated devices (retrieval.db_sharded) equal the
single-device ones and the NumPy reference: every count exactly, AP sums to float32 rounding."""

import numpy as np
import pytest

from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.db_sharded import db_sharded_stats
from hashjax.retrieval.metrics import check_inputs
from hashjax.retrieval.metrics import retrieval_metrics
from hashjax.retrieval.per_query import per_query_stats
from hashjax.retrieval.search import db_mesh
from tests.test_retrieval_metrics import reference

# Exact in every count; the AP sums are float32 partial sums added across devices.
AP_RTOL = 1e-6


def _pm1(rng, n, bits):
  return rng.choice(np.array([-1, 1], np.int8), size=(n, bits))


def _compare(q, ql, db, dl, *, ties='stable', ks=(), pns=(), radius=2):
  """Per-query stats, sharded vs one device; then the metrics vs the NumPy reference (stable)."""
  bits = q.shape[1]
  args = check_inputs(pack_codes(q), ql, pack_codes(db), dl, bits)
  kw = dict(bits=bits, ks=ks, pns=pns, radius=radius, ties=ties)
  one = per_query_stats(*args, **kw)
  sharded = db_sharded_stats(*args, mesh=db_mesh(), **kw)
  for key in one:
    if key.startswith('ap') or (key.startswith(('p@', 'n_rel@')) and ties == 'expected'):
      np.testing.assert_allclose(sharded[key], one[key], rtol=AP_RTOL, atol=1e-7, err_msg=key)
    else:
      np.testing.assert_array_equal(sharded[key], one[key], err_msg=key)
  if ties == 'stable':
    got = retrieval_metrics(*args, bits=bits, topk=ks, pn=pns, radius=radius, mesh=db_mesh())
    want = reference(q, ql, db, dl, topk=ks, radius=radius, pn=pns)
    for key in want:
      np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=key)


@pytest.mark.parametrize('bits', (1, 31, 33, 64, 128))
@pytest.mark.parametrize('ties', ('stable', 'expected'))
def test_random_codes_every_length(bits, ties):
  rng = np.random.default_rng(bits)
  q, db = _pm1(rng, 21, bits), _pm1(rng, 301, bits)  # 301 = 8 x 38 - 3: the last slice is padded
  ql, dl = rng.integers(0, 5, 21), rng.integers(0, 5, 301)
  _compare(q, ql, db, dl, ties=ties, ks=(1, 10, 100, 1000), pns=(1, 50, 400), radius=min(2, bits - 1))


def test_massive_ties_multi_label_no_relevant_and_empty_balls():
  rng = np.random.default_rng(3)
  q = np.ones((9, 33), np.int8)
  db = np.ones((203, 33), np.int8)
  db[::7] = -1  # two buckets spread over every slice: d = 0 and d = 33
  _compare(q, rng.integers(0, 3, 9), db, rng.integers(0, 3, 203), ks=(1, 7, 150), pns=(3, 100), radius=0)
  ql = (rng.random((12, 6)) < 0.2).astype(np.float32)
  ql[:3] = 0  # queries with no relevant item
  dl = (rng.random((203, 6)) < 0.2).astype(np.uint8)
  q = _pm1(rng, 12, 16)
  for ties in ('stable', 'expected'):
    _compare(q, ql, _pm1(rng, 203, 16), dl, ties=ties, ks=(5, 64), pns=(10,), radius=0)


def test_database_smaller_than_the_mesh():
  """5 items on 8 devices: three devices hold only padding."""
  rng = np.random.default_rng(4)
  q, db = _pm1(rng, 6, 8), _pm1(rng, 5, 8)
  _compare(q, rng.integers(0, 2, 6), db, rng.integers(0, 2, 5), ks=(1, 3, 5), pns=(2, 5), radius=3)


def test_numpy_ties_need_whole_rows():
  rng = np.random.default_rng(5)
  q, db = pack_codes(_pm1(rng, 4, 16)), pack_codes(_pm1(rng, 20, 16))
  with pytest.raises(ValueError, match="ties='numpy'.*without a mesh"):
    retrieval_metrics(q, np.zeros(4, int), db, np.zeros(20, int), bits=16, ties='numpy', mesh=db_mesh())


def test_a_million_codes_split_over_8_devices_equal_one_device():
  """1M database codes (64 bits) over 8 devices, every metric and tie mode as on one device.
  Memory per device: its 125k-code slice and histogram / counter blocks bounded by the query
  chunk (benchmarks/notes/retrieval_engine.md, "10k queries x 1M database split over 8 devices",
  has 10k queries)."""
  rng = np.random.default_rng(3)
  db = rng.integers(0, 2**32, (1_000_000, 2), dtype=np.uint64).astype(np.uint32)
  q = db[rng.choice(len(db), 64, replace=False)] ^ np.uint32(0b1011)  # near-duplicates exist
  ql, dl = rng.integers(0, 10, 64), rng.integers(0, 10, len(db))
  dl[:100] = ql[0]  # the first query's class fills the first slice's head
  for ties, topk in (('stable', (100, 1000)), ('expected', (100, 1000))):
    kw = dict(bits=64, topk=topk, pn=(100,), radius=6, ties=ties)
    one = retrieval_metrics(q, ql, db, dl, **kw)
    sharded = retrieval_metrics(q, ql, db, dl, mesh=db_mesh(), **kw)
    assert sharded.keys() == one.keys()
    for key in one:
      np.testing.assert_allclose(sharded[key], one[key], rtol=AP_RTOL, err_msg=f'{ties} {key}')
    assert one['P@H<=6'] > 0  # the near-duplicates are found
