"""retrieval_metrics vs a plain per-query NumPy reference."""

import itertools

import numpy as np
import pytest

from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.metrics import check_inputs
from hashjax.retrieval.metrics import mean_average_precision
from hashjax.retrieval.metrics import retrieval_metrics
from hashjax.retrieval.metrics import unique_queries
from hashjax.retrieval.per_query import per_query_stats


def _relevance(ql, dl):
  if ql.ndim == 1:
    return ql[:, None] == dl[None, :]
  return (ql.astype(np.int64) @ dl.T.astype(np.int64)) > 0


def reference(q, ql, db, dl, *, topk=(), radius=2, pn=(), zero='zero', order_fn=lambda d: np.argsort(d, kind='stable')):
  """Per-query loop; AP written as DeepHash-pytorch's CalcTopMap does it."""
  bits = q.shape[1]
  rel_all = _relevance(ql, dl)
  acc = {'mAP': [], 'P': [], 'R': []}
  acc.update({k: [] for k in topk})
  acc.update({('P', n): [] for n in pn})
  for i in range(len(q)):
    dist = (bits - q[i].astype(np.int64) @ db.T.astype(np.int64)) // 2
    rel = rel_all[i]
    ranked = rel[order_fn(dist)].astype(np.int64)
    for key, cut in [('mAP', len(db))] + [(k, k) for k in topk]:
      top = ranked[:cut]
      hits = int(top.sum())
      if hits == 0:
        if zero == 'zero':
          acc[key].append(0.0)
        continue
      count = np.arange(1, hits + 1)
      where = np.flatnonzero(top) + 1
      acc[key].append(np.mean(count / where))
    ball = dist <= radius
    acc['P'].append((ball & rel).sum() / ball.sum() if ball.any() else 0.0)
    if rel.any() or zero == 'zero':
      acc['R'].append((ball & rel).sum() / rel.sum() if rel.any() else 0.0)
    for n in pn:
      acc[('P', n)].append(ranked[:n].sum() / n)
  mean = lambda v: float(np.mean(v)) if v else float('nan')
  out = {'mAP': mean(acc['mAP']), f'P@H<={radius}': mean(acc['P']), f'R@H<={radius}': mean(acc['R'])}
  out.update({f'mAP@{k}': mean(acc[k]) for k in topk})
  out.update({f'P@{n}': mean(acc[('P', n)]) for n in pn})
  return out


def _pm1(rng, n, bits):
  return rng.choice(np.array([-1, 1], np.int8), size=(n, bits))


def _check(q, ql, db, dl, *, tol=1e-5, **kw):
  ref_kw = {k: kw[k] for k in ('topk', 'radius', 'pn') if k in kw}
  want = reference(
    q,
    ql,
    db,
    dl,
    zero=kw.get('zero_relevant', 'zero'),
    order_fn=kw.pop('order_fn', None) or (lambda d: np.argsort(d, kind='stable')),
    **ref_kw,
  )
  got = retrieval_metrics(pack_codes(q), ql, pack_codes(db), dl, bits=q.shape[1], **kw)
  assert got.keys() == want.keys()
  for k in want:
    np.testing.assert_allclose(got[k], want[k], atol=tol, err_msg=k)
  return got


@pytest.mark.parametrize('bits', (1, 31, 33, 64, 128))
def test_random_single_label(bits):
  rng = np.random.default_rng(bits)
  q, db = _pm1(rng, 23, bits), _pm1(rng, 301, bits)
  ql, dl = rng.integers(0, 5, 23), rng.integers(0, 5, 301)
  got = _check(
    q, ql, db, dl, topk=(1, 10, 100, 1000), pn=(1, 50, 400), radius=min(2, bits - 1) if bits > 1 else 0, query_chunk=8
  )
  assert 0 < got['mAP'] < 1


def test_multi_label_and_drop():
  rng = np.random.default_rng(7)
  q, db = _pm1(rng, 30, 16), _pm1(rng, 257, 16)
  ql = (rng.random((30, 6)) < 0.2).astype(np.float32)
  dl = (rng.random((257, 6)) < 0.2).astype(np.uint8)
  ql[:3] = 0  # no relevant item at all
  for zero in ('zero', 'drop'):
    got = _check(q, ql, db, dl, topk=(5, 64), pn=(10,), radius=3, zero_relevant=zero)
  assert got['mAP'] > 0


def test_all_equal_codes_massive_ties():
  rng = np.random.default_rng(3)
  q = np.ones((9, 33), np.int8)
  db = np.ones((200, 33), np.int8)
  db[::7] = -1  # two buckets: d = 0 (most) and d = 33
  ql, dl = rng.integers(0, 3, 9), rng.integers(0, 3, 200)
  _check(q, ql, db, dl, topk=(1, 7, 150), pn=(3, 100), radius=0)
  _check(q, ql, -np.ones_like(db), dl, topk=(10,), pn=(10,), radius=32)


def test_empty_balls_and_no_relevant_queries():
  rng = np.random.default_rng(4)
  q, db = _pm1(rng, 20, 64), _pm1(rng, 150, 64)
  ql, dl = rng.integers(0, 8, 20), rng.integers(0, 4, 150)  # labels 4..7 absent
  db[0] = q[0]  # one non-empty ball
  for zero in ('zero', 'drop'):
    got = _check(q, ql, db, dl, topk=(10,), pn=(5,), radius=0, zero_relevant=zero)
  assert got['P@H<=0'] >= 0
  none_rel = retrieval_metrics(
    pack_codes(q), np.full(20, 9), pack_codes(db), dl, bits=64, topk=(10,), zero_relevant='drop'
  )
  assert np.isnan(none_rel['mAP']) and np.isnan(none_rel['mAP@10'])


def test_chunking_does_not_change_results():
  rng = np.random.default_rng(5)
  q, db = pack_codes(_pm1(rng, 37, 48)), pack_codes(_pm1(rng, 90, 48))
  ql, dl = rng.integers(0, 3, 37), rng.integers(0, 3, 90)
  runs = [retrieval_metrics(q, ql, db, dl, bits=48, topk=(20,), pn=(10,), query_chunk=c) for c in (1, 10, 37, 64)]
  for r in runs[1:]:
    assert r == pytest.approx(runs[0], abs=1e-6)


def test_numpy_ties_match_host_argsort():
  rng = np.random.default_rng(6)
  q, db = _pm1(rng, 25, 8), _pm1(rng, 2000, 8)  # >16 items per bucket
  ql, dl = rng.integers(0, 4, 25), rng.integers(0, 4, 2000)
  order = lambda d: np.argsort(d.astype(np.float32))  # DHP: float32, quicksort
  got = _check(q, ql, db, dl, topk=(100, 1000), pn=(30,), ties='numpy', order_fn=order)
  stable = retrieval_metrics(pack_codes(q), ql, pack_codes(db), dl, bits=8, topk=(100, 1000), pn=(30,))
  assert got['mAP@100'] != stable['mAP@100']  # the tie order does matter here


def _exact_expected_ap(d, rel, k=None):
  """Mean AP@all (or AP@k) over every order of the items inside equal-distance buckets."""
  buckets = [np.flatnonzero(d == v) for v in np.unique(d)]
  aps = []
  for perm in itertools.product(*[itertools.permutations(b) for b in buckets]):
    r = rel[np.concatenate(perm)].astype(float)[:k]
    hits = r.sum()
    aps.append((np.cumsum(r) / np.arange(1, len(r) + 1) * r).sum() / hits if hits else 0.0)
  return np.mean(aps)


def test_expected_ties_exact_enumeration():
  # 3 bits, 7 items: buckets of <= 4 items, at most 4!*3!*... orders.
  rng = np.random.default_rng(8)
  for trial in range(6):
    q, db = _pm1(rng, 1, 3), _pm1(rng, 7, 3)
    ql, dl = np.array([1]), rng.integers(0, 2, 7)
    dl[trial % 7] = 1
    d = (3 - q[0].astype(int) @ db.T) // 2
    want = _exact_expected_ap(d, dl == 1)
    got = retrieval_metrics(pack_codes(q), ql, pack_codes(db), dl, bits=3, ties='expected', topk=(1, 2, 3, 5, 7, 9))
    assert got['mAP'] == pytest.approx(want, abs=1e-12)
    for k in (1, 2, 3, 5, 7, 9):  # the cut falls inside a bucket, at its end, past the database
      assert got[f'mAP@{k}'] == pytest.approx(_exact_expected_ap(d, dl == 1, k), abs=1e-12), k


def test_expected_equals_mean_of_stable_over_permutations():
  # Statistical: mean of stable mAP over 400 database permutations vs the
  # closed form. Per-permutation std here is ~0.01, so the mean's std is
  # ~5e-4; tolerance 3e-3 (about 6 sigma). Seeded, hence deterministic.
  rng = np.random.default_rng(9)
  q, db = _pm1(rng, 4, 4), _pm1(rng, 60, 4)
  ql, dl = rng.integers(0, 3, 4), rng.integers(0, 3, 60)
  qp, dp = pack_codes(q), pack_codes(db)
  exp = retrieval_metrics(qp, ql, dp, dl, bits=4, ties='expected', pn=(10,), topk=(10,))
  perms = [rng.permutation(60) for _ in range(400)]
  maps, p10, map10 = [], [], []
  for p in perms:
    m = retrieval_metrics(qp, ql, dp[p], dl[p], bits=4, pn=(10,), topk=(10,))
    maps.append(m['mAP'])
    p10.append(m['P@10'])
    map10.append(m['mAP@10'])
  assert np.mean(maps) == pytest.approx(exp['mAP'], abs=3e-3)
  assert np.mean(p10) == pytest.approx(exp['P@10'], abs=6e-3)
  # mAP@10's per-permutation std is ~0.06 here, so its mean's is ~3e-3: tolerance 1.5e-2 (5 sigma).
  assert np.mean(map10) == pytest.approx(exp['mAP@10'], abs=1.5e-2)
  assert np.std(maps) > 1e-3 and np.std(map10) > 1e-2  # ties really move the stable numbers


def test_mean_average_precision_and_validation():
  rng = np.random.default_rng(10)
  q, db = pack_codes(_pm1(rng, 5, 40)), pack_codes(_pm1(rng, 30, 40))
  ql, dl = rng.integers(0, 2, 5), rng.integers(0, 2, 30)
  m = retrieval_metrics(q, ql, db, dl, bits=40, topk=(7,))
  assert mean_average_precision(q, ql, db, dl, bits=40) == m['mAP']
  assert mean_average_precision(q, ql, db, dl, bits=40, topk=7) == m['mAP@7']
  bad = [
    (dict(query_labels=ql[:4]), 'rows'),
    (dict(db_codes=db[:, :1]), 'words'),
    (dict(db_codes=db.astype(np.int64)), 'uint32'),
    (dict(query_labels=np.where(ql > 0, np.nan, 0.0)), 'NaN'),
    (dict(query_labels=np.eye(2)[ql]), 'same kind'),
    (dict(ties='random'), 'ties'),
    (dict(zero_relevant='skip'), 'zero_relevant'),
    (dict(radius=-1), 'radius'),
    (dict(bits=70), 'words'),
    (dict(bits=39), 'past bit'),
  ]
  for change, msg in bad:
    kw = dict(query_codes=q, query_labels=ql, db_codes=db, db_labels=dl, bits=40)
    kw.update(change)
    with pytest.raises(ValueError, match=msg):
      retrieval_metrics(**kw)


@pytest.mark.parametrize('multi', (False, True))
def test_stable_counting_scan_equals_sort(multi):
  rng = np.random.default_rng(11)
  q, db = _pm1(rng, 19, 7), _pm1(rng, 300, 7)  # 8 buckets: heavy ties
  if multi:
    ql = (rng.random((19, 4)) < 0.3).astype(np.float32)
    dl = (rng.random((300, 4)) < 0.3).astype(np.float32)
  else:
    ql, dl = rng.integers(0, 3, 19), rng.integers(0, 3, 300)
  args = check_inputs(pack_codes(q), ql, pack_codes(db), dl, 7)
  kw = dict(bits=7, ks=(1, 20, 500), pns=(3, 300), radius=1)
  by_sort = per_query_stats(*args, stable_impl='sort', **kw)
  by_count = per_query_stats(*args, stable_impl='count', lane_chunk=8, **kw)
  assert by_sort.keys() <= by_count.keys()
  for k in by_sort:
    np.testing.assert_allclose(np.asarray(by_count[k], float), np.asarray(by_sort[k], float), atol=1e-6, err_msg=k)


@pytest.mark.parametrize('multi', (False, True))
def test_repeated_queries_ranked_once_give_the_per_query_numbers(multi):
  """Queries drawn from 6 codes (as trained codes repeat): the metrics of the distinct queries,
  spread back, equal every query ranked on its own, in every tie mode (counts exactly)."""
  rng = np.random.default_rng(12)
  codes = _pm1(rng, 6, 24)
  q = codes[rng.integers(0, 6, 80)]
  ql = (rng.random((80, 4)) < 0.4).astype(np.float32) if multi else rng.integers(0, 2, 80)
  db = np.concatenate([codes[rng.integers(0, 6, 150)], _pm1(rng, 50, 24)])
  dl = (rng.random((200, 4)) < 0.4).astype(np.float32) if multi else rng.integers(0, 2, 200)
  args = check_inputs(pack_codes(q), ql, pack_codes(db), dl, 24)
  uq, uql, inverse = unique_queries(args[0], args[1])
  assert len(uq) < 80 and (uq[inverse] == args[0]).all() and (uql[inverse] == args[1]).all()
  for ties in ('stable', 'numpy', 'expected'):
    kw = dict(ks=(10, 100), pns=(5, 50), radius=3, ties=ties)
    each = {k: v.astype(np.float64) for k, v in per_query_stats(*args, bits=24, **kw).items()}
    got = retrieval_metrics(*args, bits=24, topk=(10, 100), pn=(5, 50), radius=3, ties=ties)
    want = {
      'mAP': each['ap'].mean(),
      'mAP@10': each['ap@10'].mean(),
      'mAP@100': each['ap@100'].mean(),
      'P@H<=3': (each['ball_rel'] / np.maximum(each['ball'], 1)).mean(),
      'R@H<=3': (each['ball_rel'] / np.maximum(each['n_rel'], 1)).mean(),
      'P@5': each['p@5'].mean(),
      'P@50': each['p@50'].mean(),
    }
    # AP is a float32 sum per query, which XLA may order differently for another chunk shape.
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12), ties


def test_unique_queries_keeps_queries_with_other_labels_apart():
  codes = pack_codes(np.ones((3, 40), np.int8))
  uq, ul, inverse = unique_queries(codes, np.array([0, 1, 0], np.int32))
  assert len(uq) == 2 and list(ul[inverse]) == [0, 1, 0]
