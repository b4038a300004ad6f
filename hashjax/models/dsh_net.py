"""The DSH network (Liu et al., CVPR 2016; official Caffe `CIFAR-10/train_test.prototxt`).

conv5x5/32 (pad 2) - maxpool 3/2 - ReLU - LRN; conv5x5/32 - ReLU - avgpool 3/2 - LRN;
conv5x5/64 - ReLU - avgpool 3/2; fc 500 - ReLU; fc `bits`. Xavier initialisation as in Caffe.
Pooling uses SAME padding, which matches Caffe's ceil-mode output sizes (32 -> 16 -> 8 -> 4).

Written for speed on CPU, computing the same function as the plain Flax layers
(`nnx.max_pool` / `nnx.avg_pool(..., 'SAME')`, `lax.reduce_window` LRN, `nnx.Conv`; the reference
is kept in tests/test_dsh_net.py, which checks outputs and gradients against it):
* 3x3/2 pools are separable (rows, then columns), each a max/sum of 3 shifted copies taken from
  an even/odd reshape instead of `reduce_window`, whose backward on XLA:CPU (select_and_scatter,
  a strided pad) is slow; the LRN window sum is likewise two separable 3-tap sums.
* LRN's `d ** -0.75` is `rsqrt(d) * sqrt(rsqrt(d))`, a multiply instead of a `pow` and a divide.
* A convolution of a 1-3 channel input (conv1) is an im2col matmul: its kernel gradient is then
  one (25*C, N) x (N, 32) matmul instead of XLA:CPU's slow backward-filter convolution.
Measured 1.3-1.56x images/s (f32), 1.1-1.4x (bf16) for the whole train step on CPU at batch 200
(BENCHMARKS.md, "DSH train-step throughput"; benchmarks/notes/dsh_throughput.md).
"""

from __future__ import annotations

import math

from flax import nnx
import jax
import jax.numpy as jnp

_IM2COL_MAX_CHANNELS = 3  # im2col only for thin inputs; for 32 channels lax.conv is faster


def _axis_slice(x: jax.Array, axis: int, start: int, stop: int) -> jax.Array:
  return jax.lax.slice_in_dim(x, start, stop, axis=axis)


def _pad_axis(x: jax.Array, axis: int, lo: int, hi: int, value) -> jax.Array:
  pads = [(0, 0)] * x.ndim
  pads[axis] = (lo, hi)
  return jnp.pad(x, pads, constant_values=value)


def _window3_stride2(x: jax.Array, axis: int, op, pad_value) -> jax.Array:
  """op over windows of 3 with stride 2 and SAME padding (by `pad_value`) along `axis`."""
  n = x.shape[axis]
  out = -(-n // 2)
  lo = (2 * out + 1 - n) // 2  # SAME: total padding (out-1)*2 + 3 - n, the smaller half in front
  hi = 2 * out + 1 - n - lo + 1  # one more so the length 2*(out+1) splits into (even, odd) pairs
  pairs = _pad_axis(x, axis, lo, hi, pad_value)
  pairs = pairs.reshape(x.shape[:axis] + (out + 1, 2) + x.shape[axis + 1 :])
  even = jax.lax.index_in_dim(pairs, 0, axis + 1, keepdims=False)  # padded[2i]
  odd = jax.lax.index_in_dim(pairs, 1, axis + 1, keepdims=False)  # padded[2i + 1]
  return op(op(_axis_slice(even, axis, 0, out), _axis_slice(odd, axis, 0, out)), _axis_slice(even, axis, 1, out + 1))


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """== nnx.max_pool(x, (3, 3), (2, 2), 'SAME') for NHWC x."""
  x = _window3_stride2(x, 1, jnp.maximum, -jnp.inf)
  return _window3_stride2(x, 2, jnp.maximum, -jnp.inf)


def avg_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """== nnx.avg_pool(x, (3, 3), (2, 2), 'SAME') (count_include_pad: always / 9) for NHWC x."""
  x = _window3_stride2(x, 1, jnp.add, 0)
  return _window3_stride2(x, 2, jnp.add, 0) * jnp.asarray(1 / 9, x.dtype)


def _box_sum_same(x: jax.Array, axis: int, size: int) -> jax.Array:
  """Sum over windows of `size` with stride 1 and SAME zero padding along `axis`."""
  n = x.shape[axis]
  lo = (size - 1) // 2
  padded = _pad_axis(x, axis, lo, size - 1 - lo, 0)
  total = _axis_slice(padded, axis, 0, n)
  for k in range(1, size):
    total = total + _axis_slice(padded, axis, k, k + n)
  return total


def lrn_within_channel(x: jax.Array, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> jax.Array:
  """Caffe's WITHIN_CHANNEL local response normalisation: x / (1 + alpha/size^2 * sum_window x^2)^beta."""
  sq = _box_sum_same(_box_sum_same(jnp.square(x), 1, size), 2, size)
  d = 1.0 + (alpha / size**2) * sq
  if beta == 0.75:
    r = jax.lax.rsqrt(d)
    return x * (r * jnp.sqrt(r))  # d^-1/2 * d^-1/4
  return x / jnp.power(d, beta)


def conv_same(conv: nnx.Conv, x: jax.Array) -> jax.Array:
  """== conv(x) for a stride-1 nnx.Conv with odd kernel and 'same-size' padding."""
  if x.shape[-1] > _IM2COL_MAX_CHANNELS:
    return conv(x)
  kh, kw = conv.kernel_size
  kernel, bias = conv.kernel[...], conv.bias[...]
  x, kernel, bias = conv.promote_dtype((x, kernel, bias), dtype=conv.dtype)
  b, h, w, c = x.shape
  padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  # (dy, dx, c) order, as the HWIO kernel's reshape.
  cols = jnp.concatenate([padded[:, i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], -1)
  y = jnp.dot(cols.reshape(b * h * w, kh * kw * c), kernel.reshape(kh * kw * c, -1), precision=conv.precision)
  return y.reshape(b, h, w, -1) + bias


class DSHNet(nnx.Module):
  """Small CNN from DSH; `width` scales the channel counts (1.0 = the paper's 32/32/64, fc 500)."""

  def __init__(
    self, bits: int, image_shape: tuple[int, int, int], *, width: float = 1.0, dtype=jnp.float32, rngs: nnx.Rngs
  ):
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
    x = lrn_within_channel(nnx.relu(max_pool_3x3_s2(conv_same(self.conv1, x))))
    x = lrn_within_channel(avg_pool_3x3_s2(nnx.relu(conv_same(self.conv2, x))))
    x = avg_pool_3x3_s2(nnx.relu(conv_same(self.conv3, x)))
    return nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout or batch norm in this network
    return self.fc2(self.features(x)).astype(jnp.float32)
