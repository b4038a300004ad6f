"""Retrieval statistics over a database split across devices (and hosts): exact, no gather.

Each device holds a contiguous slice of the database (the last one padded) and every query.
  1. Histogram pass: per-query counts of all and relevant items at each Hamming distance in the
     device's slice (padding rows excluded).
  2. The slices' histograms are all-gathered ((devices, queries, bits + 1) int32: small). Their sum
     is the whole database's histogram, which alone gives P@H<=r, R@H<=r and the 'expected' ties.
  3. Stable ties: the item at distance b in slice s is ranked after every item at a smaller
     distance anywhere and after the items at distance b in slices < s (index order). So each
     slice runs the counting scan of `stable_count` with those start counters, and the slices'
     AP / hit sums are psum'd: the same ranking as one device, never materialised.
Memory per device: its slice (n / devices x words uint32), one (query chunk x slice) distance
block for the histograms, and (queries x (bits + 1)) counters per lane chunk. The AP sums are
float32 partial sums added across devices, so they agree with one device's sequential sum to
float32 rounding (relative 1e-6), not bit for bit; every count is exact.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from hashjax.retrieval.hamming import hamming_block
from hashjax.retrieval.per_query import _histograms
from hashjax.retrieval.per_query import _map_chunks
from hashjax.retrieval.per_query import default_chunk
from hashjax.retrieval.per_query import equal_chunk
from hashjax.retrieval.per_query import finish_stats
from hashjax.retrieval.per_query import relevance
from hashjax.retrieval.stable_count import counting_sums
from hashjax.retrieval.stable_count import finish_counting


def _local_histograms(q, ql, db, dl, valid, *, bits, chunk):
  """Per-query counts (nq, bits + 1) of all / relevant items in this slice, padding excluded."""

  def one(qp, qlab):
    ok = valid[None, :]
    # Padding goes to an extra bucket bits + 1, dropped below.
    h = _histograms(jnp.where(ok, hamming_block(qp, db), bits + 1), relevance(qlab, dl) & ok, bits + 1)
    return {k: v[:, : bits + 1] for k, v in h.items()}

  return _map_chunks(one, q, ql, chunk=chunk)


@functools.partial(
  jax.jit, static_argnames=('bits', 'ks', 'pns', 'stable', 'chunk', 'lanes', 'db_size', 'mesh', 'axis')
)
def _sharded(q, ql, db, dl, valid, *, bits, ks, pns, stable, chunk, lanes, db_size, mesh, axis):
  def per_device(q, ql, db, dl, valid):
    h = _local_histograms(q, ql, db, dl, valid, bits=bits, chunk=chunk)
    both = lax.all_gather(jnp.stack([h['hist_all'], h['hist_rel']]), axis)  # (dev, 2, nq, nb)
    total = jnp.sum(both, axis=0)
    out = {'hist_all': total[0], 'hist_rel': total[1]}
    if not stable:
      return out
    me = lax.axis_index(axis)
    earlier = jnp.sum(jnp.where((jnp.arange(both.shape[0]) < me)[:, None, None, None], both, 0), axis=0)

    def lane_chunk(qp, qlab, ha, hr, ba, br):
      return counting_sums(qp, qlab, db, dl, ha, hr, ks, pns, before=(ba, br), valid=valid, db_size=db_size)

    sums = _map_chunks(lane_chunk, q, ql, total[0], total[1], earlier[0], earlier[1], chunk=lanes)
    sums = lax.psum(sums, axis)
    out.update(finish_counting(sums, total[1], ks, pns))
    return out

  # check_vma=False: the scans' carries start replicated and become per-device.
  return jax.shard_map(
    per_device, mesh=mesh, in_specs=(P(), P(), P(axis), P(axis), P(axis)), out_specs=P(), check_vma=False
  )(q, ql, db, dl, valid)


def sharded_inputs(
  q_packed,
  q_labels,
  db_packed,
  db_labels,
  *,
  bits: int,
  mesh: jax.sharding.Mesh,
  axis: str = 'db',
  ks=(),
  pns=(),
  ties: str = 'stable',
  chunk: int | None = None,
  lane_chunk: int = 8192,
) -> tuple[tuple, dict]:
  """(arrays, static arguments) of the sharded program `_sharded` (also for its memory analysis
  in benchmarks/retrieval_bench.py): the database padded and split over the devices."""
  if ties not in ('stable', 'expected'):
    raise ValueError(
      f"a database sharded over devices supports ties 'stable' or 'expected', got {ties!r} "
      "(ties='numpy' needs whole distance rows on the host: evaluate without a mesh)"
    )
  ndev, ndb, nq = mesh.shape[axis], len(db_packed), len(q_packed)
  per_dev = -(-ndb // ndev)
  pad = per_dev * ndev - ndb
  db = np.concatenate([np.asarray(db_packed), np.zeros((pad, db_packed.shape[1]), np.uint32)])
  dl = np.asarray(db_labels)
  dl = np.concatenate([dl, np.zeros((pad,) + dl.shape[1:], dl.dtype)])
  valid = np.arange(per_dev * ndev) < ndb
  # Host arrays identical on every process: device_put takes each device's part (no transfer
  # between processes).
  sharded, replicated = NamedSharding(mesh, P(axis)), NamedSharding(mesh, P())
  db, dl, valid = (jax.device_put(x, sharded) for x in (db, dl, valid))
  q, ql = (jax.device_put(np.asarray(x), replicated) for x in (q_packed, q_labels))
  static = dict(
    bits=bits,
    ks=tuple(int(k) for k in ks),
    pns=tuple(int(m) for m in pns),
    stable=ties == 'stable',
    chunk=chunk or default_chunk(nq, per_dev),
    lanes=equal_chunk(nq, lane_chunk),
    db_size=ndb,
    mesh=mesh,
    axis=axis,
  )
  return (q, ql, db, dl, valid), static


def db_sharded_stats(
  q_packed,
  q_labels,
  db_packed,
  db_labels,
  *,
  bits: int,
  mesh: jax.sharding.Mesh,
  axis: str = 'db',
  ks=(),
  pns=(),
  radius: int = 2,
  ties: str = 'stable',
  chunk: int | None = None,
  lane_chunk: int = 8192,
) -> dict:
  """`per_query.per_query_stats` (same keys) with the database split over `mesh.shape[axis]` devices.

  Inputs validated (`validate.check_*`), host arrays identical on every process (each device
  takes its slice). ties: "stable" or "expected"; "numpy" reproduces a host argsort of whole
  distance rows, which a split database does not have.
  """
  arrays, static = sharded_inputs(
    q_packed,
    q_labels,
    db_packed,
    db_labels,
    bits=bits,
    mesh=mesh,
    axis=axis,
    ks=ks,
    pns=pns,
    ties=ties,
    chunk=chunk,
    lane_chunk=lane_chunk,
  )
  out = _sharded(*arrays, **static)
  # Replicated outputs: any local copy is the whole value (also with several processes).
  return finish_stats(
    {k: np.asarray(v.addressable_data(0)) for k, v in out.items()},
    radius=radius,
    ks=static['ks'],
    pns=static['pns'],
    ties=ties,
  )
