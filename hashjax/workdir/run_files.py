"""The JSON files every run writes into its workdir (process 0 only): the config that ran, the
protocol's split, the final metrics. `hashjax.eval.workdir_eval` reads them back."""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

CODES_FILE = 'codes.npz'
CONFIG_CHANGES_FILE = 'config_changes.jsonl'


def write_json(workdir: str, name: str, obj) -> None:
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, name), 'w') as f:
      json.dump(obj, f, indent=2)


def write_start(workdir: str, config, protocol, *, step: int = 0, changes: dict | None = None) -> None:
  """config.json (the config that runs from now on), protocol.json (its query / train / database
  split) and, when a resume at `step` changes config keys, one line in config_changes.jsonl
  ({step, time, changes: {key: [old, new]}}), so the workdir says which settings ran when."""
  write_json(workdir, 'config.json', json.loads(config.to_json_best_effort()))
  write_json(workdir, 'protocol.json', {'dataset': config.dataset.name, **protocol.summary()})
  if changes and jax.process_index() == 0:
    with open(os.path.join(workdir, CONFIG_CHANGES_FILE), 'a') as f:
      f.write(
        json.dumps({'step': step, 'time': time.time(), 'changes': {k: list(v) for k, v in changes.items()}}) + '\n'
      )


def read_json(workdir: str, name: str) -> dict | None:
  """A workdir's JSON file, or None when it does not exist."""
  path = os.path.join(workdir, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def format_metrics(metrics: dict) -> str:
  return ' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in metrics.items())


def write_codes(workdir: str, protocol, query_packed, db_packed, bits: int) -> None:
  """codes.npz: packed query / database codes with their labels and pool ids (plain arrays, no
  pickle), readable by `read_codes`, `python -m hashjax.evaluate` (after np.save of the arrays) or
  any other tool."""
  if jax.process_index() == 0:
    np.savez(
      os.path.join(workdir, CODES_FILE),
      query_packed=query_packed,
      query_labels=protocol.labels[protocol.query],
      query_ids=protocol.query,
      db_packed=db_packed,
      db_labels=protocol.labels[protocol.database],
      db_ids=protocol.database,
      bits=np.int64(bits),
    )


def read_codes(workdir: str) -> dict:
  with np.load(os.path.join(workdir, CODES_FILE), allow_pickle=False) as f:
    return {k: (int(v) if k == 'bits' else v) for k, v in f.items()}
