"""Feature vectors of a dataset's splits from a network, written in the `features` dataset format.

    extract(out, config=config)            # any model of a config, e.g. a DINOv2 backbone with
                                           # config.model.pretrained: its feature layer
    extract(out, workdir=run)              # a trained run's network (its latest checkpoint, or `step`)

For every split of the config's dataset (its own splits, not a protocol's sets, so that every
protocol applies to the result), `out/<split>_features.npy` (N, D) and `out/<split>_labels.npy`
(the dataset's labels), readable by `--config.dataset.name=features --config.dataset.data_dir=out`
(hashjax/data/formats/features.py). The features are the network's feature layer
(`models.FEATURE_LAYERS`: e.g. a ViT's class token after the final norm, the DSH network's fc1) on
the un-augmented, preprocessed input (the config's normalisation and image size), in eval mode.

Encoding is data-parallel as evaluation's (`evaluator.encode_set`): each global batch is sharded
over every device of every process, images decoded from disk are read ahead by the streaming
workers, and process 0 writes. Output dtype float32, float16 or bfloat16 (numpy stores it as
'<V2', which the reader maps back; half the bytes of float32 either way).

Resumable: the .npy files are allocated whole at the start and filled in order; after every
`chunk_batches` batches the rows are flushed to disk and then `out/progress.json` records how many
rows of each split are written. A killed run rerun with the same arguments continues from there
(rows past the recorded count are recomputed); with other settings (another config, checkpoint or
dtype) it stops naming the difference, never mixing two extractions in one folder. progress.json
stays as the record of a finished extraction ('complete': true; what was extracted, from what);
the features reader refuses a folder whose extraction has not completed.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
import time

import jax
from jax.experimental import multihost_utils
import ml_dtypes
import numpy as np

from hashjax import models
from hashjax.config import resume as config_resume
from hashjax.data import pipeline
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.data import streaming
from hashjax.data.formats import features as features_format
from hashjax.eval import workdir_eval
from hashjax.train import trainer
from hashjax.workdir import checkpoint

DTYPES = {'float32': np.dtype(np.float32), 'float16': np.dtype(np.float16), 'bfloat16': np.dtype(ml_dtypes.bfloat16)}
# Keys that do not change the features (how fast, how often, where the data is read from).
_IGNORED = (*config_resume.RESUMABLE_KEYS, 'eval.batch_size')


def _write_json(path: str, value: dict) -> None:
  """Atomically (a temporary file renamed), so a kill never leaves a half-written progress file."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _fingerprint(config, workdir: str | None, step: int | None, dtype: str) -> dict:
  flat = config_resume.flat_config(config)
  return {
    'source': os.path.abspath(workdir) if workdir else 'config',
    'step': step,
    'dtype': dtype,
    'config': {k: v for k, v in flat.items() if not any(config_resume.matches(k, p) for p in _IGNORED)},
  }


def _check_resumable(out: str, progress: dict, fingerprint: dict) -> None:
  saved = progress.get('fingerprint', {})
  changes = {k: (saved.get(k), fingerprint[k]) for k in ('source', 'step', 'dtype') if saved.get(k) != fingerprint[k]}
  changes.update(config_resume.differences(saved.get('config', {}), fingerprint['config']))
  if changes:
    raise ValueError(
      f'{out} holds an extraction of other settings ({config_resume.format_differences(changes)}): rerun it with '
      f'those, or write to another --out'
    )


def extract(
  out: str,
  *,
  config=None,
  workdir: str | None = None,
  step: int | None = None,
  dtype: str = 'float32',
  chunk_batches: int = 16,
  on_chunk: Callable[[str, int, int], None] | None = None,
) -> dict:
  """Writes the features of every split of the dataset into `out` (module doc); returns progress.json.

  Args:
    out: the output folder (created; an unfinished extraction of the same settings there resumes).
    config: the config whose model and dataset to use (its `model.pretrained` weights, if any);
      exactly one of `config` and `workdir`.
    workdir: a training run: its config.json and checkpoint `step` (None: the latest).
    dtype: float32, float16 or bfloat16 (how the features are stored).
    chunk_batches: global batches (`eval.batch_size` images each) between progress records.
    on_chunk: called as on_chunk(split, rows written, rows of the split) after each record (the
      command's progress lines; tests interrupt it).

  Raises:
    ValueError: a bad argument, a model without a feature layer, or `out` holding another
      extraction or foreign feature files.
  """
  if (config is None) == (workdir is None):
    raise ValueError('give exactly one of a config (--config) and a trained run (--workdir)')
  if dtype not in DTYPES:
    raise ValueError(f'unknown --dtype {dtype!r}; valid: {", ".join(DTYPES)}')
  if chunk_batches < 1:
    raise ValueError(f'chunk_batches must be >= 1, got {chunk_batches}')
  if workdir is not None:
    config = workdir_eval.load_config(workdir)
    step = checkpoint.latest_step(workdir) if step is None else step  # what resuming compares
  if config.model.name not in models.FEATURE_LAYERS:
    raise ValueError(
      f'model {config.model.name} has no feature layer; models with one: {", ".join(sorted(models.FEATURE_LAYERS))}'
    )
  fingerprint = _fingerprint(config, workdir, step, dtype)
  progress_path = os.path.join(out, features_format.PROGRESS)
  progress = None
  if os.path.isfile(progress_path):  # checked before anything is built: a finished or foreign folder is quick
    with open(progress_path) as f:
      progress = json.load(f)
    _check_resumable(out, progress, fingerprint)
    if progress.get('complete'):
      return progress
  elif os.path.isdir(out) and any(n.endswith(('.npy', '.npz')) for n in os.listdir(out)):
    foreign = sorted(n for n in os.listdir(out) if n.endswith(('.npy', '.npz')))
    raise ValueError(
      f'{out} already holds {", ".join(foreign[:3])} not written by an extraction (no {features_format.PROGRESS}): '
      f'write to another --out'
    )

  reads = config.dataset.reads
  lazy = reads == 'per_process' or (reads == 'auto' and jax.process_count() > 1)
  source = sources.load(
    config.dataset.name, config.dataset.data_dir or None, lazy, **sources.config_options(config.dataset)
  )
  unknown = [s for s in source.splits if s not in features_format.SPLITS]
  missing = [s for s in features_format.REQUIRED if s not in source.splits]
  if unknown or missing:
    raise ValueError(
      f'{config.dataset.name} has the splits {sorted(source.splits)}; the features format needs '
      f'{" and ".join(features_format.REQUIRED)} (and may have {", ".join(features_format.SPLITS[2:])})'
    )
  protocol = protocols.build(
    source, config.dataset.protocol, seed=config.dataset.split_seed, **dict(config.dataset.protocol_args)
  )
  run = trainer.build(config, protocol, for_training=False)  # the normalisation of the training set
  params = run.state.params
  if workdir is not None:
    params, step = checkpoint.load_params(workdir, params, step)
  forward, preprocess = run.ctx.forward, run.ctx.preprocess
  featurize = jax.jit(
    lambda p, x: forward(p, preprocess(x, train=False), train=False, features_only=True),
    in_shardings=(run.ctx.params_sharding, run.data_sharding),
    out_shardings=run.data_sharding,
  )
  batch_size = config.eval.batch_size
  first = next(iter(source.splits.values())).images
  width = jax.eval_shape(featurize, params, np.zeros((batch_size, *first.shape[1:]), first.dtype)).shape[1]

  writer = jax.process_index() == 0
  if progress is None:
    progress = {
      'complete': False,
      'fingerprint': fingerprint,
      'model': config.model.name,
      'feature_layer': models.FEATURE_LAYERS[config.model.name],
      'weights': f'{workdir} step {step}' if workdir else models.describe_weights(config.model),
      'dataset': f'{config.dataset.name} [{source.origin}]',
      'width': int(width),
      'dtype': dtype,
      'rows': {name: [0, len(split.labels)] for name, split in source.splits.items()},
    }
    if writer:
      os.makedirs(out, exist_ok=True)
      for name, split in source.splits.items():
        np.save(os.path.join(out, f'{name}_labels.npy'), split.labels)
        np.lib.format.open_memmap(
          os.path.join(out, f'{name}_features.npy'), mode='w+', dtype=DTYPES[dtype], shape=(len(split.labels), width)
        ).flush()
      _write_json(progress_path, progress)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('hashjax_extract_features_start')

  t_start = time.time()
  for name, split in source.splits.items():
    done, total = progress['rows'][name]
    if done >= total:
      continue
    target = features_format.memmap_npy(os.path.join(out, f'{name}_features.npy'), 'r+') if writer else None
    workers = streaming.worker_count(split.images, config.dataset.workers)
    indices = np.arange(done, total)
    row, batches = done, 0
    for local, valid in pipeline.eval_batches(split.images, indices, batch_size, workers):
      f = featurize(params, jax.make_array_from_process_local_data(run.data_sharding, local))
      f = np.asarray(multihost_utils.process_allgather(f, tiled=True))[:valid]
      if writer:
        target[row : row + valid] = f.astype(DTYPES[dtype])
      row, batches = row + valid, batches + 1
      if batches % chunk_batches == 0 or row == total:
        if writer:
          target.flush()  # the rows first, then the record that they are there
          progress['rows'][name] = [row, total]
          _write_json(progress_path, progress)
        if on_chunk is not None:
          on_chunk(name, row, total)
    del target
  progress.update(complete=True, seconds=round(time.time() - t_start, 1))
  if writer:
    _write_json(progress_path, progress)
  return progress
