"""A DSH backbone with CIMON's hash head: tanh(Linear(ReLU(fc))), and fc before its ReLU as features.

CIMON (reference/methods.md section 1.2) hashes VGG's fc7 through ReLU -> Linear(L) -> tanh and
builds its similarity graph from fc7 *before* its ReLU. Here the backbone is `DSHNet`: its fc1
(500 units) plays fc7 and its last layer fc2 is the Linear to L bits, so the hash output is
exactly tanh(DSHNet(x)). The graph features are fc1 before the ReLU: after it, the cosine
distances of a randomly initialised network all crowd near 0 and no threshold separates pairs.
Called with `with_features=True` the network returns (features, tanh outputs) from one pass.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models import dsh_net


def dsh_fc_pre_relu(net: dsh_net.DSHNet, x: jax.Array) -> jax.Array:
  """DSHNet's fc1 output before its ReLU: `DSHNet.features` without the last ReLU
  (tests/test_cimon_loss.py checks relu(this) == net.features(x))."""
  x = x.astype(net.dtype)
  x = dsh_net.lrn_within_channel(nnx.relu(dsh_net.max_pool_3x3_s2(dsh_net.conv_same(net.conv1, x))))
  x = dsh_net.lrn_within_channel(dsh_net.avg_pool_3x3_s2(nnx.relu(dsh_net.conv_same(net.conv2, x))))
  x = dsh_net.avg_pool_3x3_s2(nnx.relu(dsh_net.conv_same(net.conv3, x)))
  return net.fc1(x.reshape(x.shape[0], -1))


class DSHTanhNet(nnx.Module):
  """DSHNet with a tanh on its output; `width` scales the backbone's channels as in DSHNet."""

  def __init__(
    self, bits: int, image_shape: tuple[int, int, int], *, width: float = 1.0, dtype=jnp.float32, rngs: nnx.Rngs
  ):
    self.backbone = dsh_net.DSHNet(bits, image_shape, width=width, dtype=dtype, rngs=rngs)

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout or batch norm in this network
    return dsh_fc_pre_relu(self.backbone, x).astype(jnp.float32)  # as with_features

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None, with_features: bool = False):
    del train, rng  # no dropout or batch norm in this network
    fc = dsh_fc_pre_relu(self.backbone, x)
    codes = jnp.tanh(self.backbone.fc2(nnx.relu(fc)).astype(jnp.float32))
    return (fc.astype(jnp.float32), codes) if with_features else codes
