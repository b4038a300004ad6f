"""The DSH network (Liu et al., CVPR 2016; official Caffe `CIFAR-10/train_test.prototxt`).

conv5x5/32 (pad 2) - maxpool 3/2 - ReLU - LRN; conv5x5/32 - ReLU - avgpool 3/2 - LRN;
conv5x5/64 - ReLU - avgpool 3/2; fc 500 - ReLU; fc `bits`. Xavier initialisation as in Caffe.
Pooling uses SAME padding, which matches Caffe's ceil-mode output sizes (32 -> 16 -> 8 -> 4).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def lrn_within_channel(x: jax.Array, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> jax.Array:
  """Caffe's WITHIN_CHANNEL local response normalisation: x / (1 + alpha/size^2 * sum_window x^2)^beta."""
  sq = jax.lax.reduce_window(jnp.square(x), 0.0, jax.lax.add, (1, size, size, 1), (1, 1, 1, 1), 'SAME')
  return x / jnp.power(1.0 + (alpha / size**2) * sq, beta)


class DSHNet(nnx.Module):
  """Small CNN from DSH; `width` scales the channel counts (1.0 = the paper's 32/32/64, fc 500)."""

  def __init__(self, bits: int, image_shape: tuple[int, int, int], *, width: float = 1.0,
               dtype=jnp.float32, rngs: nnx.Rngs):
    h, w, c = image_shape
    c1, c2, c3, fc = (max(1, round(n * width)) for n in (32, 32, 64, 500))
    # Caffe's "xavier" filler scales by fan-in only (variance 1/fan_in), which keeps outputs O(1).
    init = nnx.initializers.variance_scaling(1.0, 'fan_in', 'uniform')
    conv = lambda i, o: nnx.Conv(i, o, (5, 5), padding=2, kernel_init=init, dtype=dtype, rngs=rngs)
    self.conv1, self.conv2, self.conv3 = conv(c, c1), conv(c1, c2), conv(c2, c3)
    for _ in range(3):  # three stride-2 SAME pools
      h, w = math.ceil(h / 2), math.ceil(w / 2)
    self.fc1 = nnx.Linear(h * w * c3, fc, kernel_init=init, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(fc, bits, kernel_init=init, dtype=dtype, rngs=rngs)
    self.dtype = dtype

  def features(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    x = lrn_within_channel(nnx.relu(nnx.max_pool(self.conv1(x), (3, 3), (2, 2), 'SAME')))
    x = lrn_within_channel(nnx.avg_pool(nnx.relu(self.conv2(x)), (3, 3), (2, 2), 'SAME'))
    x = nnx.avg_pool(nnx.relu(self.conv3(x)), (3, 3), (2, 2), 'SAME')
    return nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout or batch norm in this network
    return self.fc2(self.features(x)).astype(jnp.float32)
