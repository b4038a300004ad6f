"""Models by name. `build(config, image_shape, rng)` returns (graphdef, params) for pure use.

Networks are Flax NNX modules; training code keeps only their parameters as a plain nested
dict and rebuilds the module inside jit with `nnx.merge` (see `forward`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from hashjax.models import autoencoder
from hashjax.models import cimon_head
from hashjax.models import dsh_net

MODELS: dict[str, Callable[..., nnx.Module]] = {
    'dsh_net': dsh_net.DSHNet,
    'dsh_net_tanh': cimon_head.DSHTanhNet,
    'autoencoder': autoencoder.ConvAutoencoder,
}
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def build(config, bits: int, image_shape: tuple[int, int, int], rng: jax.Array):
  """Returns (graphdef, params) of the network named by `config.name` (other keys are its kwargs)."""
  kwargs = dict(config)
  name = kwargs.pop('name')
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; valid names: {", ".join(sorted(MODELS))}')
  dtype = kwargs.pop('dtype', 'float32')
  if dtype not in DTYPES:
    raise ValueError(f'unknown model.dtype {dtype!r}; valid: {", ".join(DTYPES)}')
  model = MODELS[name](bits, image_shape, dtype=DTYPES[dtype], rngs=nnx.Rngs(params=rng), **kwargs)
  graphdef, params = nnx.split(model, nnx.Param)
  return graphdef, nnx.to_pure_dict(params)


def make_forward(graphdef):
  """forward(params, images, *, train, rng) -> network outputs, a pure function of its arguments.

  `with_features=True` (for models that support it, e.g. dsh_net_tanh) returns
  (penultimate features, outputs) from one pass.
  `reconstruct_slope=b` (for autoencoders) returns `model.reconstruct(images, b)`, i.e.
  (bottleneck z, codes tanh(b z), reconstruction), so a loss stays model-agnostic.
  """
  def forward(params, images, *, train: bool, rng: jax.Array | None = None, with_features: bool = False,
              reconstruct_slope: jax.Array | float | None = None):
    model = nnx.merge(graphdef, params)
    if with_features:
      return model(images, train=train, rng=rng, with_features=True)
    if reconstruct_slope is not None:
      return model.reconstruct(images, reconstruct_slope)
    return model(images, train=train, rng=rng)
  return forward
