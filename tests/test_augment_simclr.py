"""The SimCLR augmentation: shapes, determinism given the key, and crop/flip/blur sanity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hashjax.data import augment


def images(channels, n=6, size=16, seed=0):
  return jax.random.normal(jax.random.key(seed), (n, size, size, channels))


@pytest.mark.parametrize('channels', [1, 3])
def test_shapes_determinism_and_keys(channels):
  x = images(channels)
  simclr = jax.jit(augment.get('simclr'))
  a = simclr(x, jax.random.key(0))
  assert a.shape == x.shape and a.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(a)))
  np.testing.assert_array_equal(np.asarray(a), np.asarray(simclr(x, jax.random.key(0))))
  b = simclr(x, jax.random.key(1))
  assert not np.allclose(np.asarray(a), np.asarray(b))
  # One key per example: examples in the same batch get different augmentations.
  same = jnp.broadcast_to(x[:1], x.shape)
  out = np.asarray(simclr(same, jax.random.key(2)))
  assert not np.allclose(out[0], out[1])


def test_full_crop_is_identity_and_crop_zooms():
  x = images(1, n=1)[0]
  # scale (1, 1) with ratio (1, 1) is the whole image: resampling at the same grid gives it back.
  whole = augment._random_resized_crop(x, jax.random.key(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
  np.testing.assert_allclose(np.asarray(whole), np.asarray(x), atol=1e-5)
  # A constant image stays constant under any crop; a ramp keeps its direction but gets steeper.
  const = jnp.full((16, 16, 1), 0.7)
  np.testing.assert_allclose(np.asarray(augment._random_resized_crop(const, jax.random.key(1))), 0.7, atol=1e-5)
  ramp = jnp.broadcast_to(jnp.arange(16.0)[None, :, None], (16, 16, 1))
  zoomed = np.asarray(augment._random_resized_crop(ramp, jax.random.key(3), scale=(0.25, 0.25), ratio=(1.0, 1.0)))
  step = np.diff(zoomed[8, 4:12, 0])
  np.testing.assert_allclose(step, 0.5, atol=1e-4)  # a crop of half the width doubles the size
  assert zoomed.min() >= 0 - 1e-5 and zoomed.max() <= 15 + 1e-5


def test_flip_and_blur():
  x = images(3, n=1)[0]
  flips = {
    bool(np.allclose(np.asarray(augment._flip(x, k)), np.asarray(x[:, ::-1])))
    for k in jax.random.split(jax.random.key(0), 16)
  }
  assert flips == {True, False}
  blurred = np.asarray(augment._gaussian_blur(x, jax.random.key(0), sigma_range=(2.0, 2.0)))
  assert blurred.shape == x.shape and blurred.std() < np.asarray(x).std()
  const = jnp.full((16, 16, 3), -1.5)
  np.testing.assert_allclose(np.asarray(augment._gaussian_blur(const, jax.random.key(1))), -1.5, atol=1e-5)


def test_grey_image_colour_jitter_keeps_grey_and_one_channel_works():
  grey = jnp.broadcast_to(images(1, n=1)[0], (16, 16, 3))
  out = np.asarray(augment._colour_jitter(grey, jax.random.key(0)))
  np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-4)  # hue and saturation leave grey alone
  np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-4)
  one = np.asarray(augment._colour_jitter(images(1, n=1)[0], jax.random.key(0)))
  assert one.shape == (16, 16, 1) and np.all(np.isfinite(one))
