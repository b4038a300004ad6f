"""Preprocessing and views of feature vectors (the `features` dataset) on the device, in the jitted step.

Feature vectors are no pixels: they are not divided by 255, resized or cropped. `normalize` is
`config.normalize`: 'dataset' standardises each dimension with the training rows' mean and std
(trainer.normalization), 'none' keeps the stored values (as float32).

`config.augment` for feature vectors ('none' or 'feature_views'; the image augmentations of
augment.py do not apply) makes the views unsupervised methods compare (CIMON's two views), with
the strengths of `config.feature_views`, each 0 = off, applied in this order to the normalised
vectors:
  * mix: each vector moves towards another vector of the global batch (a random permutation),
    x <- (1 - lam) x + lam x[perm], lam ~ U(0, mix) per example (mixup without labels);
  * dropout: each dimension is zeroed with probability `dropout`, the rest scaled by 1 / (1 - p);
  * noise: x <- x + noise * N(0, 1) (in standardised units with normalize='dataset').
Random choices use one key per example (vmapped), the permutation one key for the batch, so the
views do not depend on how the batch is sharded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AUGMENTATIONS = ('none', 'feature_views')
NORMALIZATIONS = ('dataset', 'none')


def normalize(features: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  return (features.astype(jnp.float32) - mean) / std


def views(features: jax.Array, rng: jax.Array, *, dropout: float, noise: float, mix: float) -> jax.Array:
  """One random view of each row of `features` (B, D) (module doc)."""
  k_perm, k_rows = jax.random.split(rng)
  x = features
  if mix > 0:
    lam = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, 0), (), maxval=mix))(
      jax.random.split(k_rows, x.shape[0])
    )
    x = (1.0 - lam[:, None]) * x + lam[:, None] * x[jax.random.permutation(k_perm, x.shape[0])]

  def one(row, key):
    k_drop, k_noise = jax.random.split(jax.random.fold_in(key, 1))
    if dropout > 0:
      row = jnp.where(jax.random.bernoulli(k_drop, 1.0 - dropout, row.shape), row / (1.0 - dropout), 0.0)
    if noise > 0:
      row = row + noise * jax.random.normal(k_noise, row.shape, row.dtype)
    return row

  return jax.vmap(one)(x, jax.random.split(k_rows, x.shape[0]))


def check(augment: str, views_config) -> None:
  """Fails on an augmentation that is not for feature vectors, or on strengths out of range."""
  if augment not in AUGMENTATIONS:
    raise ValueError(
      f'augment={augment!r} is an image augmentation; feature vectors (dataset.name=features) take '
      f'{" or ".join(AUGMENTATIONS)} (hashjax/data/feature_views.py)'
    )
  if not 0 <= views_config.dropout < 1 or views_config.noise < 0 or not 0 <= views_config.mix <= 1:
    raise ValueError(
      f'feature_views: dropout must be in [0, 1), noise >= 0 and mix in [0, 1], got dropout='
      f'{views_config.dropout}, noise={views_config.noise}, mix={views_config.mix}'
    )
  if augment == 'feature_views' and not (views_config.dropout or views_config.noise or views_config.mix):
    raise ValueError(
      'augment=feature_views with feature_views.dropout, noise and mix all 0 makes identical views: set one '
      "of them, or augment='none'"
    )
