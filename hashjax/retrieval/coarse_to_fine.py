"""Coarse-to-fine search (DLBHC, Lin et al. 2015, section 3.3): Hamming candidates re-ranked by features.

Coarse: each query's candidate pool P from the binary codes, among its `pool_size` nearest
database items by Hamming distance (`search.topk_search`: ties by database index):
  * pool="topm": all of them (the top M);
  * pool="radius": those within Hamming distance `radius` (the paper's threshold; the ball is
    capped at `pool_size` items so the work per query stays fixed).
Fine: P re-ranked by Euclidean distance between the query's and the items' features (the
paper's fc7), ties kept in Hamming order. The items not in P follow, in Hamming order, so the
result always has `k` items: with pool="topm" and pool_size >= k the top k are all from P.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from hashjax.retrieval import search

POOLS = ('topm', 'radius')


class Ranking(NamedTuple):
  """Each query's first k items: database indices, Hamming distances, feature distances (inf for
  items outside the pool), and whether each item came from the pool; all (nq, k)."""

  indices: np.ndarray
  hamming: np.ndarray
  feature_distance: np.ndarray
  in_pool: np.ndarray


@functools.partial(jax.jit, static_argnames=('k', 'chunk'))
def _rerank(q_features, db_features, candidates, in_pool, *, k, chunk):
  """Per query: candidates sorted by (in pool ? feature distance : inf), stably; the first k."""

  def one(args):
    qf, cand, pool = args
    diff = db_features[cand] - qf[:, None, :]  # (chunk, M, D): exact distances, no |a|^2+|b|^2-2ab
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    key = jnp.where(pool, dist, jnp.inf)
    order = jnp.argsort(key, axis=1, stable=True)[:, :k]
    return order, jnp.take_along_axis(key, order, axis=1)

  nq = q_features.shape[0]
  nc = -(-nq // chunk)
  pad = lambda x: jnp.pad(x, ((0, nc * chunk - nq),) + ((0, 0),) * (x.ndim - 1))
  split = lambda x: pad(x).reshape((nc, chunk) + x.shape[1:])
  order, dist = lax.map(one, (split(q_features), split(candidates), split(in_pool)))
  return order.reshape(nc * chunk, k)[:nq], dist.reshape(nc * chunk, k)[:nq]


def coarse_to_fine(
  q_packed,
  db_packed,
  q_features,
  db_features,
  *,
  k: int,
  bits: int,
  pool: str = 'topm',
  pool_size: int = 1000,
  radius: int = 2,
  query_chunk: int | None = None,
) -> Ranking:
  """The first k items of each query by coarse-to-fine search (module doc).

  q_packed, db_packed: packed uint32 codes (nq, W), (ndb, W); q_features, db_features: float
  (nq, D), (ndb, D), rows in the same order as the codes.
  """
  if pool not in POOLS:
    raise ValueError(f'unknown pool {pool!r}; valid: {", ".join(POOLS)}')
  q_features, db_features = np.asarray(q_features, np.float32), np.asarray(db_features, np.float32)
  nq, ndb = len(q_packed), len(db_packed)
  if q_features.shape[0] != nq or db_features.shape[0] != ndb or q_features.shape[1:] != db_features.shape[1:]:
    raise ValueError(
      f'features {q_features.shape}, {db_features.shape} do not match the codes ({nq}, {ndb} rows) or each other'
    )
  if not 1 <= k <= ndb:
    raise ValueError(f'k must be in [1, {ndb}] (the database size), got {k}')
  if not 1 <= pool_size:
    raise ValueError(f'pool_size must be >= 1, got {pool_size}')
  if pool == 'radius' and not (isinstance(radius, (int, np.integer)) and radius >= 0):
    raise ValueError(f'radius must be an int >= 0, got {radius!r}')
  m = min(max(k, pool_size), ndb)
  hamming, candidates = (np.asarray(x) for x in search.topk_search(q_packed, db_packed, m, bits=bits))
  in_pool = np.broadcast_to(np.arange(m) < pool_size, hamming.shape)
  if pool == 'radius':
    in_pool = in_pool & (hamming <= radius)
  chunk = query_chunk or int(max(1, min(nq, 2**24 // (m * q_features.shape[1]))))
  order, dist = (np.asarray(x) for x in _rerank(q_features, db_features, candidates, in_pool, k=k, chunk=chunk))
  take = lambda x: np.take_along_axis(x, order, axis=1)
  return Ranking(take(candidates), take(hamming), dist, take(in_pool))
