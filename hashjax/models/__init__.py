"""Models by name. `build(config, image_shape, rng)` returns (graphdef, params) for pure use.

Networks are Flax NNX modules; training code keeps only their parameters as a plain nested
dict and rebuilds the module inside jit with `nnx.merge` (see `forward`). A network's other
state (the frozen BatchNorm statistics of the ImageNet backbones) is not trained: `build` returns
it inside the graphdef (`GraphDefWithConstants`) and `make_forward` merges it in as constants.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from hashjax.models import autoencoder
from hashjax.models import backbones
from hashjax.models import cimon_head
from hashjax.models import dlbhc
from hashjax.models import dsh_net
from hashjax.models import mlp

# ImageNet backbones + hash head (models/backbones/): alexnet, vgg_f, vgg11[_bn], vgg16[_bn], vgg19[_bn],
# resnet18/34/50/101, googlenet, vit_b_16, vit_l_16, dinov2_vits14[_reg], dinov2_vitb14[_reg].
# `--config.model.pretrained` loads their converted weights.
BACKBONE_MODELS = tuple(backbones.BACKBONES)
MODELS: dict[str, Callable[..., nnx.Module]] = {
  'dsh_net': dsh_net.DSHNet,
  'dsh_net_tanh': cimon_head.DSHTanhNet,
  'autoencoder': autoencoder.ConvAutoencoder,
  **{name: backbones.hash_net(name) for name in BACKBONE_MODELS},
  # DLBHC: features -> latent sigmoid layer -> classifier; outputs {'latent', 'logits'} (models/dlbhc.py).
  'dlbhc_dsh_net': dlbhc.DLBHCDSHNet,
  **{f'dlbhc_{name}': dlbhc.dlbhc_net(name) for name in BACKBONE_MODELS},
  # Feature vectors (the `features` dataset): an MLP hash head (models/mlp.py), and DLBHC's head on it.
  'mlp': mlp.MLPHashNet,
  'dlbhc_mlp': dlbhc.DLBHCMLP,
}
# The models that take feature vectors (B, D): the only ones a `features` dataset trains (config/validate.py).
FEATURE_MODELS = ('mlp', 'dlbhc_mlp')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
# The model names whose backbone `model.pretrained` fills, with the `python -m hashjax.weights
# convert --arch` of their weights.
PRETRAINED_ARCH = {
  **{name: name for name in BACKBONE_MODELS},
  **{f'dlbhc_{name}': name for name in BACKBONE_MODELS},
}
NO_WEIGHTS = 'none'  # model.pretrained=none: random initialisation on purpose
# What `features_only=True` (make_forward) returns per model: the feature layer that
# `python -m hashjax.extract_features` writes. The autoencoder has none (its bottleneck is the code).
FEATURE_LAYERS = {
  'dsh_net': 'fc1 after its ReLU (500 x width)',
  'dsh_net_tanh': 'fc1 before its ReLU (what CIMON builds its graph from)',
  'dlbhc_dsh_net': "fc1 after its ReLU (DLBHC's fc7)",
  **{
    name: "the backbone's feature layer (backbones/__init__.py: fc7 pre-ReLU, pooled vector, class token)"
    for name in BACKBONE_MODELS
  },
  **{f'dlbhc_{name}': "the backbone's feature layer" for name in BACKBONE_MODELS},
  'mlp': 'the last hidden layer after its activation (the input with hidden=())',
  'dlbhc_mlp': 'the last hidden layer after its activation',
}


def pretrained_dir(model_config) -> str:
  """The weights directory of `model.pretrained`; '' when the network starts from random initialisation
  ('' or 'none')."""
  pretrained = model_config['pretrained']
  return '' if pretrained == NO_WEIGHTS else pretrained


def describe_weights(model_config) -> str:
  """Which weights the network starts from, for the run log and final_metrics.json: the directory, or
  'none (random init)'."""
  return pretrained_dir(model_config) or 'none (random init)'


def check_pretrained(model_config) -> None:
  """Checks `model.pretrained` against the model and `model.requires_pretrained` before any data is
  read: a setting meant for ImageNet weights without them, weights for a model without a backbone,
  a weights directory that is not there. Each error is one line naming the fix (the convert command)."""
  name, pretrained = model_config.name, model_config.pretrained
  arch = PRETRAINED_ARCH.get(name)
  convert = f'python -m hashjax.weights convert --arch {arch} --src FILE --dst DIR'
  if pretrained == NO_WEIGHTS:
    return
  if not pretrained:
    if not model_config.requires_pretrained:
      return
    if arch is None:
      raise ValueError(
        f'model.requires_pretrained=True, but model {name!r} has no pretrained backbone (models that '
        f'have one: {", ".join(sorted(PRETRAINED_ARCH))}): set --config.model.requires_pretrained=False'
      )
    raise ValueError(
      f'model {name} is meant to start from ImageNet weights (model.requires_pretrained) but '
      f'model.pretrained is empty: convert them once with {convert} and pass '
      f'--config.model.pretrained=DIR (or --config.model.pretrained={NO_WEIGHTS} to train from random '
      f'initialisation on purpose)'
    )
  if arch is None:
    raise ValueError(
      f'model.pretrained={pretrained!r}: model {name!r} has no pretrained backbone; valid with: '
      f'{", ".join(sorted(PRETRAINED_ARCH))} (or --config.model.pretrained={NO_WEIGHTS})'
    )
  if '://' not in pretrained and not os.path.isdir(pretrained):
    raise ValueError(
      f'model.pretrained={pretrained!r} is not a directory: write the {arch} weights there with '
      f'{convert.replace("DIR", pretrained)} (or --config.model.pretrained={NO_WEIGHTS} to train from '
      f'random initialisation on purpose)'
    )


@dataclasses.dataclass(frozen=True)
class GraphDefWithConstants:
  """A graphdef with the network's non-trainable state (pure dict of NumPy arrays), for `make_forward`."""

  graphdef: nnx.GraphDef
  constants: dict


def build(config, bits: int, image_shape: tuple[int, int, int], rng: jax.Array, *, num_classes: int = 0):
  """Returns (graphdef, params) of the network named by `config.name` (other keys are its kwargs).

  `config.pretrained` (a directory written by `python -m hashjax.weights convert`) replaces the
  backbone's parameters (and BatchNorm statistics) of an ImageNet backbone model; its head stays fresh.
  '' or 'none' (NO_WEIGHTS): random initialisation. `config.requires_pretrained` is checked by
  `check_pretrained` (config validation), not here.
  A model with a classifier (DLBHC) whose `num_classes` is 0 gets the dataset's `num_classes`.
  """
  kwargs = dict(config)
  if kwargs.get('num_classes') == 0:
    kwargs['num_classes'] = num_classes
  name = kwargs.pop('name')
  # The schema's keys that are not the network's arguments (plain dicts in tests may lack them).
  pretrained = kwargs.pop('pretrained', '')
  pretrained = '' if pretrained == NO_WEIGHTS else pretrained
  kwargs.pop('requires_pretrained', None)
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; valid names: {", ".join(sorted(MODELS))}')
  dtype = kwargs.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ValueError(f'unknown model.dtype {dtype!r}; valid: {", ".join(DTYPES)}')
  model = MODELS[name](bits, image_shape, dtype=DTYPES[dtype], rngs=nnx.Rngs(params=rng), **kwargs)
  graphdef, params, constants = nnx.split(model, nnx.Param, ...)
  params, constants = nnx.to_pure_dict(params), nnx.to_pure_dict(constants)
  if pretrained:
    if not isinstance(model, backbones.HashNet):
      raise ValueError(
        f'model.pretrained={pretrained!r}: model {name!r} has no pretrained backbone; '
        f'valid with: {", ".join(BACKBONE_MODELS)}'
      )
    params, constants = backbones.load_pretrained(pretrained, model.arch, params, constants)
  if constants:
    graphdef = GraphDefWithConstants(graphdef, jax.tree.map(np.asarray, constants))
  return graphdef, params


def make_forward(graphdef):
  """forward(params, images, *, train, rng) -> network outputs, a pure function of its arguments.

  `with_features=True` (for models that support it, e.g. dsh_net_tanh) returns
  (penultimate features, outputs) from one pass.
  `reconstruct_slope=b` (for autoencoders) returns `model.reconstruct(images, b)`, i.e.
  (bottleneck z, codes tanh(b z), reconstruction), so a loss stays model-agnostic.
  `features_only=True` returns `model.features(images)` alone, the network's feature layer in eval
  mode (`FEATURE_LAYERS` says which; hashjax.extract_features); a model without one fails naming
  the models that have one.
  """
  constants = ()
  if isinstance(graphdef, GraphDefWithConstants):
    graphdef, constants = graphdef.graphdef, (graphdef.constants,)

  def forward(
    params,
    images,
    *,
    train: bool,
    rng: jax.Array | None = None,
    with_features: bool = False,
    reconstruct_slope: jax.Array | float | None = None,
    features_only: bool = False,
  ):
    model = nnx.merge(graphdef, params, *constants)
    if features_only:
      if not hasattr(model, 'features'):
        raise ValueError(
          f'{type(model).__name__} has no feature layer; models with one: {", ".join(sorted(FEATURE_LAYERS))}'
        )
      return model.features(images).astype(jnp.float32)
    if with_features:
      return model(images, train=train, rng=rng, with_features=True)
    if reconstruct_slope is not None:
      return model.reconstruct(images, reconstruct_slope)
    return model(images, train=train, rng=rng)

  return forward
