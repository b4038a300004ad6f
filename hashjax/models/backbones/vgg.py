"""VGG (Simonyan & Zisserman 2015) in torchvision's layout: `features.{i}` convs (and BatchNorms),
adaptive average pooling to 7x7, `classifier.0` fc6 and `classifier.3` fc7.

`features(x)` is fc7 before its ReLU by default (CIMON's `classifier[:-3]`, STU's vgg11_bn
`classifier[:4]`); `feature_layer='fc7'` gives it after the ReLU. Dropout after fc6's ReLU is
active when training, as in torchvision.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models.backbones import layers

_A = (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M')
_D = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M')
_E = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M')
# torchvision's cfgs 'A', 'D', 'E' ('M' = 2x2 max pool) and whether each conv is followed by BatchNorm.
CONFIGS = {
  'vgg11': (_A, False),
  'vgg11_bn': (_A, True),
  'vgg16': (_D, False),
  'vgg16_bn': (_D, True),
  'vgg19': (_E, False),
  'vgg19_bn': (_E, True),
}
FEATURE_LAYERS = ('fc7_pre_relu', 'fc7')
POOLED_SIZE = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before fc6
DROPOUT = 0.5


class VGG(nnx.Module):
  """A VGG up to fc7; `width` scales every channel and fc count (1.0 = the real network)."""

  def __init__(
    self,
    arch: str,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'fc7_pre_relu',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if feature_layer not in FEATURE_LAYERS:
      raise ValueError(f'{arch}: unknown feature_layer {feature_layer!r}; valid: {", ".join(FEATURE_LAYERS)}')
    cfg, batch_norm = CONFIGS[arch]
    h, w, channels = image_shape
    sizes, index = {}, 0  # index: position in torchvision's `features` Sequential
    for v in cfg:
      if v == 'M':
        h, w = h // 2, w // 2
        sizes[f'features.{index} (max pool)'] = min(h, w)
      index += 1 if v == 'M' else 3 if batch_norm else 2  # pool | conv, [bn,] relu
    layers.check_positive(sizes, arch, image_shape)
    convs, norms, plan, torch_layers, index = [], [], [], [], 0
    for v in cfg:
      if v == 'M':
        plan.append('pool')
        index += 1
        continue
      out = layers.scaled(v, width)
      torch_layers.append(layers.TorchLayer(f'features.{index}', ('convs', len(convs)), 'conv'))
      convs.append(layers.conv(channels, out, 3, padding=1, dtype=dtype, rngs=rngs))
      if batch_norm:
        torch_layers.append(layers.TorchLayer(f'features.{index + 1}', ('norms', len(norms)), 'bn'))
        norms.append(layers.FrozenBatchNorm(out, dtype=dtype))
      plan.append('conv')
      channels = out
      index += 3 if batch_norm else 2
    hidden = layers.scaled(4096, width)
    self.convs = nnx.List(convs)
    self.norms = nnx.List(norms)
    self.fc6 = layers.linear(channels * POOLED_SIZE**2, hidden, dtype=dtype, rngs=rngs)
    self.fc7 = layers.linear(hidden, hidden, dtype=dtype, rngs=rngs)
    torch_layers += [
      layers.TorchLayer('classifier.0', ('fc6',), 'linear', flatten_chw=(channels, POOLED_SIZE, POOLED_SIZE)),
      layers.TorchLayer('classifier.3', ('fc7',), 'linear'),
    ]
    self.torch_layers = tuple(torch_layers)
    self.plan = tuple(plan)
    self.batch_norm = batch_norm
    self.feature_layer = feature_layer
    self.num_features = hidden
    self.dtype = dtype

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    x = x.astype(self.dtype)
    i = 0
    for step in self.plan:
      if step == 'pool':
        x = layers.max_pool(x, 2, 2)
        continue
      x = self.convs[i](x)
      if self.batch_norm:
        x = self.norms[i](x)
      x = layers.relu(x)
      i += 1
    x = layers.flatten(layers.adaptive_avg_pool(x, POOLED_SIZE))
    x = layers.dropout(layers.relu(self.fc6(x)), DROPOUT, rng, train)
    x = self.fc7(x)
    return layers.relu(x) if self.feature_layer == 'fc7' else x
