"""Shallow baselines (LSH, PCAH, ITQ, SH) run like any method, with no training loop:

  python -m hashjax.main --config configs/itq.py:bits=32 --workdir runs/itq

fits the baseline on the protocol's training images (pixels scaled to [0, 1], or a feature file
aligned with the protocol's pool), encodes query and database, and evaluates with the same
retrieval metrics as the deep methods, so both fill the same tables. The workdir receives the
usual config.json / protocol.json / final_metrics.json / codes.npz and the fitted encoder (`encoder.npz`,
rebuilt by `hashjax.baselines.from_arrays`).
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from hashjax import baselines
from hashjax.data import protocols
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.workdir import run_files


def pool_features(config, protocol: protocols.Protocol) -> np.ndarray:
  """(pool size, d) float32 features: flattened pixels in [0, 1], or `loss.features` (.npy path)."""
  source = config.loss.features
  if source == 'pixels':
    return protocol.images.reshape(len(protocol.images), -1).astype(np.float32) / 255.0
  if not os.path.isfile(source):
    raise FileNotFoundError(f"loss.features: {source!r} is neither 'pixels' nor a .npy file")
  features = np.load(source, allow_pickle=False)
  if features.ndim != 2 or len(features) != len(protocol.images):
    raise ValueError(
      f'loss.features {source!r} has shape {features.shape}; it needs one row per image of '
      f'the pool ({len(protocol.images)}, in protocol order)'
    )
  return features


def fit_and_evaluate(config, protocol: protocols.Protocol, workdir: str) -> dict:
  t_start = time.time()
  fit = baselines.get(config.method)
  run_files.write_start(workdir, config, protocol)
  features = pool_features(config, protocol)
  options = {k: v for k, v in config.loss.items() if k != 'features'}
  encoder = fit(features[protocol.train], config.bits, seed=config.seed, **options)
  if jax.process_index() == 0:
    np.savez(os.path.join(workdir, 'encoder.npz'), **encoder.to_arrays())
  query = codes_lib.pack_codes(encoder.encode(features[protocol.query]))
  database = codes_lib.pack_codes(encoder.encode(features[protocol.database]))
  final = metrics_lib.retrieval_metrics(
    query,
    protocol.labels[protocol.query],
    database,
    protocol.labels[protocol.database],
    bits=config.bits,
    topk=tuple(config.eval.topk),
    radius=config.eval.radius,
    pn=tuple(config.eval.pn),
    ties=config.eval.ties,
  )
  run_files.write_codes(workdir, protocol, query, database, config.bits)
  final.update(step=0, wall_seconds=round(time.time() - t_start, 1))
  run_files.write_json(workdir, 'final_metrics.json', final)
  print(
    f'{config.method} {config.bits} bits on {config.dataset.name}: {run_files.format_metrics(final)}; '
    f'workdir {workdir}',
    flush=True,
  )
  return final
