"""Checks of a whole config before anything runs: every name, number and setting, with the valid choices."""

from __future__ import annotations

import math

from hashjax import baselines
from hashjax import methods
from hashjax import models
from hashjax.config import common
from hashjax.config import resume
from hashjax.data import augment
from hashjax.data import feature_views
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.train import optim


def _validate_features(c) -> None:
  """The settings that differ for feature vectors (dataset.name=features): the model, no image
  preprocessing, feature views instead of image augmentations."""
  if c.method not in baselines.BASELINES and c.model.name not in models.FEATURE_MODELS:
    raise ValueError(
      f'model {c.model.name} takes images; the features dataset holds (N, D) vectors: use '
      f"--config.model.name={' or '.join(models.FEATURE_MODELS)} (the configs' :features variants set it)"
    )
  if c.image_size:
    raise ValueError(f'image_size={c.image_size} resizes images; feature vectors take image_size=0')
  if c.normalize not in feature_views.NORMALIZATIONS:
    raise ValueError(
      f'normalize={c.normalize!r} is for images; feature vectors take {" or ".join(feature_views.NORMALIZATIONS)}'
    )
  feature_views.check(c.augment, c.feature_views)


def validate(c) -> None:
  """Fails early, naming the bad value and the valid choices."""
  if c.method not in methods.METHODS and c.method not in baselines.BASELINES:
    raise ValueError(
      f'unknown method {c.method!r}; valid names: {", ".join(sorted([*methods.METHODS, *baselines.BASELINES]))}'
    )
  if c.model.name not in models.MODELS:
    raise ValueError(f'unknown model {c.model.name!r}; valid names: {", ".join(sorted(models.MODELS))}')
  if c.method not in baselines.BASELINES:  # the shallow baselines have no network
    models.check_pretrained(c.model)
  if c.dataset.name not in sources.SOURCES:
    raise ValueError(f'unknown dataset {c.dataset.name!r}; valid names: {", ".join(sorted(sources.SOURCES))}')
  if c.dataset.protocol not in protocols.RECIPES:
    raise ValueError(f'unknown protocol {c.dataset.protocol!r}; valid names: {", ".join(sorted(protocols.RECIPES))}')
  if c.dataset.reads not in common.DATASET_READS:
    raise ValueError(f'unknown dataset.reads {c.dataset.reads!r}; valid names: {", ".join(common.DATASET_READS)}')
  if c.dataset.name in sources.FEATURE_SOURCES:
    _validate_features(c)
  else:
    augment.get(c.augment)
  if c.optimizer.name not in optim.OPTIMIZERS:
    raise ValueError(f'unknown optimizer {c.optimizer.name!r}; valid names: {", ".join(optim.OPTIMIZERS)}')
  if not isinstance(c.bits, int) or c.bits <= 0:
    raise ValueError(f'bits must be a positive integer (the code length), got {c.bits!r}')
  for key in ('batch_size', 'log_every_steps'):
    if c[key] <= 0:
      raise ValueError(f'{key} must be positive, got {c[key]}')
  if c.num_steps <= 0 and c.num_epochs <= 0:
    raise ValueError('set num_epochs or num_steps to a positive number')
  if c.dataset.workers < -1 or c.dataset.prefetch < 1:
    raise ValueError(
      f'dataset.workers must be >= -1 (-1: one per core) and dataset.prefetch >= 1, got {c.dataset.workers} and '
      f'{c.dataset.prefetch}'
    )
  if c.eval.ties not in ('stable', 'numpy', 'expected'):
    raise ValueError(f'eval.ties must be stable, numpy or expected, got {c.eval.ties!r}')
  flat = resume.flat_config(c)
  for key, value in flat.items():
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
      raise ValueError(f'{key} must be a finite number, got {value!r}')
  if not c.optimizer.lr > 0:
    raise ValueError(
      f'optimizer.lr must be positive, got {c.optimizer.lr!r} (to freeze parameters: '
      f"optimizer.lr_multipliers='model/=0')"
    )
  if c.checkpoint.every_steps <= 0 or c.checkpoint.keep <= 0 or c.checkpoint.restore_step < 0:
    raise ValueError(
      'checkpoint.every_steps and checkpoint.keep must be positive and checkpoint.restore_step >= 0 '
      f'(0: the latest), got {c.checkpoint.every_steps}, {c.checkpoint.keep}, '
      f'{c.checkpoint.restore_step}'
    )
  for key in filter(None, (k.strip() for k in c.checkpoint.allow_changes.split(','))):
    if not any(resume.matches(k, key) for k in flat):
      raise ValueError(
        f"checkpoint.allow_changes names {key!r}, which is not a config key (a group ends with '.', e.g. 'loss.')"
      )
