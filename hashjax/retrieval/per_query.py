"""Per-query retrieval statistics, computed in XLA over chunks of queries.

Ranking: database items sorted by ascending Hamming distance; ties broken by
  * "stable": lower database index first (deterministic). Computed by the
    counting scan of ``stable_count`` (default) or a sort + cumsum;
  * "numpy": the order of host ``np.argsort(d.astype(float32), axis=-1)``
    (default quicksort, not stable), i.e. what DeepHash-pytorch's per-query
    ``np.argsort`` of float32 ``0.5 * (K - B1 @ B2.T)`` gives;
  * "expected": no order; statistics are expectations over a uniformly random
    order inside each equal-distance bucket, from per-distance counts.

Relevance: rel(q, j) = 1[y_q == y_j] for (n,) class ids, 1[y_q . y_j > 0] for
(n, C) multi-hot labels (share at least one label).
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from hashjax.retrieval import expected
from hashjax.retrieval import native
from hashjax.retrieval.hamming import hamming_block
from hashjax.retrieval.select import row_histograms
from hashjax.retrieval.stable_count import stable_counting_stats


def relevance(q_labels, db_labels) -> jnp.ndarray:
  """(nq, ndb) bool; labels as returned by ``validate.check_labels``."""
  if q_labels.ndim == 1:
    return q_labels[:, None] == db_labels[None, :]
  return jnp.dot(q_labels, db_labels.T, preferred_element_type=jnp.float32) > 0


def _stable_sorted_relevance(d, rel, bits: int) -> jnp.ndarray:
  """Relevance in (distance, index) order, int32 (cq, ndb)."""
  n = d.shape[1]
  if 2 * (bits + 1) * n < 2**31:
    # One int32 key sort (faster than a two-operand stable sort on CPU):
    # key = (d * n + index) * 2 + rel is unique, so any sort is stable.
    idx = lax.broadcasted_iota(jnp.int32, d.shape, 1)
    key = (d * n + idx) * 2 + rel.astype(jnp.int32)
    return lax.sort(key, dimension=1) & 1
  return lax.sort((d, rel.astype(jnp.int32)), dimension=1, is_stable=True, num_keys=1)[1]


def _ranked_stats(rs, ks, pns) -> dict:
  """AP@all, AP@K, P@N from relevance in ranked order rs (cq, n) int32.

  AP@K = sum_{k<=K} P@k rel_k / sum_{k<=K} rel_k (0 if no hit in the top K);
  P@k = cum_k / k. hits@N = cum_min(N, n) (P@N = hits@N / N).
  """
  n = rs.shape[1]
  cum = jnp.cumsum(rs, axis=1)
  prec = cum.astype(jnp.float32) / jnp.arange(1, n + 1, dtype=jnp.float32)
  contrib = jnp.where(rs > 0, prec, 0.0)
  tot = cum[:, -1]
  out = {'ap': jnp.sum(contrib, axis=1) / jnp.maximum(tot, 1), 'n_rel': tot}
  for k in ks:
    kc = min(k, n)
    hits = cum[:, kc - 1]
    out[f'ap@{k}'] = jnp.sum(contrib[:, :kc], axis=1) / jnp.maximum(hits, 1)
    out[f'n_rel@{k}'] = hits
  for m in pns:
    out[f'hits@{m}'] = cum[:, min(m, n) - 1]  # P@N = hits / N on the host
  return out


def _ball_stats(d, rel, radius: int) -> dict:
  ball = d <= radius
  return {'ball': jnp.sum(ball, axis=1, dtype=jnp.int32), 'ball_rel': jnp.sum(ball & rel, axis=1, dtype=jnp.int32)}


def _histograms(d, rel, bits: int) -> dict:
  """Per-distance counts (cq, bits + 1) of all and relevant items."""
  h = row_histograms(d * 2 + rel.astype(jnp.int32), 2 * (bits + 1))
  return {'hist_all': h[:, 0::2] + h[:, 1::2], 'hist_rel': h[:, 1::2]}


def _map_chunks(fn, *per_query, chunk: int):
  """lax.map of fn over chunks of `chunk` queries of the per-query arrays (padded to a multiple)."""
  nq = per_query[0].shape[0]
  nc = -(-nq // chunk)
  pad = nc * chunk - nq

  def split(x):
    x = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1))
    return x.reshape((nc, chunk) + x.shape[1:])

  out = lax.map(lambda a: fn(*a), tuple(split(x) for x in per_query))
  return {k: v.reshape((nc * chunk,) + v.shape[2:])[:nq] for k, v in out.items()}


@functools.partial(jax.jit, static_argnames=('bits', 'ks', 'pns', 'radius', 'chunk', 'mode'))
def _xla_stats(q_packed, q_labels, db_packed, db_labels, *, bits, ks, pns, radius, chunk, mode):
  def one(qp, ql):
    d = hamming_block(qp, db_packed)
    rel = relevance(ql, db_labels)
    if mode == 'hist':
      return _histograms(d, rel, bits)
    out = _ball_stats(d, rel, radius)
    out.update(_ranked_stats(_stable_sorted_relevance(d, rel, bits), ks, pns))
    return out

  return _map_chunks(one, q_packed, q_labels, chunk=chunk)


@functools.partial(jax.jit, static_argnames=('radius',))
def _dist_rel(q_packed, q_labels, db_packed, db_labels, *, radius):
  d = hamming_block(q_packed, db_packed)
  rel = relevance(q_labels, db_labels)
  return d, rel, _ball_stats(d, rel, radius)


@functools.partial(jax.jit, static_argnames=('ks', 'pns'))
def _gather_ranked(rel, order, *, ks, pns):
  rs = jnp.take_along_axis(rel, order, axis=1).astype(jnp.int32)
  return _ranked_stats(rs, ks, pns)


@functools.partial(jax.jit, static_argnames=('ks', 'pns', 'chunk'))
def _counting_stats(q_packed, q_labels, db_packed, db_labels, hist_all, hist_rel, *, ks, pns, chunk):
  """stable_counting_stats over lane chunks of queries (lax.map)."""

  def one(qp, ql, ha, hr):
    return stable_counting_stats(qp, ql, db_packed, db_labels, ha, hr, ks, pns)

  return _map_chunks(one, q_packed, q_labels, hist_all, hist_rel, chunk=chunk)


def _numpy_stats(q_packed, q_labels, db_packed, db_labels, *, ks, pns, radius, chunk):
  """Host np.argsort per chunk (bit-compatible with per-row np.argsort)."""
  outs = []
  for s in range(0, q_packed.shape[0], chunk):
    d, rel, out = _dist_rel(q_packed[s : s + chunk], q_labels[s : s + chunk], db_packed, db_labels, radius=radius)
    order = np.argsort(np.asarray(d).astype(np.float32), axis=1)
    out.update(_gather_ranked(rel, order.astype(np.int32), ks=ks, pns=pns))
    outs.append({k: np.asarray(v) for k, v in out.items()})
  out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
  for m in pns:
    out[f'p@{m}'] = out[f'hits@{m}'] / m
  return out


def default_chunk(nq: int, ndb: int) -> int:
  # ~16M (query, item) pairs per chunk: a few 64 MiB int32 buffers.
  return int(max(1, min(nq, 1024, 2**24 // max(ndb, 1))))


def per_query_stats(
  q_packed,
  q_labels,
  db_packed,
  db_labels,
  *,
  bits: int,
  ks=(),
  pns=(),
  radius: int = 2,
  ties: str = 'stable',
  chunk: int | None = None,
  stable_impl: str = 'auto',
  lane_chunk: int = 8192,
) -> dict:
  """Per-query arrays (nq,): 'ap', 'n_rel', 'ap@K', 'n_rel@K', 'p@N',
  'ball', 'ball_rel' (and 'hist_all'/'hist_rel' for ties='expected').

  Inputs must already be validated (``validate.check_*``). ties="stable"
  uses ``stable_impl``: "native" (the fused C++ kernel of ``native``, CPU
  only), "count" (histogram pass, then the counting scan of ``stable_count``
  over ``lane_chunk`` queries at a time), "sort" (one sort + cumsum per query
  chunk) or "auto": "native" on CPU when it compiles and the database has
  under 2^24 codes (benchmarks/notes/retrieval_engine.md, "native kernels
  rewritten"), else "count" on CPU, where it measured 1.6x faster than the
  sort, and "sort" elsewhere (a scan over every database item is sequential;
  accelerators sort fast; not measured here).
  """
  chunk = chunk or default_chunk(len(q_packed), len(db_packed))
  ks, pns = tuple(int(k) for k in ks), tuple(int(m) for m in pns)
  if ties == 'numpy':
    return _numpy_stats(q_packed, q_labels, db_packed, db_labels, ks=ks, pns=pns, radius=radius, chunk=chunk)
  if ties not in ('stable', 'expected'):
    raise ValueError(f"ties must be 'stable', 'numpy' or 'expected', got {ties!r}")
  if stable_impl not in ('auto', 'native', 'count', 'sort'):
    raise ValueError(f"stable_impl must be 'auto', 'native', 'count' or 'sort': {stable_impl!r}")
  if stable_impl == 'auto':
    fits = len(db_packed) <= native.STABLE_MAX_DB
    stable_impl = 'sort' if jax.default_backend() != 'cpu' else 'native' if fits and native.available()[0] else 'count'
  if ties == 'stable' and stable_impl == 'native':
    out = native.stable_stats(q_packed, q_labels, db_packed, db_labels, bits=bits, ks=ks, pns=pns)
  else:
    mode = 'sort' if ties == 'stable' and stable_impl == 'sort' else 'hist'
    out = _xla_stats(
      q_packed, q_labels, db_packed, db_labels, bits=bits, ks=ks, pns=pns, radius=radius, chunk=chunk, mode=mode
    )
    if ties == 'stable' and stable_impl == 'count':
      out.update(
        _counting_stats(
          q_packed,
          q_labels,
          db_packed,
          db_labels,
          out['hist_all'],
          out['hist_rel'],
          ks=ks,
          pns=pns,
          chunk=equal_chunk(len(q_packed), lane_chunk),
        )
      )
  return finish_stats({k: np.asarray(v) for k, v in out.items()}, radius=radius, ks=ks, pns=pns, ties=ties)


def equal_chunk(n: int, max_chunk: int) -> int:
  """Size of the ceil(n / max_chunk) equal chunks that cover n (little padding)."""
  return -(-n // -(-n // max_chunk))


def finish_stats(out: dict, *, radius: int, ks, pns, ties: str) -> dict:
  """On the host: 'n_rel', 'ball', 'ball_rel' from the histograms (when computed), 'p@N' from the
  hits, and for ties="expected" AP, AP@K and P@N from the histograms alone ('n_rel@K' is then the
  expected number of relevant items in the top K)."""
  if 'hist_all' in out:
    n, r = out['hist_all'], out['hist_rel']
    out['n_rel'] = r.sum(axis=1)
    out['ball'] = n[:, : radius + 1].sum(axis=1)
    out['ball_rel'] = r[:, : radius + 1].sum(axis=1)
  for m in pns:
    if f'hits@{m}' in out:
      out[f'p@{m}'] = out[f'hits@{m}'] / m
  if ties == 'expected':
    out['ap'] = expected.expected_ap(n, r)
    for k in ks:
      out[f'ap@{k}'], out[f'n_rel@{k}'] = expected.expected_ap_at(n, r, k)
    for m in pns:
      out[f'p@{m}'] = expected.expected_precision_at(n, r, m)
  return out
