"""Layers with PyTorch's exact semantics, in NHWC, shared by the ImageNet backbones.

Pooling sizes follow torch (floor or ceil mode, explicit padding), adaptive average pooling uses
torch's windows, and `FrozenBatchNorm` is torch's BatchNorm2d in eval mode. Every layer records
what it is in torch (`TorchLayer`) so hashjax/weights.py can convert a torchvision state dict.
"""

from __future__ import annotations

import dataclasses
import math

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

# torchvision's initialisation: convs kaiming-normal (fan_out, ReLU gain), linears N(0, 0.01).
CONV_INIT = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')  # untruncated here
LINEAR_INIT = nnx.initializers.normal(0.01)


@dataclasses.dataclass(frozen=True)
class TorchLayer:
  """Where a layer's tensors live in a torchvision state dict.

  kind: 'conv' (OIHW kernel), 'linear' ((out, in) weight), 'bn' (weight, bias, running stats).
  flatten_chw: for the first linear after the convolutions, the (C, H, W) map it reads: torch
  flattens it channel-major, these models flatten NHWC (h, w, c), so the weight's input axis is
  permuted on conversion.
  """

  prefix: str
  path: tuple
  kind: str
  flatten_chw: tuple[int, int, int] | None = None


def scaled(n: int, width: float) -> int:
  """A channel count times the width multiplier (1.0 = the real architecture)."""
  return max(1, round(n * width))


def conv(
  cin: int, cout: int, kernel: int, *, stride: int = 1, padding: int = 0, bias: bool = True, dtype, rngs: nnx.Rngs
) -> nnx.Conv:
  """A torch-style Conv2d: symmetric explicit padding, float32 parameters, `dtype` compute."""
  return nnx.Conv(
    cin,
    cout,
    (kernel, kernel),
    strides=stride,
    padding=((padding, padding),) * 2,
    use_bias=bias,
    kernel_init=CONV_INIT,
    dtype=dtype,
    param_dtype=jnp.float32,
    rngs=rngs,
  )


def linear(
  fin: int, fout: int, *, dtype, rngs: nnx.Rngs, kernel_init=LINEAR_INIT, bias_init=nnx.initializers.zeros_init()
) -> nnx.Linear:
  return nnx.Linear(
    fin, fout, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
  )


def torch_linear(fin: int, fout: int, *, dtype, rngs: nnx.Rngs) -> nnx.Linear:
  """A Linear initialised as torch.nn.Linear's default: weight and bias U(-1/sqrt(fin), 1/sqrt(fin))."""
  bound = 1.0 / math.sqrt(fin)
  uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
  return linear(fin, fout, dtype=dtype, rngs=rngs, kernel_init=uniform, bias_init=uniform)


class FrozenBatchNorm(nnx.Module):
  """torch BatchNorm2d in eval mode: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.

  Fine-tuning from ImageNet weights keeps the converted running statistics fixed (standard in
  hashing fine-tuning, and the train step stays a pure function of the params): `weight` and
  `bias` are trainable nnx.Param; the statistics are nnx.BatchStat, which models.build keeps out
  of the trained params and passes to the forward pass as constants.
  """

  def __init__(self, channels: int, *, eps: float = 1e-5, dtype=jnp.float32):
    self.scale = nnx.Param(jnp.ones((channels,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))
    self.mean = nnx.BatchStat(jnp.zeros((channels,), jnp.float32))
    self.var = nnx.BatchStat(jnp.ones((channels,), jnp.float32))
    self.eps = eps
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    multiplier = self.scale[...] * jax.lax.rsqrt(self.var[...] + self.eps)  # float32, then cast
    offset = self.bias[...] - self.mean[...] * multiplier
    return x * multiplier.astype(self.dtype) + offset.astype(self.dtype)


def pool_output_size(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
  """torch's MaxPool2d/AvgPool2d output length (ceil mode drops a window that starts in the padding)."""
  if ceil_mode:
    out = math.ceil((size + 2 * padding - kernel) / stride) + 1
    if (out - 1) * stride >= size + padding:
      out -= 1
    return out
  return (size + 2 * padding - kernel) // stride + 1


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
  return (size + 2 * padding - kernel) // stride + 1


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> jax.Array:
  """torch.nn.MaxPool2d on NHWC x: -inf padding; ceil mode pads the far side as needed."""
  pads = [(0, 0)]
  for n in x.shape[1:3]:
    out = pool_output_size(n, kernel, stride, padding, ceil_mode)
    pads.append((padding, max(0, (out - 1) * stride + kernel - n - padding)))
  pads.append((0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, kernel, kernel, 1), (1, stride, stride, 1), pads)


def relu(x: jax.Array) -> jax.Array:
  """ReLU, closed by an optimization barrier for bfloat16 on CPU.

  Under jit, XLA:CPU (jax 0.12.0.1) fused consecutive bfloat16 convolutions (VGG16 from width 1/4
  on) into wrong results (inf) that eager mode and float32 computed correctly; the barrier keeps
  each layer's output whole (tests/test_backbones.py::test_bfloat16_jit_matches_float32).
  """
  x = nnx.relu(x)
  if x.dtype == jnp.bfloat16 and jax.default_backend() == 'cpu':
    x = jax.lax.optimization_barrier(x)
  return x


def adaptive_pool_matrix(size: int, out: int) -> np.ndarray:
  """(out, size) averaging weights of torch's AdaptiveAvgPool: window k is [floor(k*size/out), ceil((k+1)*size/out))."""
  m = np.zeros((out, size), np.float32)
  for k in range(out):
    start, end = (k * size) // out, -((-(k + 1) * size) // out)
    m[k, start:end] = 1.0 / (end - start)
  return m


def adaptive_avg_pool(x: jax.Array, out: int) -> jax.Array:
  """torch.nn.AdaptiveAvgPool2d((out, out)) on NHWC x; the identity when the map is already out x out."""
  h, w = x.shape[1:3]
  if (h, w) == (out, out):
    return x
  rows = jnp.asarray(adaptive_pool_matrix(h, out), x.dtype)
  cols = jnp.asarray(adaptive_pool_matrix(w, out), x.dtype)
  return jnp.einsum('oh,bhwc,pw->bopc', rows, x, cols)


def dropout(x: jax.Array, rate: float, rng: jax.Array | None, train: bool) -> jax.Array:
  """Inverted dropout as torch's: active only when `train`, with the key given for this layer."""
  if not train or rate == 0.0:
    return x
  if rng is None:
    raise ValueError('dropout is active (train=True) but no rng was passed to the network')
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


def flatten(x: jax.Array) -> jax.Array:
  """NHWC -> (N, H*W*C); the converter permutes the next linear layer's input axis to match."""
  return x.reshape(x.shape[0], -1)


def check_positive(sizes: dict[str, int], arch: str, image_shape) -> None:
  """Fails early when an input is too small for the architecture, naming the layer where it vanishes."""
  for layer, size in sizes.items():
    if size < 1:
      raise ValueError(
        f'{arch}: input {image_shape[0]}x{image_shape[1]} is too small; the feature map '
        f'vanishes at {layer}. Use a larger --config.image_size.'
      )


def _keys_cubic(x: np.ndarray, a: float) -> np.ndarray:
  """Keys' cubic convolution kernel with parameter `a` (ATen's cubic_convolution1/2)."""
  x = np.abs(x)
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(
  size: int, out: int, *, align_corners: bool = False, scale_factor: float | None = None, antialias: bool = False
) -> np.ndarray:
  """(out, size) float64 weights of torch's `F.interpolate(mode='bicubic')` along one axis.

  Bicubic interpolation is separable: a 2-D resize is `rows @ x @ cols.T` with one matrix per axis.
  The arguments are F.interpolate's: with `scale_factor` (whose output size, floor(size *
  scale_factor), the caller passes as `out`) torch maps output pixel i to the source coordinate
  (i + 0.5) / scale_factor - 0.5 using the given factor, not size / out; that is what DINOv2's
  `interpolate_offset` relies on. Without antialias (ATen's upsample_bicubic2d): Keys' kernel with
  a = -0.75 on the 4 nearest source pixels, indices clamped to the border. With antialias (ATen's
  _upsample_bicubic2d_aa): a = -0.5 (PIL's), the kernel stretched by the scale when downsampling,
  taps outside the input dropped and the weights renormalised to sum to 1.
  """
  if align_corners:
    scale = (size - 1) / (out - 1) if out > 1 else 0.0
  elif scale_factor:
    scale = 1.0 / scale_factor
  else:
    scale = size / out
  m = np.zeros((out, size))
  if antialias:
    if align_corners:
      raise ValueError('bicubic_matrix: antialias with align_corners is not implemented')
    support, stretch = (2.0 * scale, 1.0 / scale) if scale >= 1.0 else (2.0, 1.0)
    for i in range(out):
      center = scale * (i + 0.5)
      lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), size)  # int(): C++'s truncation
      w = _keys_cubic((np.arange(lo, hi) - center + 0.5) * stretch, -0.5)
      m[i, lo:hi] = w / w.sum() if w.sum() != 0 else w
    return m
  for i in range(out):
    src = scale * i if align_corners else scale * (i + 0.5) - 0.5
    i0 = min(math.floor(src), size - 1)
    t = min(max(src - i0, 0.0), 1.0)
    for k, w in enumerate(_keys_cubic(np.array([t + 1, t, 1 - t, 2 - t]), -0.75)):
      m[i, min(max(i0 - 1 + k, 0), size - 1)] += w
  return m
