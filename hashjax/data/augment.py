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


# DLBHC (the seed's recipe): resize to 256, random 227 crop, mirror. Here the network's input size S
# (config.image_size) plays 227: the batch is upsampled to round(S * 256 / 227), then cropped back to S.
RESIZE_CROP_RATIO = 256 / 227


def _resize_crop_flip(images: jax.Array, rng: jax.Array) -> jax.Array:
  b, h, w, c = images.shape
  big = (round(h * RESIZE_CROP_RATIO), round(w * RESIZE_CROP_RATIO))
  images = jax.image.resize(images.astype(jnp.float32), (b,) + big + (c,), method='bilinear')  # once per batch

  def one(image, key):
    k_crop, k_flip = jax.random.split(key)
    dy = jax.random.randint(k_crop, (), 0, big[0] - h + 1)
    dx = jax.random.randint(jax.random.fold_in(k_crop, 1), (), 0, big[1] - w + 1)
    return _flip(jax.lax.dynamic_slice(image, (dy, dx, 0), (h, w, c)), k_flip)

  return jax.vmap(one)(images, jax.random.split(rng, b))


# ---------------------------------------------------------------- SimCLR (CIMON's train_aug_transform)
# These run AFTER normalisation (train_step.make_preprocess normalises, resizes, then augments), so
# they work on normalised floats, where the pixel range and black level are unknown. The colour
# ops therefore apply torchvision's formulas to the normalised values: brightness scales around
# the dataset mean (0) instead of black, contrast and saturation blend with the image's mean grey
# and its grey image, hue rotates the chroma in YIQ space, and nothing is clipped to [0, 1].
# Those four run in a fixed order (torchvision draws a random order).
_LUMA = (0.299, 0.587, 0.114)


def _grey(image):
  """(H, W, 1) luma of an RGB image (the image itself when it has one channel)."""
  if image.shape[-1] != 3:
    return jnp.mean(image, axis=-1, keepdims=True)
  return jnp.tensordot(image, jnp.asarray(_LUMA, image.dtype), axes=1)[..., None]


def _random_resized_crop(image, key, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
  """A crop of area fraction ~U(scale) and aspect ratio log-uniform in `ratio`, resized bilinearly
  to the input size. Sizes are continuous and clipped to the image (torchvision rounds and retries
  up to 10 times before a centre crop)."""
  h, w, _ = image.shape
  k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
  area = h * w * jax.random.uniform(k_area, (), minval=scale[0], maxval=scale[1])
  aspect = jnp.exp(jax.random.uniform(k_ratio, (), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1])))
  crop_w = jnp.clip(jnp.sqrt(area * aspect), 1.0, w)
  crop_h = jnp.clip(jnp.sqrt(area / aspect), 1.0, h)
  y0 = jax.random.uniform(k_y, ()) * (h - crop_h)
  x0 = jax.random.uniform(k_x, ()) * (w - crop_w)
  zoom = jnp.stack([h / crop_h, w / crop_w])
  return jax.image.scale_and_translate(
    image, image.shape, (0, 1), zoom, -jnp.stack([y0, x0]) * zoom, method='linear', antialias=True
  )


def _rgb_to_yiq(image):
  m = jnp.asarray([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], image.dtype)
  return image @ m.T, m


def _hue_shift(image, shift):
  """Rotates the chroma (I, Q) by 2*pi*shift: a linear stand-in for torchvision's HSV hue shift."""
  yiq, m = _rgb_to_yiq(image)
  angle = 2.0 * jnp.pi * shift
  c, s = jnp.cos(angle), jnp.sin(angle)
  i, q = yiq[..., 1], yiq[..., 2]
  rotated = jnp.stack([yiq[..., 0], c * i - s * q, s * i + c * q], axis=-1)
  return rotated @ jnp.linalg.inv(m).T


def _colour_jitter(image, key, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
  """torchvision ColorJitter(0.4, 0.4, 0.4, 0.1); a 1-channel image gets brightness and contrast only."""
  kb, kc, ks, kh = jax.random.split(key, 4)
  factor = lambda k, amount: jax.random.uniform(k, (), minval=1 - amount, maxval=1 + amount)
  image = image * factor(kb, brightness)
  c = factor(kc, contrast)
  image = c * image + (1 - c) * jnp.mean(_grey(image))
  if image.shape[-1] == 3:
    s = factor(ks, saturation)
    image = s * image + (1 - s) * _grey(image)
    image = _hue_shift(image, jax.random.uniform(kh, (), minval=-hue, maxval=hue))
  return image


def _blur_kernel_size(size: int) -> int:
  """About 10% of the image size, odd, at least 3 (SimCLR's kernel size)."""
  k = max(3, int(round(0.1 * size)))
  return k if k % 2 else k + 1


def _gaussian_blur(image, key, sigma_range=(0.1, 2.0)):
  """Separable Gaussian blur with sigma ~ U(sigma_range) and reflect padding."""
  sigma = jax.random.uniform(key, (), minval=sigma_range[0], maxval=sigma_range[1])
  h, w, _ = image.shape

  def blur_axis(x, axis, size):
    k = _blur_kernel_size(size)
    taps = jnp.arange(k, dtype=jnp.float32) - k // 2
    weights = jnp.exp(-0.5 * jnp.square(taps / sigma))
    weights = weights / jnp.sum(weights)
    pads = [(0, 0)] * 3
    pads[axis] = (k // 2, k // 2)
    padded = jnp.pad(x, pads, mode='reflect')
    return sum(weights[i] * jax.lax.slice_in_dim(padded, i, i + size, axis=axis) for i in range(k))

  return blur_axis(blur_axis(image, 0, h), 1, w)


def _simclr(image, key):
  """RandomResizedCrop(scale 0.2-1), ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2,
  GaussianBlur(sigma 0.1-2) p=0.5, horizontal flip p=0.5: the official CIFAR-10 `train_aug_transform`."""
  k_crop, k_jitter, k_apply_jitter, k_grey, k_blur, k_apply_blur, k_flip = jax.random.split(key, 7)
  image = _random_resized_crop(image, k_crop)
  image = jnp.where(jax.random.bernoulli(k_apply_jitter, 0.8), _colour_jitter(image, k_jitter), image)
  if image.shape[-1] == 3:
    grey = jnp.broadcast_to(_grey(image), image.shape)
    image = jnp.where(jax.random.bernoulli(k_grey, 0.2), grey, image)
  image = jnp.where(jax.random.bernoulli(k_apply_blur, 0.5), _gaussian_blur(image, k_blur), image)
  return _flip(image, k_flip)


AUGMENTATIONS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
  'none': lambda images, rng: images,
  'flip': _per_example(_flip),
  'crop': _per_example(_crop),
  'crop_flip': _per_example(_crop_flip),
  'resize_crop_flip': _resize_crop_flip,
  'simclr': _per_example(_simclr),
}


def get(name: str):
  if name not in AUGMENTATIONS:
    raise ValueError(f'unknown augmentation {name!r}; valid names: {", ".join(sorted(AUGMENTATIONS))}')
  return AUGMENTATIONS[name]
