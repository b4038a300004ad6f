"""DLBHC's network (Lin, Yang, Hsiao, Chen, CVPRW 2015): features -> latent layer H -> classifier.

The paper's CaffeNet: fc7 -> ReLU -> dropout -> latent layer H (`bits` sigmoid units) -> classifier
(`num_classes`), trained by softmax cross-entropy only (reference/methods.md section 4.2).
The forward returns `{'latent': sigmoid activations H, 'logits': class scores}`; codes are
H >= 0.5 (methods/dlbhc.py). With `with_features=True` it also returns the features the latent
layer reads (fc7 after its ReLU, before dropout: the `fc7` blob Caffe's in-place ReLU leaves,
what the paper's coarse-to-fine search re-ranks by), as `(features, outputs)`.

Two bodies, one head:
  * `DLBHCNet(arch, ...)`: an ImageNet backbone (models/backbones/, models `dlbhc_<arch>`). It
    is a `backbones.HashNet` whose hash head is the latent layer, so `--config.model.pretrained`
    loads the backbone as for every other backbone model, and adds the classifier.
  * `DLBHCDSHNet` (model `dlbhc_dsh_net`): the small DSH network for quick runs; its fc1 (500,
    after ReLU) plays fc7 and its fc2 the latent layer.
  * `DLBHCMLP` (model `dlbhc_mlp`): on feature vectors (the `features` dataset), the hidden layers
    of models/mlp.py play the backbone (their last activations are fc7), then dropout, the latent
    layer and the classifier; with hidden=() the latent layer reads the input features.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models import backbones
from hashjax.models import dsh_net
from hashjax.models import mlp
from hashjax.models.backbones import layers


def _head(latent_logits: jax.Array, classifier: nnx.Linear) -> dict:
  latent = jax.nn.sigmoid(latent_logits.astype(jnp.float32))
  return {'latent': latent, 'logits': classifier(latent).astype(jnp.float32)}


def _check_classes(num_classes) -> int:
  if not isinstance(num_classes, int) or num_classes < 2:
    raise ValueError(f'DLBHC needs model.num_classes >= 2 (the classifier after the latent layer), got {num_classes!r}')
  return num_classes


class DLBHCNet(backbones.HashNet):
  """An ImageNet backbone, ReLU, dropout, latent layer of `bits` sigmoid units, classifier."""

  def __init__(
    self,
    arch: str,
    bits: int,
    image_shape: tuple[int, int, int],
    *,
    num_classes: int = 0,
    head_dropout: float = 0.5,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
    **kwargs,
  ):
    for fixed in ('head_activation', 'head_relu'):  # the latent layer is defined by the paper
      if fixed in kwargs:
        raise ValueError(f'model.{fixed} is fixed for DLBHC models (ReLU before, sigmoid after the latent layer)')
    num_classes = _check_classes(num_classes)  # before building the backbone
    super().__init__(
      arch,
      bits,
      image_shape,
      head_relu=True,
      head_dropout=head_dropout,
      head_activation='none',
      dtype=dtype,
      rngs=rngs,
      **kwargs,
    )
    self.classifier = layers.torch_linear(bits, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    backbone_rng, head_rng = jax.random.split(rng) if (train and rng is not None) else (None, None)
    fc7 = nnx.relu(self.backbone.features(x, train=train, rng=backbone_rng))
    h = layers.dropout(fc7, self.head_dropout, head_rng, train)
    out = _head(self.head(h), self.classifier)
    return (fc7.astype(jnp.float32), out) if with_features else out


class DLBHCDSHNet(nnx.Module):
  """The DSH network (`width` scales its channels) with fc2 as the latent layer, then a classifier."""

  def __init__(
    self,
    bits: int,
    image_shape: tuple[int, int, int],
    *,
    num_classes: int = 0,
    width: float = 1.0,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    num_classes = _check_classes(num_classes)
    self.backbone = dsh_net.DSHNet(bits, image_shape, width=width, dtype=dtype, rngs=rngs)
    self.classifier = layers.torch_linear(bits, num_classes, dtype=dtype, rngs=rngs)

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout or batch norm in this network
    return self.backbone.features(x).astype(jnp.float32)  # fc1 after its ReLU, as with_features

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    del train, rng  # no dropout or batch norm in this network
    fc = self.backbone.features(x)  # fc1 after its ReLU
    out = _head(self.backbone.fc2(fc), self.classifier)
    return (fc.astype(jnp.float32), out) if with_features else out


class DLBHCMLP(nnx.Module):
  """MLP hidden layers (models/mlp.py `MLPBody`), dropout, latent layer of `bits` sigmoid units, classifier."""

  def __init__(
    self,
    bits: int,
    input_shape: tuple[int, ...],
    *,
    num_classes: int = 0,
    hidden: tuple[int, ...] = (1024,),
    activation: str = 'relu',
    dropout: float = 0.0,
    norm: str = 'none',
    head_dropout: float = 0.5,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    num_classes = _check_classes(num_classes)
    hidden = mlp.check(hidden, activation, dropout, norm, 'none')
    if not 0 <= head_dropout < 1:
      raise ValueError(f'model.head_dropout must be in [0, 1), got {head_dropout}')
    self.body = mlp.MLPBody(
      input_shape, hidden, activation=activation, dropout=dropout, norm=norm, dtype=dtype, rngs=rngs
    )
    self.head = nnx.Linear(self.body.num_features, bits, dtype=dtype, rngs=rngs)
    self.classifier = layers.torch_linear(bits, num_classes, dtype=dtype, rngs=rngs)
    self.head_dropout = head_dropout

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # features are taken in eval mode
    return self.body(x).astype(jnp.float32)

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    body_rng, head_rng = jax.random.split(rng) if (train and rng is not None) else (None, None)
    fc7 = self.body(x, train=train, rng=body_rng)
    out = _head(self.head(layers.dropout(fc7, self.head_dropout, head_rng, train)), self.classifier)
    return (fc7.astype(jnp.float32), out) if with_features else out


def dlbhc_net(arch: str):
  """The models.MODELS constructor `(bits, image_shape, *, dtype, rngs, **kwargs)` of `dlbhc_<arch>`."""
  return lambda bits, image_shape, **kwargs: DLBHCNet(arch, bits, image_shape, **kwargs)
