"""What a resumed run may change: a checkpoint records its run's whole config, and a resume must match it.

`RESUMABLE_KEYS` is the one list of keys that may differ; `hashjax/train/trainer.py` compares.
"""

from __future__ import annotations

import json

import ml_collections as mlc

from hashjax.config import common

# Keys a resumed run may change: how long, how often, where and how fast it runs, not what it
# computes. A group ends with '.'. Extending num_epochs / num_steps stretches a schedule over the
# total steps from the restored step on. Any other difference from the checkpoint's config stops
# the run before it writes anything, unless `checkpoint.allow_changes` names the key on purpose.
RESUMABLE_KEYS = (
  'num_epochs',
  'num_steps',
  'log_every_steps',
  'checkpoint.',
  'eval.',
  'num_devices',
  'dataset.reads',
  'dataset.data_dir',
  'dataset.list_dir',
  'dataset.workers',
  'dataset.prefetch',
  'dataset.cache_dir',
  'model.requires_pretrained',  # a check before the run, not part of what it computes
)


def matches(key: str, pattern: str) -> bool:
  return key == pattern or (pattern.endswith('.') and key.startswith(pattern))


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) and v:
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def flat_config(c) -> dict:
  """The config as JSON values (tuples become lists) under dotted keys."""
  return flatten(json.loads(c.to_json_best_effort()))


ABSENT = '<absent>'


# Method keys added after runs were made without them, with what those runs did (`upgrade`).
LEGACY_DEFAULTS = {
  'dsh': {'loss.pairs': 'batch'},
  'cimon': {
    'loss.eigen_solver': 'eigh',
    'loss.assign_labels': 'kmeans',
    'loss.graph_features': 'network',
    'loss.graph_pca_dim': 0,
  },
  **{name: {'loss.features': 'pixels'} for name in ('lsh', 'pcah', 'itq', 'sh')},
}


def _defaults(method: str) -> dict:
  return {**flat_config(common.base_config()), **LEGACY_DEFAULTS.get(method, {})}


def upgrade(saved: dict) -> mlc.ConfigDict:
  """The config.json of a run (as JSON), with every key it predates filled in: the schema's
  default, or for a method's key what runs before that key did (LEGACY_DEFAULTS)."""
  flat = flatten(saved)
  for key, value in _defaults(flat.get('method', '')).items():
    if key not in flat and not any(k.startswith(key + '.') for k in flat):
      flat[key] = value
  out = {}
  for key, value in flat.items():
    *path, last = key.split('.')
    node = out
    for part in path:
      node = node.setdefault(part, {})
    node[last] = tuple(value) if isinstance(value, list) else value
  return mlc.ConfigDict(out)


def differences(old: dict, new: dict) -> dict[str, tuple]:
  """{key: (old value, new value)} for every key where two flat configs differ. A key that only one
  side has and that holds the default there (a key added to hashjax after the other run: `upgrade`)
  is no difference."""
  defaults = _defaults(new.get('method', old.get('method', '')))
  out = {}
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k, ABSENT), new.get(k, ABSENT)
    if a != b and not (ABSENT in (a, b) and k in defaults and defaults[k] in (a, b)):
      out[k] = (a, b)
  return out


def resume_conflicts(changes: dict[str, tuple], allow: str = '') -> dict[str, tuple]:
  """The `differences` a resume may not make: not in RESUMABLE_KEYS nor in `allow` ('a.b,c.')."""
  allowed = RESUMABLE_KEYS + tuple(filter(None, (k.strip() for k in allow.split(','))))
  return {k: v for k, v in changes.items() if not any(matches(k, p) for p in allowed)}


def format_differences(changes: dict[str, tuple], limit: int = 8) -> str:
  items = [f'{k}: {a!r} -> {b!r}' for k, (a, b) in changes.items()]
  return '; '.join(items[:limit]) + (f'; and {len(items) - limit} more' if len(items) > limit else '')


def checkpoint_meta(c) -> dict:
  """What a checkpoint records of the run that wrote it: the whole config (and, for checkpoints
  older than that, the three keys they recorded)."""
  return {'method': c.method, 'model': c.model.name, 'bits': c.bits, 'config': flat_config(c)}
