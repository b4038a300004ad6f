"""The convolutional autoencoder of "Deep Unsupervised Hashing for Image Retrieval" (Chowdhury, 2020).

Encoder: per entry of `filters`, `convs_per_block` 3x3 convolutions with ReLU, then 2x2 max-pooling
(SAME: an odd size is padded at its end, 28 -> 14 -> 7 -> 4); flatten; a dense layer to `bits`,
the bottleneck pre-activation z. The code is sign(z) (== sign of tanh(b z) for any slope b > 0),
so `__call__` returns z and the evaluator's sign gives the hash code.
Decoder (mirror image): a dense layer back to the last feature map, then per block (widest first)
3x3 convolutions with ReLU and 2x nearest up-sampling cropped to the size the encoder had before
that pooling (4 -> 7 -> 14 -> 28), and a final linear 3x3 convolution to the input's channels.

The seed's MNIST network is filters (16, 32, 64), one convolution per block; its RGB network
"mostly follows VGG": wider filters and `convs_per_block=2`.
`reconstruct(x, slope)` returns (z, h = tanh(slope * z'), decoder(h)), z' = z or z normalised
(`code_norm`), for the training loss
(hashjax/methods/autoencoder.py), which reaches it through `make_forward`'s `reconstruct_slope`.

`code_norm='batch_rms'` (not in the seed) divides z by each bit's batch RMS before the tanh.
Without it the encoder's last dense layer can shrink z as fast as the slope grows, keeping
tanh(b z) in its linear range: on Fashion-MNIST (4 epochs) only 2% (b 1 -> 50) or 17%
(b 1 -> 1000) of the code entries ended with |h| > 0.99, so the decoder never learned from binary
codes; with 'batch_rms' 61% did at b = 50 and 99% at b = 1000 (mAP 0.381 / 0.411 vs 0.382 / 0.383).
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp

from hashjax.models import dsh_net


def scaled_tanh(z: jax.Array, slope) -> jax.Array:
  """tanh(slope * z): the seed's binarising activation 2 / (1 + exp(-b' z)) - 1 with b' = 2 * slope."""
  return jnp.tanh(slope * z)


CODE_NORMS = ('none', 'batch_rms')


def batch_rms_normalise(z: jax.Array) -> jax.Array:
  """z divided by each bit's root-mean-square over the batch: a positive scale, so signs (codes) stay."""
  return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=0, keepdims=True) + 1e-6)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """== nnx.max_pool(x, (2, 2), (2, 2), 'SAME') for NHWC x, as a reshape and max (fast on CPU)."""
  b, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
  return x.reshape(b, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max(axis=(2, 4))


def upsample_2x(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Nearest-neighbour 2x up-sampling cropped to `size`: the inverse of `max_pool_2x2`'s shapes."""
  x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return x[:, : size[0], : size[1], :]


class ConvAutoencoder(nnx.Module):
  """Conv encoder -> dense `bits` (z) ; dense -> conv decoder. Keyword arguments come from config.model."""

  def __init__(
    self,
    bits: int,
    image_shape: tuple[int, int, int],
    *,
    filters=(16, 32, 64),
    convs_per_block: int = 1,
    code_norm: str = 'none',
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    h, w, c = image_shape
    filters = tuple(int(f) for f in filters)
    if not filters or min(filters) <= 0 or convs_per_block <= 0:
      raise ValueError(
        f'autoencoder needs positive filters and convs_per_block, got filters={filters}, '
        f'convs_per_block={convs_per_block}'
      )
    if code_norm not in CODE_NORMS:
      raise ValueError(f'unknown model.code_norm {code_norm!r}; valid: {", ".join(CODE_NORMS)}')
    self.code_norm = code_norm
    conv = lambda i, o: nnx.Conv(i, o, (3, 3), padding=1, dtype=dtype, rngs=rngs)
    sizes, encoder, channels = [], [], c  # sizes: (h, w) before each pooling, where the decoder crops back to
    for f in filters:
      for _ in range(convs_per_block):
        encoder.append(conv(channels, f))
        channels = f
      sizes.append((h, w))
      h, w = (h + 1) // 2, (w + 1) // 2
    self.sizes = tuple(sizes)
    self.encoder = nnx.List(encoder)
    self.bottom_shape = (h, w, channels)
    self.to_code = nnx.Linear(h * w * channels, bits, dtype=dtype, rngs=rngs)
    self.from_code = nnx.Linear(bits, h * w * channels, dtype=dtype, rngs=rngs)
    decoder = []
    for f in reversed(filters):
      for _ in range(convs_per_block):
        decoder.append(conv(channels, f))
        channels = f
    self.decoder = nnx.List(decoder)
    self.output = conv(channels, c)
    self.convs_per_block = convs_per_block
    self.dtype = dtype

  def encode(self, x: jax.Array) -> jax.Array:
    """Images (B, H, W, C) -> bottleneck pre-activations z (B, bits), float32."""
    x = x.astype(self.dtype)
    for i, layer in enumerate(self.encoder):
      x = nnx.relu(dsh_net.conv_same(layer, x))
      if (i + 1) % self.convs_per_block == 0:
        x = max_pool_2x2(x)
    return self.to_code(x.reshape(x.shape[0], -1)).astype(jnp.float32)

  def decode(self, h: jax.Array) -> jax.Array:
    """Codes (B, bits) -> reconstructed images (B, H, W, C), float32."""
    x = nnx.relu(self.from_code(h.astype(self.dtype)))
    x = x.reshape((x.shape[0],) + self.bottom_shape)
    sizes = list(reversed(self.sizes))
    for i, layer in enumerate(self.decoder):
      x = nnx.relu(dsh_net.conv_same(layer, x))
      if (i + 1) % self.convs_per_block == 0:
        x = upsample_2x(x, sizes[i // self.convs_per_block])
    return dsh_net.conv_same(self.output, x).astype(jnp.float32)

  def reconstruct(self, x: jax.Array, slope) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(z, h = tanh(slope * z), decode(h)): what the training loss needs from one pass.

    With code_norm='batch_rms' the tanh sees z over its per-bit batch RMS, so the encoder cannot
    cancel a rising slope by shrinking z (the codes sign(z) are unchanged by the positive scale).
    """
    z = self.encode(x)
    h = scaled_tanh(batch_rms_normalise(z) if self.code_norm == 'batch_rms' else z, slope)
    return z, h, self.decode(h)

  def __call__(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout or batch norm in this network
    return self.encode(x)
