"""Protocol recipes: disjointness, sizes, determinism in the seed, and clear errors (on the digits)."""

import numpy as np
import pytest

from hashjax.data import protocols
from hashjax.data import sources

DIGITS = sources.load('digits')


def _build(name, seed=0, **kw):
  return protocols.build(DIGITS, name, seed=seed, **kw)


def test_full_is_test_queries_against_the_train_split():
  p = _build('full')
  assert np.array_equal(p.train, p.database) and len(np.intersect1d(p.query, p.database)) == 0
  assert len(p.query) + len(p.database) == len(p.labels)

  sub = _build('full', train_per_class=20)  # CIMON graph=global: a class-balanced training subset
  assert np.array_equal(sub.query, p.query) and np.array_equal(sub.database, p.database)
  assert set(sub.train) <= set(p.train) and np.array_equal(np.bincount(sub.labels[sub.train]), np.full(10, 20))
  assert not np.array_equal(sub.train, _build('full', seed=1, train_per_class=20).train)
  with pytest.raises(ValueError, match='train_per_class = 1000'):
    _build('full', train_per_class=1000)


def test_validation_never_touches_the_test_split():
  full, val = _build('full'), _build('validation')
  assert set(val.query) | set(val.train) == set(full.train)  # only training-split images
  assert len(np.intersect1d(val.query, val.train)) == 0 and np.array_equal(val.train, val.database)
  assert len(val.query) == round(len(full.train) / 6)
  assert not np.array_equal(val.query, _build('validation', seed=1).query)
  assert np.array_equal(val.query, _build('validation').query)


def test_random_split_hashnet_style():
  p = _build('random_split', query_size=300, train_size=500)
  assert len(p.query) == 300 and len(p.train) == 500
  assert len(np.intersect1d(p.query, p.database)) == 0 and set(p.train) <= set(p.database)
  assert len(p.query) + len(p.database) == len(p.labels)
  excluded = _build('random_split', query_size=300, train_size=500, train_in_database=False)
  assert len(np.intersect1d(excluded.train, excluded.database)) == 0
  with pytest.raises(ValueError, match='exceeds'):
    _build('random_split', query_size=1500, train_size=500)


def test_per_class_counts_and_errors():
  p = _build('per_class', query_per_class=10, train_per_class=50)
  assert np.all(np.bincount(p.labels[p.query]) == 10) and np.all(np.bincount(p.labels[p.train]) == 50)
  assert len(np.intersect1d(p.train, p.database)) == 0
  with pytest.raises(ValueError, match='fewer than'):
    _build('cifar10_mini')  # 600 per class; the digits have ~180
  with pytest.raises(ValueError, match='valid names'):
    _build('nonsense')
