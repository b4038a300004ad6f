"""Retrieval evaluation of a network: encode query and database sets, pack the codes, rank by
Hamming distance (hashjax.retrieval) and return the metrics."""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from hashjax.data import pipeline
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import pr_curve as pr_curve_lib


def make_encoder(forward, preprocess, to_codes, params_sharding, batch_sharding):
  """Jitted `encode(params, uint8 images) -> real-valued codes` (sign >= 0 is bit 1)."""
  def encode(params, images):
    return to_codes(forward(params, preprocess(images, train=False), train=False))
  return jax.jit(encode, in_shardings=(params_sharding, batch_sharding), out_shardings=batch_sharding)


def encode_set(encode, params, images: np.ndarray, indices: np.ndarray, batch_size: int,
               batch_sharding) -> np.ndarray:
  """Real-valued codes (len(indices), bits) on the host, in the order of `indices`."""
  out = []
  for local, valid in pipeline.eval_batches(images, indices, batch_size):
    codes = encode(params, jax.make_array_from_process_local_data(batch_sharding, local))
    out.append(np.asarray(multihost_utils.process_allgather(codes, tiled=True))[:valid])
  return np.concatenate(out)


def evaluate(encode, params, protocol, config, batch_sharding, *, with_pr_curve: bool = False):
  """mAP@all, mAP@K, P@H<=r, R@H<=r and P@N of the protocol's queries against its database;
  with_pr_curve: (those metrics, the precision-recall curve by Hamming radius) from the same codes."""
  bs = config.eval.batch_size
  q = encode_set(encode, params, protocol.images, protocol.query, bs, batch_sharding)
  db = encode_set(encode, params, protocol.images, protocol.database, bs, batch_sharding)
  bits = q.shape[1]
  packed = (codes_lib.pack_codes(q), protocol.labels[protocol.query],
            codes_lib.pack_codes(db), protocol.labels[protocol.database])
  metrics = metrics_lib.retrieval_metrics(
      *packed, bits=bits, topk=tuple(config.eval.topk), radius=config.eval.radius, pn=tuple(config.eval.pn),
      ties=config.eval.ties)
  if not with_pr_curve:
    return metrics
  return metrics, pr_curve_lib.pr_curve_by_radius(*packed, bits=bits)
