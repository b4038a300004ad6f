"""Exact top-k Hamming search, streamed over the database and sharded.

Result order: ascending Hamming distance, ties by ascending database index
(identical to a stable argsort of each distance row). The database is split
over a mesh axis (each device scans its contiguous slice in chunks with a
running top-k); the per-device top-k lists are merged at the end.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec as P

from hashjax.retrieval.codes import num_words
from hashjax.retrieval.hamming import hamming_block
from hashjax.retrieval.select import merge_sorted, select_k_smallest

_BIG_IDX = np.iinfo(np.int32).max


def db_mesh(axis: str = "db") -> jax.sharding.Mesh:
  """1-D mesh over all devices, for ``topk_search(..., mesh=...)``."""
  return jax.make_mesh((jax.device_count(),), (axis,))


def _local_topk(q, db, valid, offset, *, k, bits, db_chunk, query_chunk,
                axis=None):
  """Top-k of q against a local db slice; db rows [offset, offset + n)."""
  nchunks = db.shape[0] // db_chunk
  dbc = db.reshape(nchunks, db_chunk, -1)
  vc = valid.reshape(nchunks, db_chunk)
  nb = bits + 2  # bucket bits + 1 = padding rows, never selected if k <= ndb

  def one_query_chunk(qc):
    init = (jnp.full((qc.shape[0], k), bits + 1, jnp.int32),
            jnp.full((qc.shape[0], k), _BIG_IDX, jnp.int32))
    if axis is not None:  # inside shard_map the carry varies over the axis
      init = tuple(lax.pcast(x, (axis,), to="varying") for x in init)

    def step(best, c):
      d = jnp.where(vc[c][None, :], hamming_block(qc, dbc[c]), bits + 1)
      gidx = offset + c * db_chunk + lax.broadcasted_iota(jnp.int32, d.shape, 1)
      cd, ci = select_k_smallest(d, gidx, k, nb)
      return merge_sorted(jnp.concatenate([best[0], cd], 1),
                          jnp.concatenate([best[1], ci], 1), k), None

    return lax.scan(step, init, jnp.arange(nchunks))[0]

  nq = q.shape[0]
  nqc = -(-nq // query_chunk)
  qp = jnp.pad(q, ((0, nqc * query_chunk - nq), (0, 0)))
  d, i = lax.map(one_query_chunk, qp.reshape(nqc, query_chunk, -1))
  return d.reshape(-1, k)[:nq], i.reshape(-1, k)[:nq]


@functools.partial(jax.jit, static_argnames=("k", "bits", "db_chunk",
                                             "query_chunk", "mesh", "axis"))
def _topk(q, db, valid, *, k, bits, db_chunk, query_chunk, mesh, axis):
  kw = dict(k=k, bits=bits, db_chunk=db_chunk, query_chunk=query_chunk)
  if mesh is None:
    return _local_topk(q, db, valid, 0, **kw)
  ndev = mesh.shape[axis]
  local_n = db.shape[0] // ndev

  def per_device(q, db, valid):
    offset = lax.axis_index(axis) * local_n
    d, i = _local_topk(q, db, valid, offset, axis=axis, **kw)
    return d[None], i[None]

  d, i = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis), P(axis)),
                       out_specs=(P(axis), P(axis)))(q, db, valid)
  # (ndev, nq, k) per-device lists -> replicate, then merge.
  d, i = (jax.sharding.reshard(x, NamedSharding(mesh, P())) for x in (d, i))
  d = jnp.moveaxis(d, 0, 1).reshape(q.shape[0], ndev * k)
  i = jnp.moveaxis(i, 0, 1).reshape(q.shape[0], ndev * k)
  return merge_sorted(d, i, k)


def topk_search(q_packed, db_packed, k: int, *, bits: int | None = None,
                db_chunk: int = 16384, query_chunk: int | None = None,
                mesh: jax.sharding.Mesh | None = None, axis: str = "db"):
  """Exact k nearest database codes by Hamming distance.

  Args:
    q_packed, db_packed: packed uint32 codes (nq, W), (ndb, W).
    k: neighbours per query, 1 <= k <= ndb.
    bits: code length (default 32 * W; only sets the distance range).
    db_chunk: database rows scanned per step (memory ~ query_chunk * db_chunk).
    mesh, axis: shard the database over ``mesh.shape[axis]`` devices.
  Returns:
    (distances int32 (nq, k), indices int32 (nq, k)); row order ascending
    distance, ties by ascending database index. Repeated query codes are
    searched once.
  """
  q, db = np.asarray(q_packed), np.asarray(db_packed)
  for name, x in (("q_packed", q), ("db_packed", db)):
    if x.dtype != np.uint32 or x.ndim != 2:
      raise ValueError(f"{name} must be 2-D packed uint32, got {x.dtype} "
                       f"{x.shape}")
  if q.shape[1] != db.shape[1]:
    raise ValueError(f"word counts differ: {q.shape[1]} vs {db.shape[1]}")
  bits = 32 * db.shape[1] if bits is None else int(bits)
  if num_words(bits) != db.shape[1]:
    raise ValueError(f"bits={bits} does not match {db.shape[1]} words")
  ndb = db.shape[0]
  if not 1 <= k <= ndb:
    raise ValueError(f"k must be in [1, {ndb}], got {k}")
  if ndb >= _BIG_IDX:
    raise ValueError("database too large for int32 indices")
  q, inverse = np.unique(q, axis=0, return_inverse=True)  # identical queries, identical answers
  ndev = 1 if mesh is None else mesh.shape[axis]
  per_dev = -(-ndb // ndev)
  chunk = max(k, min(db_chunk, per_dev))
  per_dev = -(-per_dev // chunk) * chunk
  pad = per_dev * ndev - ndb
  valid = np.concatenate([np.ones(ndb, bool), np.zeros(pad, bool)])
  db = np.concatenate([db, np.zeros((pad, db.shape[1]), np.uint32)])
  query_chunk = query_chunk or int(max(1, min(q.shape[0], 2**24 // chunk)))
  if mesh is not None:
    db = jax.device_put(db, NamedSharding(mesh, P(axis)))
    valid = jax.device_put(valid, NamedSharding(mesh, P(axis)))
  d, i = _topk(q, db, valid, k=int(k), bits=bits, db_chunk=chunk,
               query_chunk=query_chunk, mesh=mesh, axis=axis)
  inverse = inverse.reshape(-1)
  return d[inverse], i[inverse]
