"""Retrieval evaluation of a network: encode query and database sets, pack the codes, rank by
Hamming distance (hashjax.retrieval) and return the metrics."""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils
import numpy as np

from hashjax.data import pipeline
from hashjax.data import streaming
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import pr_curve as pr_curve_lib


def make_encoder(forward, preprocess, to_codes, params_sharding, batch_sharding):
  """Jitted `encode(params, uint8 images) -> real-valued codes` (sign >= 0 is bit 1)."""

  def encode(params, images):
    return to_codes(forward(params, preprocess(images, train=False), train=False))

  return jax.jit(encode, in_shardings=(params_sharding, batch_sharding), out_shardings=batch_sharding)


def encode_set(
  encode, params, images: np.ndarray, indices: np.ndarray, batch_size: int, batch_sharding, workers: int = -1
) -> np.ndarray:
  """Real-valued codes (len(indices), bits) on the host, in the order of `indices`. Images decoded
  from disk are read ahead by `workers` processes (-1: one per core; `streaming.worker_count`)."""
  out = []
  for local, valid in pipeline.eval_batches(images, indices, batch_size, streaming.worker_count(images, workers)):
    codes = encode(params, jax.make_array_from_process_local_data(batch_sharding, local))
    out.append(np.asarray(multihost_utils.process_allgather(codes, tiled=True))[:valid])
  return np.concatenate(out)


def query_sharded_metrics(q_packed, q_labels, db_packed, db_labels, **kwargs) -> dict:
  """`retrieval_metrics` with the queries split over the processes: each process ranks the whole
  database for its contiguous slice of the queries, and the query-weighted mean of the slices'
  metrics over the processes is the metrics of all queries (with zero_relevant='zero', every
  metric is a mean over queries). One process: `retrieval_metrics` itself."""
  n, count, index = len(q_packed), jax.process_count(), jax.process_index()
  if count == 1 or n < count:
    return metrics_lib.retrieval_metrics(q_packed, q_labels, db_packed, db_labels, **kwargs)
  bounds = np.linspace(0, n, count + 1).astype(int)
  mine = slice(bounds[index], bounds[index + 1])
  local = metrics_lib.retrieval_metrics(q_packed[mine], q_labels[mine], db_packed, db_labels, **kwargs)
  keys = sorted(local)
  values = np.array([local[k] for k in keys], np.float64)
  # float64 through a float32 all-gather (x64 is off): as a hi + lo pair of float32.
  hi = values.astype(np.float32)
  lo = (values - hi).astype(np.float32)
  gathered = np.asarray(multihost_utils.process_allgather(np.stack([hi, lo])), np.float64)  # (procs, 2, m)
  per_process = gathered[:, 0] + gathered[:, 1]
  weights = np.diff(bounds).astype(np.float64)
  return {k: float(v) for k, v in zip(keys, weights @ per_process / n)}


def mesh_metrics(q_packed, q_labels, db_packed, db_labels, *, mesh, ties: str = 'stable', **kwargs) -> dict:
  """`retrieval_metrics` on every device of `mesh` (all processes): the database split over its
  devices (retrieval.db_sharded), so each device scans only its slice. ties='numpy' needs whole
  distance rows: the queries are split over the processes instead (`query_sharded_metrics`)."""
  if mesh.size == 1 or ties == 'numpy':
    return query_sharded_metrics(q_packed, q_labels, db_packed, db_labels, ties=ties, **kwargs)
  return metrics_lib.retrieval_metrics(
    q_packed, q_labels, db_packed, db_labels, ties=ties, mesh=mesh, axis=mesh.axis_names[0], **kwargs
  )


def evaluate(encode, params, protocol, config, batch_sharding, *, with_pr_curve: bool = False):
  """mAP@all, mAP@K, P@H<=r, R@H<=r and P@N of the protocol's queries against its database, ranked
  over the global database split across the mesh's devices (`mesh_metrics`); with_pr_curve: (those
  metrics, the precision-recall curve by Hamming radius from the same codes, computed by process 0
  only, None elsewhere)."""
  bs, workers = config.eval.batch_size, config.dataset.workers
  q = encode_set(encode, params, protocol.images, protocol.query, bs, batch_sharding, workers)
  db = encode_set(encode, params, protocol.images, protocol.database, bs, batch_sharding, workers)
  bits = q.shape[1]
  packed = (
    codes_lib.pack_codes(q),
    protocol.labels[protocol.query],
    codes_lib.pack_codes(db),
    protocol.labels[protocol.database],
  )
  metrics = mesh_metrics(
    *packed,
    mesh=batch_sharding.mesh,
    bits=bits,
    topk=tuple(config.eval.topk),
    radius=config.eval.radius,
    pn=tuple(config.eval.pn),
    ties=config.eval.ties,
  )
  if not with_pr_curve:
    return metrics
  return metrics, pr_curve_lib.pr_curve_by_radius(*packed, bits=bits) if jax.process_index() == 0 else None
