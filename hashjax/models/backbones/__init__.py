"""ImageNet backbones (AlexNet, VGG-F, VGG, ResNet, GoogLeNet, ViT, DINOv2) with a hash head, in Flax NNX.

    vgg.py        VGG11/16/19 and their _bn variants (torchvision); features = fc7 before its ReLU
    alexnet.py    AlexNet (torchvision) and VGG-F (Chatfield et al. 2014); features = fc7 pre-ReLU
    resnet.py     ResNet-18/34/50/101 (torchvision); features = pooled 512/2048-d vector
    googlenet.py  GoogLeNet (torchvision, no aux heads); features = pooled 1024-d vector
    vit.py        ViT-B/16, ViT-L/16 (torchvision) and DINOv2 ViT-S/14, ViT-B/14 (+ _reg, torch.hub
                  layout); features = the class token after the final norm ('cls') or it and the
                  mean patch token ('cls_mean', `c.model.feature_layer = 'cls_mean'` in a config)
    layers.py     torch-exact pooling, frozen BatchNorm, dropout, and the torch key layout

`HashNet(arch, bits, image_shape, ...)` = backbone + head: [ReLU] -> [dropout] -> Linear(bits)
-> activation ('none' | 'tanh' | 'sigmoid'). CIMON's official head on VGG16's fc7 is
ReLU -> Linear -> Tanh (`head_activation='tanh'`, the default ReLU); DLBHC's latent layer is
sigmoid units on fc7 after ReLU and dropout (`head_activation='sigmoid', head_dropout=0.5`);
DCWH is a plain Linear on the pooled vector (`head_relu` is a no-op there: the pool is of ReLUs).
`head_relu` defaults to True for the CNNs and to False for the vision transformers, whose feature
is a LayerNorm output (a ReLU would drop half of it); set it to override.
Pretrained weights: hashjax/weights.py converts a torchvision state dict; `models.build`
loads them with `--config.model.pretrained=DIR` into `params['backbone']`, leaving the head fresh.

Inputs: any size at least the minimum (VGG 32, AlexNet and VGG-F 63, GoogLeNet 16, ResNet 8; smaller fails
naming the layer); the pretrained weights were trained at 224x224 (`--config.image_size=224`);
ImageNet weights expect RGB normalised with `IMAGENET_MEAN` / `IMAGENET_STD`. The vision
transformers take multiples of their patch (16, or 14 for DINOv2) and resize their position
embedding to other grids as their references do (vit.py); DINOv2 was pre-trained at 518 px, its
usual evaluation size is 224.
"""

from __future__ import annotations

import functools

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from hashjax.models.backbones import alexnet
from hashjax.models.backbones import googlenet
from hashjax.models.backbones import layers
from hashjax.models.backbones import resnet
from hashjax.models.backbones import vgg
from hashjax.models.backbones import vit
from hashjax.workdir import checkpoint

IMAGENET_MEAN = googlenet.IMAGENET_MEAN
IMAGENET_STD = googlenet.IMAGENET_STD

# arch name -> backbone constructor (image_shape, *, width, feature_layer, dtype, rngs, ...)
BACKBONES = {
  'alexnet': alexnet.AlexNet,
  'vgg_f': alexnet.VGGF,
  **{name: functools.partial(vgg.VGG, name) for name in vgg.CONFIGS},
  **{name: functools.partial(resnet.ResNet, name) for name in resnet.CONFIGS},
  'googlenet': googlenet.GoogLeNet,
  **{name: functools.partial(vit.VisionTransformer, name) for name in vit.CONFIGS},
}
HEAD_ACTIVATIONS = {'none': lambda x: x, 'tanh': jnp.tanh, 'sigmoid': jax.nn.sigmoid}


class HashNet(nnx.Module):
  """A backbone (`self.backbone`, the part pretrained weights replace) and a hash head (`self.head`).

  Called with `with_features=True` it returns (backbone features, codes) from one pass, as
  cimon_head.DSHTanhNet does (CIMON builds its graph from the features, fc7 before its ReLU).
  """

  def __init__(
    self,
    arch: str,
    bits: int,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str | None = None,
    head_relu: bool | None = None,
    head_dropout: float = 0.0,
    head_activation: str = 'none',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
    **backbone_kwargs,
  ):
    if arch not in BACKBONES:
      raise ValueError(f'unknown backbone {arch!r}; valid: {", ".join(sorted(BACKBONES))}')
    if head_activation not in HEAD_ACTIVATIONS:
      raise ValueError(f'unknown head_activation {head_activation!r}; valid: {", ".join(HEAD_ACTIVATIONS)}')
    if feature_layer is not None:  # else the backbone's default (fc7_pre_relu or pool)
      backbone_kwargs['feature_layer'] = feature_layer
    self.backbone = BACKBONES[arch](image_shape, width=width, dtype=dtype, rngs=rngs, **backbone_kwargs)
    # torch.nn.Linear's default initialisation, as CIMON's and DLBHC's PyTorch heads.
    self.head = layers.torch_linear(self.backbone.num_features, bits, dtype=dtype, rngs=rngs)
    self.arch = arch
    self.head_relu = (arch not in vit.CONFIGS) if head_relu is None else head_relu  # module docstring
    self.head_dropout = head_dropout
    self.head_activation = head_activation

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    return self.backbone.features(x, train=train, rng=rng)

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    backbone_rng, head_rng = jax.random.split(rng) if (train and rng is not None) else (None, None)
    features = self.backbone.features(x, train=train, rng=backbone_rng)
    h = nnx.relu(features) if self.head_relu else features
    h = layers.dropout(h, self.head_dropout, head_rng, train)
    codes = HEAD_ACTIVATIONS[self.head_activation](self.head(h).astype(jnp.float32))
    return (features.astype(jnp.float32), codes) if with_features else codes


def hash_net(arch: str):
  """The models.MODELS constructor `(bits, image_shape, *, dtype, rngs, **kwargs)` of `arch`."""
  return functools.partial(HashNet, arch)


# How hashjax/weights.py stores converted weights: {'params': ..., 'batch_stats': ...} (the latter only
# for networks with BatchNorm), each the pure dict of `HashNet.backbone`'s nnx.Param / nnx.BatchStat
# flattened to keys joined by '.', e.g. 'convs.0.kernel' (HWIO), 'fc6.kernel' (in, out), 'norms.0.mean',
# 'blocks.0.attn.qkv.kernel' (in, 3 * dim), 'pos_embed' (1, 1 + grid**2, dim, torch's shape).
LAYOUT = 'hashjax.backbone/1'


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'convs': {0: {'kernel': a}}} -> {'convs.0.kernel': a}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def fill(tree: dict, flat: dict, prefix: str = '') -> dict:
  """`tree` with each leaf replaced by `flat`'s array of the same dotted key (in the leaf's dtype)."""
  return {
    key: fill(value, flat, f'{prefix}{key}.')
    if isinstance(value, dict)
    else np.asarray(flat[f'{prefix}{key}'], value.dtype)
    for key, value in tree.items()
  }


def _replace(tree: dict, saved: dict, group: str, where: str, meta: dict) -> dict:
  """`tree` (the model's) with `saved`'s arrays, after checking both have the same names and shapes."""
  expected = flatten(tree)
  missing = sorted(set(expected) - set(saved))
  unexpected = sorted(set(saved) - set(expected))
  if missing or unexpected:
    raise ValueError(
      f'pretrained weights in {where} do not fit this {meta.get("arch")} backbone ({group}): '
      f'missing {missing[:5]}{" ..." if len(missing) > 5 else ""}, '
      f'unexpected {unexpected[:5]}{" ..." if len(unexpected) > 5 else ""}'
    )
  overrides = ''.join(f', {k}={v}' for k, v in sorted(meta.get('arch_kwargs', {}).items()))
  for key, value in expected.items():
    if tuple(saved[key].shape) != tuple(value.shape):
      raise ValueError(
        f'pretrained weights in {where}: backbone.{key}: the model expects {tuple(value.shape)}, '
        f'the checkpoint has {tuple(saved[key].shape)} (converted with width={meta.get("width")}, '
        f'in_channels={meta.get("in_channels")}{overrides}; does config.model.width or the image channels differ?)'
      )
  return fill(tree, saved)


def load_pretrained(directory: str, arch: str, params: dict, constants: dict) -> tuple[dict, dict]:
  """(params, constants) of a built HashNet with the backbone's replaced by `directory`'s converted weights."""
  saved, meta = checkpoint.load_weights(directory)
  if meta.get('layout') != LAYOUT:
    raise ValueError(f'pretrained: {directory} has layout {meta.get("layout")!r}, expected {LAYOUT!r}')
  if meta.get('arch') != arch:
    raise ValueError(f'pretrained: the weights in {directory} are for {meta.get("arch")!r}, but the model is {arch!r}')
  params = dict(params, backbone=_replace(params['backbone'], saved.get('params', {}), 'params', directory, meta))
  if 'backbone' in constants or 'batch_stats' in saved:
    constants = dict(
      constants,
      backbone=_replace(constants.get('backbone', {}), saved.get('batch_stats', {}), 'batch_stats', directory, meta),
    )
  return params, constants
