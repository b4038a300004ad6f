"""GoogLeNet / Inception v1 (Szegedy et al. 2015) in torchvision's layout, without the aux heads.

Keys: `conv1`, `conv2`, `conv3`, `inception{3a,3b,4a-4e,5a,5b}.branch{1,2.0,2.1,3.0,3.1,4.1}`,
each a `BasicConv2d` = `.conv` (no bias) + `.bn` (eps 1e-3); `aux1.*`, `aux2.*` and `fc.*` are not
used. torchvision's "5x5" branch is a 3x3 conv (kept, so its weights load). Max pools are ceil mode.
`features(x)` is the globally average-pooled 1024-d vector; torchvision's dropout(0.2) before its
fc is the hash head's `head_dropout` here. `transform_input=True` (torchvision's setting for its
pretrained weights) remaps ImageNet-normalised RGB to the (x - 0.5) / 0.5 scale the weights expect.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models.backbones import layers

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# name -> (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), torchvision's order.
INCEPTIONS = {
  '3a': (64, 96, 128, 16, 32, 32),
  '3b': (128, 128, 192, 32, 96, 64),
  '4a': (192, 96, 208, 16, 48, 64),
  '4b': (160, 112, 224, 24, 64, 64),
  '4c': (128, 128, 256, 24, 64, 64),
  '4d': (112, 144, 288, 32, 64, 64),
  '4e': (256, 160, 320, 32, 128, 128),
  '5a': (256, 160, 320, 32, 128, 128),
  '5b': (384, 192, 384, 48, 128, 128),
}
POOL_BEFORE = {'4a': (3, 2), '5a': (2, 2)}  # maxpool3, maxpool4 (kernel, stride), ceil mode


class BasicConv(nnx.Module):
  """torchvision's BasicConv2d: conv without bias, BatchNorm (eps 1e-3, frozen statistics), ReLU."""

  def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, padding: int = 0, dtype, rngs: nnx.Rngs):
    self.conv = layers.conv(cin, cout, kernel, stride=stride, padding=padding, bias=False, dtype=dtype, rngs=rngs)
    self.bn = layers.FrozenBatchNorm(cout, eps=1e-3, dtype=dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    return layers.relu(self.bn(self.conv(x)))


def _basic_conv_layers(prefix: str, path: tuple) -> list[layers.TorchLayer]:
  return [
    layers.TorchLayer(f'{prefix}.conv', path + ('conv',), 'conv'),
    layers.TorchLayer(f'{prefix}.bn', path + ('bn',), 'bn'),
  ]


class Inception(nnx.Module):
  """Four branches concatenated on channels: 1x1; 1x1-3x3; 1x1-3x3; 3x3/1 max pool-1x1."""

  def __init__(self, cin: int, widths: tuple[int, ...], *, dtype, rngs: nnx.Rngs):
    c1, c3r, c3, c5r, c5, cp = widths
    kw = dict(dtype=dtype, rngs=rngs)
    self.branch1 = BasicConv(cin, c1, 1, **kw)
    self.branch2 = nnx.List([BasicConv(cin, c3r, 1, **kw), BasicConv(c3r, c3, 3, padding=1, **kw)])
    self.branch3 = nnx.List([BasicConv(cin, c5r, 1, **kw), BasicConv(c5r, c5, 3, padding=1, **kw)])
    self.branch4 = BasicConv(cin, cp, 1, **kw)
    self.out_channels = c1 + c3 + c5 + cp

  def torch_layers(self, prefix: str, path: tuple) -> list[layers.TorchLayer]:
    return (
      _basic_conv_layers(f'{prefix}.branch1', path + ('branch1',))
      + _basic_conv_layers(f'{prefix}.branch2.0', path + ('branch2', 0))
      + _basic_conv_layers(f'{prefix}.branch2.1', path + ('branch2', 1))
      + _basic_conv_layers(f'{prefix}.branch3.0', path + ('branch3', 0))
      + _basic_conv_layers(f'{prefix}.branch3.1', path + ('branch3', 1))
      + _basic_conv_layers(f'{prefix}.branch4.1', path + ('branch4',))
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    b2 = self.branch2[1](self.branch2[0](x))
    b3 = self.branch3[1](self.branch3[0](x))
    b4 = self.branch4(layers.max_pool(x, 3, 1, 1, ceil_mode=True))
    return jnp.concatenate([self.branch1(x), b2, b3, b4], axis=-1)


class GoogLeNet(nnx.Module):
  """torchvision's GoogLeNet up to its global average pool; `width` scales every channel count."""

  def __init__(
    self,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'pool',
    transform_input: bool = True,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if feature_layer != 'pool':
      raise ValueError(f'googlenet: feature_layer must be "pool" (the pooled vector), got {feature_layer!r}')
    size = layers.conv_output_size(min(image_shape[:2]), 7, 2, 3)
    sizes = {}
    for name, (kernel, stride) in (
      ('maxpool1', (3, 2)),
      ('maxpool2', (3, 2)),
      ('maxpool3', (3, 2)),
      ('maxpool4', (2, 2)),
    ):
      size = sizes[name] = layers.pool_output_size(size, kernel, stride, ceil_mode=True)
    layers.check_positive(sizes, 'googlenet', image_shape)
    kw = dict(dtype=dtype, rngs=rngs)
    c64, c192 = layers.scaled(64, width), layers.scaled(192, width)
    self.conv1 = BasicConv(image_shape[2], c64, 7, stride=2, padding=3, **kw)
    self.conv2 = BasicConv(c64, c64, 1, **kw)
    self.conv3 = BasicConv(c64, c192, 3, padding=1, **kw)
    torch_layers = (
      _basic_conv_layers('conv1', ('conv1',))
      + _basic_conv_layers('conv2', ('conv2',))
      + _basic_conv_layers('conv3', ('conv3',))
    )
    channels, inceptions = c192, []
    for i, (name, widths) in enumerate(INCEPTIONS.items()):
      block = Inception(channels, tuple(layers.scaled(n, width) for n in widths), **kw)
      torch_layers += block.torch_layers(f'inception{name}', ('inceptions', i))
      inceptions.append(block)
      channels = block.out_channels
    self.inceptions = nnx.List(inceptions)
    self.torch_layers = tuple(torch_layers)
    self.transform_input = transform_input and image_shape[2] == 3
    self.num_features = channels
    self.dtype = dtype

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout inside; BatchNorm is always in inference mode
    if self.transform_input:  # torchvision's _transform_input: ImageNet normalisation -> (x - 0.5) / 0.5
      mean, std = jnp.asarray(IMAGENET_MEAN), jnp.asarray(IMAGENET_STD)
      x = x * (std / 0.5) + (mean - 0.5) / 0.5
    x = x.astype(self.dtype)
    x = layers.max_pool(self.conv1(x), 3, 2, ceil_mode=True)
    x = layers.max_pool(self.conv3(self.conv2(x)), 3, 2, ceil_mode=True)
    for name, block in zip(INCEPTIONS, self.inceptions):
      if name in POOL_BEFORE:
        x = layers.max_pool(x, *POOL_BEFORE[name], ceil_mode=True)
      x = block(x)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
