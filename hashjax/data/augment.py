"""Image preprocessing and augmentation on the device, inside the jitted step.

Every function maps a uint8 or float batch (B, H, W, C) and a key to a float batch; random choices
use one key per example (vmapped), so results do not depend on how the batch is sharded.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def normalize(images: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  return (images.astype(jnp.float32) / 255.0 - mean) / std


def resize(images: jax.Array, size: int | None) -> jax.Array:
  if size is None or images.shape[1:3] == (size, size):
    return images
  b, _, _, c = images.shape
  return jax.image.resize(images.astype(jnp.float32), (b, size, size, c), method='bilinear')


def _per_example(fn: Callable[[jax.Array, jax.Array], jax.Array]):
  def batched(images: jax.Array, rng: jax.Array) -> jax.Array:
    keys = jax.random.split(rng, images.shape[0])
    return jax.vmap(fn)(images, keys)
  return batched


def _flip(image, key):
  return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def _crop(image, key, pad=4):
  """Zero-pad by `pad` pixels and take a random crop of the original size (the CIFAR recipe)."""
  h, w, _ = image.shape
  padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  dy, dx = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice(padded, (dy, dx, 0), image.shape)


def _crop_flip(image, key):
  k1, k2 = jax.random.split(key)
  return _flip(_crop(image, k1), k2)


AUGMENTATIONS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    'none': lambda images, rng: images,
    'flip': _per_example(_flip),
    'crop': _per_example(_crop),
    'crop_flip': _per_example(_crop_flip),
}


def get(name: str):
  if name not in AUGMENTATIONS:
    raise ValueError(f'unknown augmentation {name!r}; valid names: {", ".join(sorted(AUGMENTATIONS))}')
  return AUGMENTATIONS[name]
