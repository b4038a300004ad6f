"""Shallow baselines (LSH, PCAH, ITQ, SH) run like any method, with no training loop:

  python -m hashjax.main --config configs/itq.py:bits=32 --workdir runs/itq

fits the baseline on the protocol's training images (pixels scaled to [0, 1], the `features`
dataset's vectors, or a feature file aligned with the protocol's pool), encodes query and database, and evaluates with the same
retrieval metrics as the deep methods, so both fill the same tables. The workdir receives the
usual config.json / protocol.json / final_metrics.json / codes.npz and the fitted encoder (`encoder.npz`,
rebuilt by `hashjax.baselines.from_arrays`). `final_metrics.json`'s `fit_on` says what it was fit on.
Memory: the fit holds the training rows in float64 (N_train x d x 8 bytes; the baselines' fits are
float64 by design); query and database are gathered and encoded ENCODE_ROWS at a time.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import time

import jax
import numpy as np

from hashjax import baselines
from hashjax.data import protocols
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.workdir import run_files

ENCODE_ROWS = 65536  # query / database rows encoded at a time (bounded memory for 1M-row databases)


def pool_rows(config, protocol: protocols.Protocol) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
  """(rows(indices) -> (len(indices), d) features, what they are) of `loss.features`:
  'pixels' = the dataset's own rows (flattened pixels in [0, 1]; the `features` dataset's vectors as
  stored, gathered from its memory map), or a .npy path (memory-mapped; one row per pool image)."""
  source = config.loss.features
  if source == 'pixels' and protocol.is_features:
    # float64, what the fits compute in anyway (and numpy's float type for bfloat16 rows).
    return (lambda idx: np.asarray(protocol.images[idx]).astype(np.float64)), protocol.origin
  if source == 'pixels':
    images = protocol.images
    return (lambda idx: np.asarray(images[idx]).reshape(len(idx), -1).astype(np.float32) / 255.0), 'pixels in [0, 1]'
  if not os.path.isfile(source):
    raise FileNotFoundError(f"loss.features: {source!r} is neither 'pixels' nor a .npy file")
  features = np.load(source, mmap_mode='r', allow_pickle=False)
  if features.ndim != 2 or len(features) != len(protocol.images):
    raise ValueError(
      f'loss.features {source!r} has shape {features.shape}; it needs one row per image of '
      f'the pool ({len(protocol.images)}, in protocol order)'
    )
  return (lambda idx: np.asarray(features[np.asarray(idx)])), source


def _encode(encoder, rows, indices: np.ndarray) -> np.ndarray:
  """Packed codes of the rows `indices`, ENCODE_ROWS at a time."""
  return np.concatenate(
    [
      codes_lib.pack_codes(encoder.encode(rows(indices[i : i + ENCODE_ROWS])))
      for i in range(0, max(len(indices), 1), ENCODE_ROWS)
    ]
  )


def fit_and_evaluate(config, protocol: protocols.Protocol, workdir: str) -> dict:
  t_start = time.time()
  fit = baselines.get(config.method)
  run_files.write_start(workdir, config, protocol)
  rows, what = pool_rows(config, protocol)
  options = {k: v for k, v in config.loss.items() if k != 'features'}
  encoder = fit(rows(protocol.train), config.bits, seed=config.seed, **options)
  if jax.process_index() == 0:
    np.savez(os.path.join(workdir, 'encoder.npz'), **encoder.to_arrays())
  query = _encode(encoder, rows, protocol.query)
  database = _encode(encoder, rows, protocol.database)
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
  final.update(step=0, wall_seconds=round(time.time() - t_start, 1), fit_on=what)
  run_files.write_json(workdir, 'final_metrics.json', final)
  print(
    f'{config.method} {config.bits} bits on {config.dataset.name}: {run_files.format_metrics(final)}; '
    f'workdir {workdir}',
    flush=True,
  )
  return final
