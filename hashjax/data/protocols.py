"""Retrieval protocols as data: named recipes that split a dataset into train / query / database.

Every recipe returns index arrays into a pool (the concatenation of the dataset's splits, in
the order given by `Source.splits`), so the same recipe + seed always gives the same sets and the
sets can be written next to a run. See ../shared/reference/evaluation.md §3 for where each comes from.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from hashjax.data import feature_rows
from hashjax.data import lazy_images
from hashjax.data import sources as sources_lib


@dataclasses.dataclass(frozen=True)
class Protocol:
  name: str
  # The pool: uint8 images (N, H, W, C) (a lazy_images.LazyImages with per-process reads), or the
  # `features` dataset's float vectors (N, D), a memory-mapped feature_rows.FeatureRows.
  images: np.ndarray
  labels: np.ndarray  # (N,) class ids or (N, C) multi-hot
  num_classes: int
  train: np.ndarray  # indices into the pool
  query: np.ndarray
  database: np.ndarray
  seed: int
  description: str
  origin: str = ''

  @property
  def is_features(self) -> bool:
    """Whether the pool holds feature vectors (N, D) rather than images."""
    return feature_rows.is_features(self.images)

  def summary(self) -> dict:
    return {
      'protocol': self.name,
      'seed': self.seed,
      'train': len(self.train),
      'query': len(self.query),
      'database': len(self.database),
      'description': self.description,
    }


def _pool(source: sources_lib.Source) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
  """Concatenates the splits; returns images, labels and each split's pool indices."""
  images, labels, ranges, start = [], [], {}, 0
  for name, split in source.splits.items():
    images.append(split.images)
    labels.append(split.labels)
    ranges[name] = np.arange(start, start + len(split.images))
    start += len(split.images)
  return lazy_images.concatenate(images), np.concatenate(labels), ranges


def _require(ranges, *names):
  for n in names:
    if n not in ranges:
      raise ValueError(f'protocol needs a {n!r} split; this dataset has {sorted(ranges)}')


def full(source, seed, train_per_class=0, **unused):
  """Test queries against the training set as database (CIFAR-10 'full', DCWH, Fashion-MNIST 10k vs 60k),
  or against the 'database' split when the dataset has one (DeepHash-pytorch's lists: query =
  test.txt, database = database.txt, train = train.txt).

  train_per_class > 0 trains on that many seeded random images of each class of the train split
  only (CIMON's graph=global on Fashion-MNIST: 500/class); the database stays the same.
  """
  del unused
  images, labels, r = _pool(source)
  _require(r, 'train', 'test')
  database, db_name = (r['database'], 'database split') if 'database' in r else (r['train'], 'train split')
  if not train_per_class:
    desc = (
      'query = test split, database = database split, train = train split'
      if 'database' in r
      else 'query = test split, database = train = train split'
    )
    return images, labels, r['train'], r['test'], database, desc
  if labels.ndim != 1:
    raise ValueError('full: train_per_class needs single-label data (class ids)')
  rng = np.random.default_rng(seed)
  train = []
  for c in range(int(labels.max()) + 1):
    members = r['train'][labels[r['train']] == c]
    if len(members) < train_per_class:
      raise ValueError(f'full: class {c} has {len(members)} training images < train_per_class = {train_per_class}')
    train.append(rng.choice(members, train_per_class, replace=False))
  return (
    images,
    labels,
    np.sort(np.concatenate(train)),
    r['test'],
    database,
    f'query = test split, database = {db_name}, train = {train_per_class}/class of the train split',
  )


def test_vs_test(source, seed, **unused):
  """DSH's protocol: the test split is both query and database (each query also retrieves itself)."""
  del unused
  images, labels, r = _pool(source)
  _require(r, 'train', 'test')
  return (
    images,
    labels,
    r['train'],
    r['test'],
    r['test'],
    'query = database = test split (self-matches included); train = train split',
  )


def per_class(
  source, seed, query_per_class=100, train_per_class=500, train_in_database=False, database_is_train=False, **unused
):
  """DPSH-style: pool all splits; per class draw query_per_class queries and train_per_class training
  images; the database is the rest (train_in_database=True puts the training images back in, as CIMON
  and DeepHash-pytorch's cifar10-1; database_is_train=True makes it the training images alone, as
  DeepHash-pytorch's cifar10-2, and overrides train_in_database)."""
  del unused
  images, labels, _ = _pool(source)
  if labels.ndim != 1:
    raise ValueError('per_class protocol needs single-label data')
  rng = np.random.default_rng(seed)
  query, train = [], []
  for c in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == c))
    if len(members) < query_per_class + train_per_class:
      raise ValueError(
        f'class {c} has {len(members)} images, fewer than '
        f'query_per_class + train_per_class = {query_per_class + train_per_class}'
      )
    query.append(members[:query_per_class])
    train.append(members[query_per_class : query_per_class + train_per_class])
  query, train = np.sort(np.concatenate(query)), np.sort(np.concatenate(train))
  if database_is_train:
    database, db_desc = train, 'train'
  elif train_in_database:
    database, db_desc = np.setdiff1d(np.arange(len(labels)), query), 'all non-query images (train included)'
  else:
    database, db_desc = np.setdiff1d(np.arange(len(labels)), np.union1d(query, train)), 'the rest (train excluded)'
  desc = f'pool all splits; {query_per_class}/class query, {train_per_class}/class train, database = {db_desc}'
  return images, labels, train, query, database, desc


def random_split(source, seed, query_size=5000, train_size=10000, train_in_database=True, **unused):
  """HashNet's recipe (MS-COCO, NUS-WIDE; single- or multi-label): pool all splits, a seeded random
  `query_size` queries, the database = every other image, and `train_size` training images drawn
  from the database (`train_in_database=False`: drawn from it and then removed from it)."""
  del unused
  images, labels, _ = _pool(source)
  if query_size + train_size > len(labels):
    raise ValueError(
      f'random_split: query_size + train_size = {query_size + train_size} exceeds the {len(labels)} images of the pool'
    )
  order = np.random.default_rng(seed).permutation(len(labels))
  query, rest = np.sort(order[:query_size]), order[query_size:]
  train = np.sort(rest[:train_size])
  database = np.sort(rest if train_in_database else rest[train_size:])
  return (
    images,
    labels,
    train,
    query,
    database,
    f'pool all splits; {query_size} random queries, {train_size} random training images, database = '
    + ('all non-query images (train included)' if train_in_database else 'the rest (train excluded)'),
  )


def validation(source, seed, query_fraction=1 / 6, **unused):
  """For choosing hyperparameters without touching the test split: a seeded `query_fraction` of the
  train split is the query set; the rest of the train split is both training set and database
  (Fashion-MNIST: 10k validation queries vs a 50k database, the shape of the 'full' protocol)."""
  del unused
  images, labels, r = _pool(source)
  _require(r, 'train')
  members = np.random.default_rng(seed).permutation(r['train'])
  n_query = int(round(len(members) * query_fraction))
  if not 0 < n_query < len(members):
    raise ValueError(f'validation protocol: query_fraction={query_fraction} leaves no query or no training image')
  query, train = np.sort(members[:n_query]), np.sort(members[n_query:])
  return (
    images,
    labels,
    train,
    query,
    train,
    f'train split only: {n_query} held-out queries, database = train = the other {len(train)} (test split unused)',
  )


def unlabelled(source, seed, train_size=20000, **unused):
  """Unsupervised training on a seeded random `train_size` subset of the 'unlabelled' split (CIMON's
  STL-10 variant: 20,000 of the 100,000); query = test split, database = the labelled train split
  (also what `hashjax.classify` trains its classifier on). The pool keeps only the chosen unlabelled images."""
  del unused
  _require(source.splits, 'unlabelled', 'train', 'test')
  pool = source.splits['unlabelled']
  if not 0 < train_size <= len(pool.images):
    raise ValueError(f'unlabelled protocol: train_size must be in [1, {len(pool.images)}], got {train_size}')
  chosen = np.sort(np.random.default_rng(seed).choice(len(pool.images), train_size, replace=False))
  labelled, test = source.splits['train'], source.splits['test']
  images = lazy_images.concatenate([labelled.images, test.images, lazy_images.take(pool.images, chosen)])
  labels = np.concatenate([labelled.labels, test.labels, np.full(train_size, -1, labelled.labels.dtype)])
  n_labelled, n_test = len(labelled.images), len(test.images)
  database, query = np.arange(n_labelled), np.arange(n_labelled, n_labelled + n_test)
  train = np.arange(n_labelled + n_test, len(images))
  return (
    images,
    labels,
    train,
    query,
    database,
    f'train = {train_size} random unlabelled images (no labels); query = test split, database = train split',
  )


RECIPES = {
  'full': full,
  'test_vs_test': test_vs_test,
  'per_class': per_class,
  'unlabelled': unlabelled,  # STL-10: train on a subset of the unlabelled split
  'random_split': random_split,
  # MS-COCO as HashNet: 5,000 queries, database = the rest, 10,000 training images from it.
  'coco_hashnet': functools.partial(random_split, query_size=5000, train_size=10000, train_in_database=True),
  'validation': validation,  # hyperparameter search: held-out train images as queries
  # The CIFAR-10 protocols of the papers (reference/evaluation.md section 3; the sizes are those of
  # CIFAR-10's 60,000 images, 6,000 a class). Per-class draws from all 60,000 images pooled, as
  # DeepHash-pytorch's utils/tools.py cifar_dataset (which is unseeded; here dataset.split_seed):
  # mini (DPSH, DeepHash-pytorch 'cifar10', IDCWH's 'mini'): 1,000 query, 5,000 train, 54,000 database
  # = the rest (train excluded).
  'cifar10_mini': functools.partial(per_class, query_per_class=100, train_per_class=500),
  # DeepHash-pytorch 'cifar10-1' (its default; GreedyHash's cifar1.py): 1,000 query, 5,000 train,
  # 59,000 database = every non-query image (train included).
  'cifar10_1': functools.partial(per_class, query_per_class=100, train_per_class=500, train_in_database=True),
  # DeepHash-pytorch 'cifar10-2': 10,000 query (1,000/class of the pool, not the official test split),
  # 50,000 train (5,000/class) = the database.
  'cifar10_2': functools.partial(per_class, query_per_class=1000, train_per_class=5000, database_is_train=True),
  # CIMON / DistillHash: 1000/class query, 500/class train, database = all 50k non-query images.
  'cimon': functools.partial(per_class, query_per_class=1000, train_per_class=500, train_in_database=True),
}


def build(source: sources_lib.Source, name: str, seed: int = 0, **kwargs) -> Protocol:
  if name not in RECIPES:
    raise ValueError(f'unknown protocol {name!r}; valid names: {", ".join(sorted(RECIPES))}')
  images, labels, train, query, database, desc = RECIPES[name](source, seed, **kwargs)
  return Protocol(name, images, labels, source.num_classes, train, query, database, seed, desc, source.origin)
