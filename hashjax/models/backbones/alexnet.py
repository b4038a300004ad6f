"""AlexNet (torchvision's single-tower variant) and VGG-F (Chatfield et al., BMVC 2014).

AlexNet, torchvision layout: `features.{0,3,6,8,10}` convs (64, 192, 384, 256, 256 channels),
3x3/2 max pools, adaptive average pooling to 6x6, then `classifier.1` fc6 and `classifier.4` fc7,
each preceded by dropout (torchvision: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear).
`features(x)` is fc7 before its ReLU (CIMON's `alexnet` branch, `classifier[:-2]`).

VGG-F ("CNN-F" in "Return of the Devil in the Details", arXiv 1405.3531, Table 1; the MatConvNet
model `imagenet-vgg-f.mat` used by DPSH and CIMON's paper): conv1 64x11x11 stride 4, ReLU, LRN,
3x3/2 max pool; conv2 256x5x5 pad 2, ReLU, LRN, pool; conv3-5 256x3x3 pad 1 (ReLU), pool;
fc6 4096, ReLU, dropout; fc7 4096. MatConvNet pads its pools by one on the far side
([0 1 0 1]), which is torch's ceil_mode for these sizes (224 -> 54 -> 27 -> 13 -> 6).
LRN is MatConvNet's `[N kappa alpha beta] = [5 2 1e-4 0.75]` (AlexNet's), i.e. torch's
LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2): check the `.mat`'s norm parameters before
relying on converted weights. There is no torchvision VGG-F, so hashjax defines its torch-style
layout (the one a `.mat` -> safetensors export must use): a torch Sequential
`features` = [conv1, ReLU, LRN, MaxPool, conv2, ReLU, LRN, MaxPool, conv3, ReLU, conv4, ReLU,
conv5, ReLU, MaxPool] -> convs `features.{0,4,8,10,12}`; `classifier` = [fc6, ReLU, Dropout,
fc7, ...] -> `classifier.0`, `classifier.3` (VGG's classifier order). Adaptive average pooling to
6x6 (the identity at 224) lets it take other sizes.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models.backbones import layers

FEATURE_LAYERS = ('fc7_pre_relu', 'fc7')
POOLED_SIZE = 6
DROPOUT = 0.5
VGG_F_LRN = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)  # torch LocalResponseNorm's parameters


def local_response_norm(x: jax.Array, size: int, alpha: float, beta: float, k: float) -> jax.Array:
  """torch.nn.LocalResponseNorm on NHWC x: x / (k + alpha/size * sum of x^2 over `size` channels)^beta."""
  sq = jnp.square(x.astype(jnp.float32))
  padded = jnp.pad(sq, ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)))
  window = sum(padded[..., i : i + x.shape[-1]] for i in range(size))
  return (x.astype(jnp.float32) / jnp.power(k + alpha / size * window, beta)).astype(x.dtype)


def _check_feature_layer(arch: str, feature_layer: str):
  if feature_layer not in FEATURE_LAYERS:
    raise ValueError(f'{arch}: unknown feature_layer {feature_layer!r}; valid: {", ".join(FEATURE_LAYERS)}')


class AlexNet(nnx.Module):
  """torchvision's AlexNet up to fc7; `width` scales every channel and fc count."""

  def __init__(
    self,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'fc7_pre_relu',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    _check_feature_layer('alexnet', feature_layer)
    c = image_shape[2]
    size1 = layers.pool_output_size(layers.conv_output_size(min(image_shape[:2]), 11, 4, 2), 3, 2)
    size2 = layers.pool_output_size(size1, 3, 2)
    layers.check_positive(
      {
        'features.2 (max pool)': size1,
        'features.5 (max pool)': size2,
        'features.12 (max pool)': layers.pool_output_size(size2, 3, 2),
      },
      'alexnet',
      image_shape,
    )
    c1, c2, c3, c4, c5 = (layers.scaled(n, width) for n in (64, 192, 384, 256, 256))
    hidden = layers.scaled(4096, width)
    conv = lambda i, o, k, **kw: layers.conv(i, o, k, dtype=dtype, rngs=rngs, **kw)
    self.convs = nnx.List(
      [
        conv(c, c1, 11, stride=4, padding=2),
        conv(c1, c2, 5, padding=2),
        conv(c2, c3, 3, padding=1),
        conv(c3, c4, 3, padding=1),
        conv(c4, c5, 3, padding=1),
      ]
    )
    self.fc6 = layers.linear(c5 * POOLED_SIZE**2, hidden, dtype=dtype, rngs=rngs)
    self.fc7 = layers.linear(hidden, hidden, dtype=dtype, rngs=rngs)
    self.torch_layers = tuple(
      [layers.TorchLayer(f'features.{i}', ('convs', n), 'conv') for n, i in enumerate((0, 3, 6, 8, 10))]
      + [
        layers.TorchLayer('classifier.1', ('fc6',), 'linear', flatten_chw=(c5, POOLED_SIZE, POOLED_SIZE)),
        layers.TorchLayer('classifier.4', ('fc7',), 'linear'),
      ]
    )
    self.feature_layer = feature_layer
    self.num_features = hidden
    self.dtype = dtype

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    x = x.astype(self.dtype)
    x = layers.max_pool(layers.relu(self.convs[0](x)), 3, 2)
    x = layers.max_pool(layers.relu(self.convs[1](x)), 3, 2)
    x = layers.relu(self.convs[2](x))
    x = layers.relu(self.convs[3](x))
    x = layers.max_pool(layers.relu(self.convs[4](x)), 3, 2)
    x = layers.flatten(layers.adaptive_avg_pool(x, POOLED_SIZE))
    rng6, rng7 = jax.random.split(rng) if train else (None, None)
    x = layers.relu(self.fc6(layers.dropout(x, DROPOUT, rng6, train)))
    x = self.fc7(layers.dropout(x, DROPOUT, rng7, train))
    return layers.relu(x) if self.feature_layer == 'fc7' else x


class VGGF(nnx.Module):
  """VGG-F (CNN-F) up to fc7, in hashjax's torch-style layout (module docstring); `width` scales it."""

  def __init__(
    self,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'fc7_pre_relu',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    _check_feature_layer('vgg_f', feature_layer)
    c = image_shape[2]
    size1 = layers.pool_output_size(layers.conv_output_size(min(image_shape[:2]), 11, 4), 3, 2, ceil_mode=True)
    size2 = layers.pool_output_size(size1, 3, 2, ceil_mode=True)
    layers.check_positive(
      {
        'features.3 (max pool)': size1,
        'features.7 (max pool)': size2,
        'features.14 (max pool)': layers.pool_output_size(size2, 3, 2, ceil_mode=True),
      },
      'vgg_f',
      image_shape,
    )
    c1, c2 = layers.scaled(64, width), layers.scaled(256, width)
    hidden = layers.scaled(4096, width)
    conv = lambda i, o, k, **kw: layers.conv(i, o, k, dtype=dtype, rngs=rngs, **kw)
    self.convs = nnx.List(
      [
        conv(c, c1, 11, stride=4),
        conv(c1, c2, 5, padding=2),
        conv(c2, c2, 3, padding=1),
        conv(c2, c2, 3, padding=1),
        conv(c2, c2, 3, padding=1),
      ]
    )
    self.fc6 = layers.linear(c2 * POOLED_SIZE**2, hidden, dtype=dtype, rngs=rngs)
    self.fc7 = layers.linear(hidden, hidden, dtype=dtype, rngs=rngs)
    self.torch_layers = tuple(
      [layers.TorchLayer(f'features.{i}', ('convs', n), 'conv') for n, i in enumerate((0, 4, 8, 10, 12))]
      + [
        layers.TorchLayer('classifier.0', ('fc6',), 'linear', flatten_chw=(c2, POOLED_SIZE, POOLED_SIZE)),
        layers.TorchLayer('classifier.3', ('fc7',), 'linear'),
      ]
    )
    self.feature_layer = feature_layer
    self.num_features = hidden
    self.dtype = dtype

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    x = x.astype(self.dtype)
    x = layers.max_pool(local_response_norm(layers.relu(self.convs[0](x)), **VGG_F_LRN), 3, 2, ceil_mode=True)
    x = layers.max_pool(local_response_norm(layers.relu(self.convs[1](x)), **VGG_F_LRN), 3, 2, ceil_mode=True)
    x = layers.relu(self.convs[2](x))
    x = layers.relu(self.convs[3](x))
    x = layers.max_pool(layers.relu(self.convs[4](x)), 3, 2, ceil_mode=True)
    x = layers.flatten(layers.adaptive_avg_pool(x, POOLED_SIZE))
    x = layers.dropout(layers.relu(self.fc6(x)), DROPOUT, rng, train)
    x = self.fc7(x)
    return layers.relu(x) if self.feature_layer == 'fc7' else x
