"""Top-k search (counting selection, streaming, sharding), hash table, PR curve."""

import jax
import numpy as np
import pytest

from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.codes import unpack_codes
from hashjax.retrieval.hash_table import HashTable
from hashjax.retrieval.pr_curve import pr_curve_by_radius
from hashjax.retrieval.search import db_mesh
from hashjax.retrieval.search import topk_search
from hashjax.retrieval.select import nth_set_bit
from hashjax.retrieval.select import pack_bits
from hashjax.retrieval.select import row_histograms
from hashjax.retrieval.select import threshold
from tests import helpers


def _pm1(rng, n, bits):
  return rng.choice(np.array([-1, 1], np.int8), size=(n, bits))


def _brute(q, db, k):
  d = (q[:, None, :] != db[None, :, :]).sum(-1)
  order = np.argsort(d, axis=1, kind='stable')[:, :k]
  return np.take_along_axis(d, order, 1), order


def test_row_histograms_match_bincount_and_keep_rows_apart():
  rng = np.random.default_rng(1)
  d = rng.integers(0, 5, (7, 300)).astype(np.int32)
  want = np.stack([np.bincount(row, minlength=5) for row in d])
  np.testing.assert_array_equal(np.asarray(row_histograms(d, 5)), want)
  # A value past the last bin is counted in its own row's last bin, never in the next row's first.
  d[0, :3] = 9
  got = np.asarray(row_histograms(d, 5))
  np.testing.assert_array_equal(got[1:], np.stack([np.bincount(row, minlength=5) for row in d[1:]]))
  np.testing.assert_array_equal(got[0], np.bincount(np.minimum(d[0], 4), minlength=5))


def test_threshold_and_bit_mask_ranks():
  rng = np.random.default_rng(0)
  d = rng.integers(0, 4, (6, 64)).astype(np.int32)  # heavy ties
  d[0] = 2  # a single bucket
  hist = np.stack([np.bincount(row, minlength=4) for row in d])
  for k in (1, 7, 64):
    t, need = map(np.asarray, threshold(hist, k))
    kth = np.sort(d, axis=1)[:, k - 1]
    np.testing.assert_array_equal(t, kth)  # the k-th smallest distance
    np.testing.assert_array_equal(need, k - (d < kth[:, None]).sum(1))
  mask = rng.random((5, 96)) < 0.3
  mask[0], mask[1], mask[2, 31] = True, False, True  # full words (bit 31 too), a single set bit
  mask[1, 95] = True
  words = pack_bits(mask)
  for row in range(5):
    where = np.flatnonzero(mask[row])
    got = nth_set_bit(words[row : row + 1], np.arange(len(where), dtype=np.int32)[None])
    np.testing.assert_array_equal(np.asarray(got)[0], where)
  with pytest.raises(ValueError, match='multiple of 32'):
    pack_bits(mask[:, :50])


@pytest.mark.parametrize('bits,k,chunk', [(10, 1, 64), (33, 40, 100), (64, 300, 4096)])
def test_topk_matches_stable_brute_force(bits, k, chunk):
  rng = np.random.default_rng(bits)
  q, db = _pm1(rng, 21, bits), _pm1(rng, 777, bits)
  db[100:130] = db[5]  # duplicates: ties at distance 0 for some queries
  q[0] = q[7] = q[20] = db[5]  # repeated queries are searched once and answered for each
  gd, gi = topk_search(pack_codes(q), pack_codes(db), k, bits=bits, db_chunk=chunk, query_chunk=8)
  wd, wi = _brute(q, db, k)
  np.testing.assert_array_equal(np.asarray(gi), wi)
  np.testing.assert_array_equal(np.asarray(gd), wd)


def test_topk_sharded_equals_single_device():
  helpers.require_eight_devices()
  rng = np.random.default_rng(1)
  q, db = pack_codes(_pm1(rng, 13, 12)), pack_codes(_pm1(rng, 1003, 12))
  single = topk_search(q, db, 64, bits=12, db_chunk=128)
  sharded = topk_search(q, db, 64, bits=12, db_chunk=64, mesh=db_mesh())
  mesh2d = jax.make_mesh((4, 2), ('q', 'db'))  # db over a sub-axis
  sub = topk_search(q, db, 64, bits=12, mesh=mesh2d, axis='db')
  for got in (sharded, sub):
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(single[0]))
    np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(single[1]))
  # k larger than one device's slice (1003 / 8 < 200): padding never wins.
  big = topk_search(q, db, 200, bits=12, mesh=db_mesh())
  want = _brute(unpack_codes(q, 12), unpack_codes(db, 12), 200)
  np.testing.assert_array_equal(np.asarray(big[1]), want[1])


def test_topk_validation():
  q = pack_codes(np.ones((2, 40)))
  with pytest.raises(ValueError, match='k must be'):
    topk_search(q, q, 3, bits=40)
  with pytest.raises(ValueError, match='word counts'):
    topk_search(q, pack_codes(np.ones((4, 70))), 1)
  with pytest.raises(ValueError, match='uint32'):
    topk_search(q.astype(np.int32), q, 1)


@pytest.mark.parametrize('bits', (10, 40))
def test_hash_table_matches_linear_scan(bits):
  rng = np.random.default_rng(bits)
  db = _pm1(rng, 400, bits)
  db[50:80] = db[3]  # a crowded bucket
  q = np.concatenate([_pm1(rng, 6, bits), db[3:4]])
  table = HashTable(pack_codes(db), bits)
  assert len(table) <= 371
  d = (q[:, None, :] != db[None, :, :]).sum(-1)
  for radius in (0, 1, 3):
    for i in range(len(q)):
      ids, dists = table.query(pack_codes(q[i : i + 1])[0], radius)
      inside = np.flatnonzero(d[i] <= radius)
      want = inside[np.argsort(d[i, inside], kind='stable')]
      np.testing.assert_array_equal(ids, want)
      np.testing.assert_array_equal(dists, d[i, want])
  ids, _ = table.query(pack_codes(db[3:4])[0], 0)
  assert len(ids) == 31
  with pytest.raises(ValueError, match='probes'):
    HashTable(pack_codes(db), bits, max_probes=10).query(pack_codes(q[:1])[0], 2)


def test_ball_lookup_is_the_topk_within_the_radius():
  """`retrieve --radius`: the hash-table lookup gives the top-k restricted to the Hamming ball."""
  from hashjax.eval import retrieval_examples  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(7)
  bits = 12
  db = _pm1(rng, 300, bits)
  q = np.concatenate([_pm1(rng, 4, bits), db[:2]])
  distances, indices, found = retrieval_examples.ball_lookup(pack_codes(q), pack_codes(db), bits, 1, 5)
  top_d, top_i = (np.asarray(a) for a in topk_search(pack_codes(q), pack_codes(db), 5, bits=bits))
  np.testing.assert_array_equal(found, top_d <= 1)
  np.testing.assert_array_equal(np.where(found, indices, -1), np.where(found, top_i, -1))
  np.testing.assert_array_equal(np.where(found, distances, -1), np.where(found, top_d, -1))
  assert found[4:, 0].all() and not found.all()  # a database code finds itself; not every query finds 5


def test_pr_curve_by_radius_matches_reference():
  rng = np.random.default_rng(2)
  bits = 9
  q, db = _pm1(rng, 15, bits), _pm1(rng, 200, bits)
  ql, dl = rng.integers(0, 3, 15), rng.integers(0, 4, 200)
  ql[0] = 7  # no relevant item
  d = (q[:, None, :] != db[None, :, :]).sum(-1)
  rel = ql[:, None] == dl[None, :]
  for zero in ('zero', 'drop'):
    got = pr_curve_by_radius(pack_codes(q), ql, pack_codes(db), dl, bits=bits, zero_relevant=zero)
    for r in range(bits + 1):
      ball = d <= r
      hits = (ball & rel).sum(1)
      prec = np.where(ball.sum(1) > 0, hits / np.maximum(ball.sum(1), 1), 0)
      keep = rel.sum(1) > 0 if zero == 'drop' else np.ones(15, bool)
      rec = (hits / np.maximum(rel.sum(1), 1))[keep]
      assert got['precision'][r] == pytest.approx(prec.mean(), abs=1e-12)
      assert got['recall'][r] == pytest.approx(rec.mean(), abs=1e-12)
  assert got['recall'][-1] == pytest.approx(1.0)


def test_topk_over_a_million_codes_sharded_equals_single_device():
  """1M database codes (64 bits) split over the 8 simulated devices: the same neighbours as one
  device. Memory per device: its 125k-code slice (1 MB packed) plus one query chunk x db_chunk
  distance block (64 x 16384 int32 = 4 MB) and the running top-k; the 10k-query timing is in
  benchmarks/notes/retrieval_engine.md ("1M database", "Top-k at 1M")."""
  rng = np.random.default_rng(3)
  db = rng.integers(0, 2**32, (1_000_000, 2), dtype=np.uint64).astype(np.uint32)
  q = db[rng.choice(len(db), 64, replace=False)] ^ np.uint32(0b1011)  # near-duplicates exist
  single = topk_search(q, db, 100, bits=64)
  sharded = topk_search(q, db, 100, bits=64, mesh=db_mesh())
  np.testing.assert_array_equal(np.asarray(sharded[0]), np.asarray(single[0]))
  np.testing.assert_array_equal(np.asarray(sharded[1]), np.asarray(single[1]))
  assert np.all(np.asarray(single[0])[:, 0] == 6)  # its source code: 3 bits flipped in each of 2 words
