"""ResNet-18 / ResNet-50 (He et al. 2016) in torchvision's layout (v1.5: a Bottleneck strides in its 3x3).

Keys: `conv1`, `bn1`, `layer{1-4}.{j}.conv{1,2[,3]}` / `.bn{..}` / `.downsample.{0,1}`; the
ImageNet `fc` is not used. `features(x)` is the globally average-pooled 512-d (ResNet-18) or
2048-d (ResNet-50) vector. BatchNorm is inference-mode with frozen running statistics
(`layers.FrozenBatchNorm`).
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models.backbones import layers

# name -> (block kind, blocks per stage)
CONFIGS = {
  'resnet18': ('basic', (2, 2, 2, 2)),
  'resnet34': ('basic', (3, 4, 6, 3)),
  'resnet50': ('bottleneck', (3, 4, 6, 3)),
  'resnet101': ('bottleneck', (3, 4, 23, 3)),
}
EXPANSION = {'basic': 1, 'bottleneck': 4}


class Block(nnx.Module):
  """A BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3 with the stride, 1x1 x4) with its shortcut."""

  def __init__(self, kind: str, cin: int, planes: int, stride: int, *, dtype, rngs: nnx.Rngs):
    out = planes * EXPANSION[kind]
    conv = lambda i, o, k, **kw: layers.conv(i, o, k, bias=False, dtype=dtype, rngs=rngs, **kw)
    if kind == 'basic':
      convs = [conv(cin, planes, 3, stride=stride, padding=1), conv(planes, planes, 3, padding=1)]
      widths = [planes, planes]
    else:
      convs = [conv(cin, planes, 1), conv(planes, planes, 3, stride=stride, padding=1), conv(planes, out, 1)]
      widths = [planes, planes, out]
    self.convs = nnx.List(convs)
    self.norms = nnx.List([layers.FrozenBatchNorm(n, dtype=dtype) for n in widths])
    self.has_downsample = stride != 1 or cin != out
    if self.has_downsample:
      self.downsample_conv = conv(cin, out, 1, stride=stride)
      self.downsample_norm = layers.FrozenBatchNorm(out, dtype=dtype)

  def torch_layers(self, prefix: str, path: tuple) -> list[layers.TorchLayer]:
    found = []
    for i in range(len(self.convs)):
      found.append(layers.TorchLayer(f'{prefix}.conv{i + 1}', path + ('convs', i), 'conv'))
      found.append(layers.TorchLayer(f'{prefix}.bn{i + 1}', path + ('norms', i), 'bn'))
    if self.has_downsample:
      found.append(layers.TorchLayer(f'{prefix}.downsample.0', path + ('downsample_conv',), 'conv'))
      found.append(layers.TorchLayer(f'{prefix}.downsample.1', path + ('downsample_norm',), 'bn'))
    return found

  def __call__(self, x: jax.Array) -> jax.Array:
    shortcut = self.downsample_norm(self.downsample_conv(x)) if self.has_downsample else x
    y = x
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      y = norm(conv(y))
      if i < len(self.convs) - 1:
        y = layers.relu(y)
    return layers.relu(y + shortcut)


class ResNet(nnx.Module):
  """A torchvision ResNet up to its global average pool; `width` scales every channel count."""

  def __init__(
    self,
    arch: str,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'pool',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if feature_layer != 'pool':
      raise ValueError(f'{arch}: feature_layer must be "pool" (the pooled vector), got {feature_layer!r}')
    kind, depths = CONFIGS[arch]
    size = layers.pool_output_size(layers.conv_output_size(min(image_shape[:2]), 7, 2, 3), 3, 2, 1)
    layers.check_positive({'maxpool': size}, arch, image_shape)
    channels = layers.scaled(64, width)
    self.conv1 = layers.conv(image_shape[2], channels, 7, stride=2, padding=3, bias=False, dtype=dtype, rngs=rngs)
    self.bn1 = layers.FrozenBatchNorm(channels, dtype=dtype)
    torch_layers = [layers.TorchLayer('conv1', ('conv1',), 'conv'), layers.TorchLayer('bn1', ('bn1',), 'bn')]
    stages = []
    for s, depth in enumerate(depths):
      planes = layers.scaled(64 * 2**s, width)
      blocks = []
      for j in range(depth):
        stride = 2 if s > 0 and j == 0 else 1
        block = Block(kind, channels, planes, stride, dtype=dtype, rngs=rngs)
        torch_layers += block.torch_layers(f'layer{s + 1}.{j}', ('stages', s, j))
        blocks.append(block)
        channels = planes * EXPANSION[kind]
      stages.append(nnx.List(blocks))
    self.stages = nnx.List(stages)
    self.torch_layers = tuple(torch_layers)
    self.num_features = channels
    self.dtype = dtype

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout; BatchNorm is always in inference mode
    x = layers.relu(self.bn1(self.conv1(x.astype(self.dtype))))
    x = layers.max_pool(x, 3, 2, 1)
    for stage in self.stages:
      for block in stage:
        x = block(x)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
