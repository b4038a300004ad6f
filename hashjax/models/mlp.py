"""A multilayer perceptron hash head on feature vectors (the `features` dataset): model `mlp`.

    x (B, D) -> [Linear -> norm -> activation -> dropout] x len(hidden) -> Linear(bits) -> head_activation

Inputs of any shape are flattened per example (B, prod(shape)), so it also runs on images, but it
is meant for precomputed embeddings (e.g. DINOv2 class tokens: README, "Foundation-model
features"). Options (`config.model.*`, set by the configs' :features variants):
  * hidden: the hidden widths, e.g. (1024,) or (1024, 512); () is a linear hash layer on the input;
  * activation: 'relu', 'gelu' (tanh approximation, flax's default), 'silu' or 'tanh';
  * dropout: rate on each hidden layer's output in training (on the input when hidden=()); 0: none;
  * norm: 'none', 'layer' (LayerNorm) or 'rms' (RMSNorm) after each hidden Linear. No BatchNorm:
    the train state keeps parameters only (models/__init__.py), so running statistics would never
    be updated;
  * head_activation: 'none', 'tanh' (CIMON's head) or 'sigmoid' (applied to the hash layer).
`nnx.Linear` with its default initialisation (LeCun normal kernels, zero biases).
`features(x)` is the last hidden layer's output after its activation (the input itself with no
hidden layer): what `with_features=True` returns beside the outputs (CIMON's graph with
`graph_features='network'`, DLBHC's coarse-to-fine search) and what
`python -m hashjax.extract_features --workdir` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models.backbones import layers

ACTIVATIONS = {'relu': nnx.relu, 'gelu': nnx.gelu, 'silu': nnx.silu, 'tanh': jnp.tanh}
NORMS = ('none', 'layer', 'rms')
HEAD_ACTIVATIONS = {'none': lambda x: x, 'tanh': jnp.tanh, 'sigmoid': jax.nn.sigmoid}


def check(hidden, activation: str, dropout: float, norm: str, head_activation: str) -> tuple[int, ...]:
  """The hidden widths as a tuple, after checking every option (a bad one fails listing the valid ones)."""
  hidden = tuple(hidden)
  if any(not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in hidden):
    raise ValueError(f'model.hidden must be positive integer widths, e.g. (1024,) or (), got {hidden!r}')
  if activation not in ACTIVATIONS:
    raise ValueError(f'unknown model.activation {activation!r}; valid: {", ".join(ACTIVATIONS)}')
  if norm not in NORMS:
    raise ValueError(f'unknown model.norm {norm!r}; valid: {", ".join(NORMS)}')
  if head_activation not in HEAD_ACTIVATIONS:
    raise ValueError(f'unknown model.head_activation {head_activation!r}; valid: {", ".join(HEAD_ACTIVATIONS)}')
  if not 0 <= dropout < 1:
    raise ValueError(f'model.dropout must be in [0, 1), got {dropout}')
  return hidden


class MLPBody(nnx.Module):
  """The hidden layers: x -> [Linear -> norm -> activation -> dropout] x len(hidden)."""

  def __init__(
    self,
    input_shape: Sequence[int],
    hidden: Sequence[int],
    *,
    activation: str,
    dropout: float,
    norm: str,
    dtype,
    rngs: nnx.Rngs,
  ):
    widths = (math.prod(input_shape), *hidden)
    self.layers = nnx.List([nnx.Linear(i, o, dtype=dtype, rngs=rngs) for i, o in zip(widths[:-1], widths[1:])])
    make_norm = {
      'none': None,
      'layer': lambda w: nnx.LayerNorm(w, dtype=dtype, rngs=rngs),
      'rms': lambda w: nnx.RMSNorm(w, dtype=dtype, rngs=rngs),
    }[norm]
    self.norms = nnx.List([make_norm(w) for w in hidden]) if make_norm is not None else None
    self.activation, self.dropout, self.dtype = activation, dropout, dtype
    self.num_features = widths[-1]

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    """(B, ...) -> (B, num_features): the hidden layers, dropout after each but the last in training."""
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    keys = jax.random.split(rng, len(self.layers)) if (train and rng is not None and self.layers) else None
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if self.norms is not None:
        x = self.norms[i](x)
      x = ACTIVATIONS[self.activation](x)
      if i < len(self.layers) - 1:  # the last one's dropout is MLPHashNet's, after `features`
        x = layers.dropout(x, self.dropout, None if keys is None else keys[i], train)
    return x


class MLPHashNet(nnx.Module):
  """MLP hash head (module doc); outputs (B, bits) float32."""

  def __init__(
    self,
    bits: int,
    input_shape: Sequence[int],
    *,
    hidden: Sequence[int] = (1024,),
    activation: str = 'relu',
    dropout: float = 0.0,
    norm: str = 'none',
    head_activation: str = 'none',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    hidden = check(hidden, activation, dropout, norm, head_activation)
    self.body = MLPBody(input_shape, hidden, activation=activation, dropout=dropout, norm=norm, dtype=dtype, rngs=rngs)
    self.head = nnx.Linear(self.body.num_features, bits, dtype=dtype, rngs=rngs)
    self.dropout, self.head_activation = dropout, head_activation

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # features are taken in eval mode
    return self.body(x).astype(jnp.float32)

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    body_rng, head_rng = jax.random.split(rng) if (train and rng is not None) else (None, None)
    h = self.body(x, train=train, rng=body_rng)
    codes = HEAD_ACTIVATIONS[self.head_activation](self.head(layers.dropout(h, self.dropout, head_rng, train)))
    codes = codes.astype(jnp.float32)
    return (h.astype(jnp.float32), codes) if with_features else codes
